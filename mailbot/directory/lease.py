"""Only one daemon works a mailbox at a time: a lease held in the database.

On PostgreSQL the lease is a session-level advisory lock held on a dedicated
connection: when the holder dies (or its connection does), the server drops
the lock and a standby takes over within its polling interval. On SQLite,
where only one host can use the file anyway, it is an exclusive ``flock`` on
a lock file next to the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import SQLAlchemyError

from mailbot.files import make_private_dirs
from mailbot.log import get_logger

log = get_logger(__name__)


class Lease(Protocol):
    """An exclusive right to process the mailbox."""

    def try_acquire(self) -> bool:
        """Take the lease if nobody holds it; True when we hold it now."""
        ...

    def still_held(self) -> bool:
        """Whether we still hold it (a lost database connection loses it)."""
        ...

    def release(self) -> None:
        """Give the lease up."""
        ...


def lease_key(name: str) -> int:
    """A stable signed 64-bit advisory-lock key for the instance name."""
    digest = hashlib.sha256(f"mailbot:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class PostgresLease:
    """``pg_try_advisory_lock`` on a connection kept open while the lease is held."""

    def __init__(self, engine: Engine, name: str) -> None:
        self.engine = engine
        self.key = lease_key(name)
        self._connection: Connection | None = None

    def try_acquire(self) -> bool:
        """See :class:`Lease`."""
        if self._connection is not None:
            return self.still_held()
        try:
            connection = self.engine.connect()
            got = bool(
                connection.execute(
                    text("SELECT pg_try_advisory_lock(:k)"), {"k": self.key}
                ).scalar()
            )
            connection.commit()
        except SQLAlchemyError as exc:
            log.warning("lease.unavailable", error=str(exc).splitlines()[0])
            return False
        if not got:
            connection.close()
            return False
        self._connection = connection
        return True

    def still_held(self) -> bool:
        """See :class:`Lease`."""
        if self._connection is None:
            return False
        # A session-level advisory lock lives exactly as long as its session:
        # if the connection still answers, the lock is still ours.
        try:
            self._connection.execute(text("SELECT 1"))
            self._connection.commit()
        except SQLAlchemyError:
            log.warning("lease.lost", reason="database connection lost")
            self._drop()
            return False
        return True

    def release(self) -> None:
        """See :class:`Lease`."""
        if self._connection is None:
            return
        with contextlib.suppress(SQLAlchemyError):
            self._connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
            self._connection.commit()
        self._drop()

    def _drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(Exception):
                connection.invalidate()
                connection.close()


class FileLease:
    """An exclusive ``flock`` on a lock file (SQLite deployments)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._descriptor: int | None = None

    def try_acquire(self) -> bool:
        """See :class:`Lease`."""
        if self._descriptor is not None:
            return True
        make_private_dirs(self.path.parent)
        descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(descriptor)
            return False
        os.ftruncate(descriptor, 0)
        os.write(descriptor, f"{os.getpid()}\n".encode())
        self._descriptor = descriptor
        return True

    def still_held(self) -> bool:
        """See :class:`Lease`."""
        return self._descriptor is not None

    def release(self) -> None:
        """See :class:`Lease`."""
        if self._descriptor is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._descriptor, fcntl.LOCK_UN)
            os.close(self._descriptor)
            self._descriptor = None


def lease_for(engine: Engine, name: str, state_dir: Path) -> Lease:
    """The right lease for the database behind *engine*."""
    if engine.dialect.name == "postgresql":
        return PostgresLease(engine, name)
    return FileLease(state_dir / f"{name}.lock")


async def acquire(
    lease: Lease,
    stop: asyncio.Event,
    poll_seconds: float = 2.0,
    on_standby: Callable[[], object] | None = None,
) -> bool:
    """Wait until the lease is ours (True) or *stop* is set (False).

    *on_standby* is called once, when the first attempt finds the lease taken
    (the daemon tells systemd it is up as a standby, instead of looking stuck).
    """
    announced = False
    while not stop.is_set():
        if lease.try_acquire():
            log.info("lease.acquired")
            return True
        if not announced:
            log.info("lease.waiting", detail="another mailbot holds the mailbox; standing by")
            announced = True
            if on_standby is not None:
                on_standby()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), poll_seconds)
    return False
