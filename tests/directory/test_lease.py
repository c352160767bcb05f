"""Only one daemon holds the mailbox: PostgreSQL advisory lock, or a file lock for SQLite."""

from __future__ import annotations

import asyncio
from pathlib import Path

import psycopg
from sqlalchemy import text

from mailbot.directory.engine import make_engine
from mailbot.directory.lease import FileLease, PostgresLease, acquire


def test_postgres_lease_is_exclusive_and_passes_on_when_the_holder_dies(postgres_url: str) -> None:
    first_engine, second_engine = make_engine(postgres_url), make_engine(postgres_url)
    first, second = (
        PostgresLease(first_engine, "lease-test"),
        PostgresLease(second_engine, "lease-test"),
    )
    try:
        assert first.try_acquire()
        assert not second.try_acquire()
        assert first.still_held()
        # The holder's connection is killed (as when its host dies): the server drops the lock.
        assert first._connection is not None
        pid = first._connection.execute(text("SELECT pg_backend_pid()")).scalar()
        first._connection.commit()
        admin = postgres_url.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute("SELECT pg_terminate_backend(%s)", (pid,))
        assert not first.still_held()
        assert second.try_acquire()
        assert not first.try_acquire()
        second.release()
        assert first.try_acquire()
    finally:
        first.release()
        second.release()
        first_engine.dispose()
        second_engine.dispose()


def test_file_lease(tmp_path: Path) -> None:
    first, second = FileLease(tmp_path / "m.lock"), FileLease(tmp_path / "m.lock")
    assert first.try_acquire()
    assert not second.try_acquire()
    first.release()
    assert second.try_acquire()
    second.release()


async def test_acquire_waits_until_stopped(tmp_path: Path) -> None:
    holder, waiter = FileLease(tmp_path / "m.lock"), FileLease(tmp_path / "m.lock")
    assert holder.try_acquire()
    stop = asyncio.Event()
    task = asyncio.create_task(acquire(waiter, stop, poll_seconds=0.05))
    await asyncio.sleep(0.2)
    assert not task.done()
    holder.release()
    assert await asyncio.wait_for(task, 2) is True
    waiter.release()
    assert await acquire(FileLease(tmp_path / "other.lock"), asyncio.Event()) is True
    stopped = asyncio.Event()
    stopped.set()
    assert await acquire(waiter, stopped) is False
