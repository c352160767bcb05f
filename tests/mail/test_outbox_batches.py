"""The outbox's database work in batches: one claim and one "sent" commit for many rows,
bounded; what a crash inside a batch costs. Real SMTP servers, SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, event
from sqlalchemy.orm import Session, sessionmaker

from mailbot.mail.outbox import OutboxSender
from mailbot.mail.outbox_store import Due, OutboxStore
from mailbot.notices.daemon_alerts import OUTBOX_ALERTS
from testkit.smtpd import SmtpServer
from tests.logs import _default_logging  # noqa: F401  (autouse, as in its old folder)

from .outbox_flusher import MARKS_PER_COMMIT
from .outbox_support import NOW, CountingHandler, ServerFactory, make_config, queue, row, rows

SECOND = dt.timedelta(seconds=1)
ROOT = Path(__file__).resolve().parents[2]


def handler_of(server: SmtpServer) -> CountingHandler:
    assert isinstance(server.handler, CountingHandler)
    return server.handler


@pytest.fixture
def commits(engine: Engine) -> Iterator[list[int]]:
    """One entry per database commit from now on."""
    seen: list[int] = []

    def count(_connection: object) -> None:
        seen.append(1)

    event.listen(engine, "commit", count)
    yield seen
    event.remove(engine, "commit", count)


def queue_many(sessions: sessionmaker[Session], count: int) -> list[int]:
    return [
        queue(sessions, f"user{i}@example.test", created=NOW + i * SECOND) for i in range(count)
    ]


async def test_a_backlog_costs_one_claim_and_one_sent_commit_per_batch(
    sessions: sessionmaker[Session], smtp_factory: ServerFactory, commits: list[int]
) -> None:
    server = smtp_factory()
    ids = queue_many(sessions, 45)
    commits.clear()
    outbox = OutboxSender(
        make_config(server.port), sessions, OUTBOX_ALERTS,
        claim_size=20, marks_max_rows=20, marks_max_age=3600,
    )  # fmt: skip
    report = await outbox.flush(NOW + dt.timedelta(minutes=1))
    await outbox.close()

    assert report.sent == 45
    # Claims of 20 + 20 + 5 rows; "sent" marks: the flush's first alone, then after
    # 21 and 41 sends, and at the end (was 90: two a letter).
    assert len(commits) == 3 + 4
    assert {row(sessions, i).status for i in ids} == {"sent"}
    assert [m.recipients[0] for m in server.messages] == [
        f"user{i}@example.test" for i in range(45)
    ]


async def test_a_second_flusher_finds_the_whole_batch_claimed(
    sessions: sessionmaker[Session], smtp_factory: ServerFactory
) -> None:
    server = smtp_factory()
    handler_of(server).delay = 0.3
    ids = queue_many(sessions, 5)
    config = make_config(server.port)
    first, second = (OutboxSender(config, sessions, OUTBOX_ALERTS) for _ in range(2))
    later = NOW + dt.timedelta(minutes=1)
    flushing = asyncio.create_task(first.flush(later))
    await asyncio.to_thread(server.handler.wait_for, 1)

    # The first letter is on the wire; every row of the batch is already claimed.
    assert {row(sessions, i).next_attempt_at for i in ids} == {later + first.lease}
    assert (await second.flush(later)).sent == 0
    assert (await flushing).sent == 5
    assert len(server.messages) == 5
    await first.close()
    await second.close()


async def test_sent_marks_wait_for_a_full_batch_or_a_deadline(
    sessions: sessionmaker[Session], smtp_factory: ServerFactory
) -> None:
    server = smtp_factory()
    handler_of(server).delay = 0.3  # time to look at the table while a letter is on the wire
    ids = queue_many(sessions, 5)
    outbox = OutboxSender(
        make_config(server.port), sessions, OUTBOX_ALERTS, marks_max_rows=3, marks_max_age=3600
    )
    flushing = asyncio.create_task(outbox.flush(NOW + dt.timedelta(minutes=1)))
    await asyncio.to_thread(server.handler.wait_for, 5)
    # The flush's first mark went alone; the next three filled a batch.
    assert [row(sessions, i).status for i in ids] == ["sent"] * 4 + ["pending"]
    await flushing
    assert [row(sessions, i).status for i in ids] == ["sent"] * 5  # the rest at the end

    # A slow server: by the end of the next send, a waiting mark is older than 0.2 s.
    ids = queue_many(sessions, 4)
    outbox.marks_max_rows, outbox.marks_max_age = 20, 0.2
    flushing = asyncio.create_task(outbox.flush(NOW + dt.timedelta(minutes=2)))
    await asyncio.to_thread(server.handler.wait_for, 5 + 4)
    assert [row(sessions, i).status for i in ids] == ["sent"] * 3 + ["pending"]
    await flushing
    await outbox.close()


async def test_failures_are_recorded_at_once_with_the_sent_marks_before_them(
    sessions: sessionmaker[Session], smtp_factory: ServerFactory, commits: list[int]
) -> None:
    server = smtp_factory()
    handler_of(server).refuse_recipients = {"user2@example.test": "550 5.1.1 no such user"}
    ids = queue_many(sessions, 4)
    commits.clear()
    outbox = OutboxSender(
        make_config(server.port), sessions, OUTBOX_ALERTS, marks_max_rows=20, marks_max_age=3600
    )
    report = await outbox.flush(NOW + dt.timedelta(minutes=1))
    await outbox.close()
    assert (report.sent, report.failed) == (3, 1)
    assert [row(sessions, i).status for i in ids] == ["sent", "sent", "failed", "sent"]
    # The claim; the first mark; the failure (with the mark before it, and its alert);
    # the last mark.
    assert len(commits) == 4


async def test_rows_of_a_batch_a_dead_connection_never_reached_keep_their_schedule(
    sessions: sessionmaker[Session], smtp_factory: ServerFactory
) -> None:
    server = smtp_factory()
    server.handler.fail_with = "421 4.3.2 service shutting down"
    ids = queue_many(sessions, 3)
    outbox = OutboxSender(make_config(server.port), sessions, OUTBOX_ALERTS)
    report = await outbox.flush(NOW + dt.timedelta(minutes=1))
    assert report.connection_error is not None
    # Claimed with the first row, given back untouched: due as before, no attempt.
    after = [row(sessions, i) for i in ids[1:]]
    assert [(r.attempts, r.next_attempt_at) for r in after] == [
        (0, NOW + SECOND),
        (0, NOW + 2 * SECOND),
    ]
    assert not outbox.link.is_open


async def test_a_slow_batch_extends_its_claim_before_it_runs_out(
    sessions: sessionmaker[Session], smtp_factory: ServerFactory
) -> None:
    server = smtp_factory()
    handler = handler_of(server)
    ids = queue_many(sessions, 3)
    # Every DATA takes "100 s" on both of the sender's clocks; the lease is 150 s.
    wall = [NOW + dt.timedelta(minutes=1)]
    ticks = [0.0]

    def hundred_seconds_pass() -> None:
        wall[0] += dt.timedelta(seconds=100)
        ticks[0] += 100

    handler.on_data = hundred_seconds_pass
    handler.delay = 0.5
    outbox = OutboxSender(
        make_config(server.port), sessions, OUTBOX_ALERTS,
        clock=lambda: wall[0], monotonic=lambda: ticks[0],
    )  # fmt: skip
    assert outbox.lease == dt.timedelta(seconds=150)
    flushing = asyncio.create_task(outbox.flush())
    await asyncio.to_thread(handler.wait_for, 2)
    # "200 s" after the claim: without the extension, rows 2 and 3 would be free again.
    rival = OutboxSender(make_config(server.port), sessions, OUTBOX_ALERTS)
    assert (await rival.flush(wall[0])).sent == 0
    assert (await flushing).sent == 3
    ids_sent = Counter(m.message["Message-ID"] for m in server.messages)
    assert sorted(ids_sent.values()) == [1, 1, 1]
    assert {row(sessions, i).status for i in ids} == {"sent"}
    await outbox.close()
    await rival.close()


async def test_rows_left_by_a_dead_flusher_are_recorded_right_after_their_250(
    sessions: sessionmaker[Session], smtp_factory: ServerFactory
) -> None:
    server = smtp_factory()
    left, fresh = queue_many(sessions, 2)
    # A flusher claimed the first row and died (its claim is still running).
    OutboxStore(sessions).claim([Due(left, NOW)], NOW, NOW + dt.timedelta(hours=1))
    outbox = OutboxSender(
        make_config(server.port), sessions, OUTBOX_ALERTS, marks_max_rows=20, marks_max_age=3600
    )
    assert outbox.resume(NOW + SECOND) == 1  # not the fresh row, due at NOW + 1 s
    handler = handler_of(server)
    handler.delay = 2.0  # the fresh row's 250 is this far off when it is on the wire
    second_data = threading.Event()
    handler.on_data = lambda: second_data.set() if handler.peers[1:] else None
    flushing = asyncio.create_task(outbox.flush(NOW + SECOND))
    # Its DATA began: the recovered row's 250 came, and its mark, before it was sent.
    assert await asyncio.to_thread(second_data.wait, 30)
    # A crash now would cost the recovered row no third copy; the fresh one waits for its batch.
    assert (row(sessions, left).status, row(sessions, fresh).status) == ("sent", "pending")
    assert (await flushing).sent == 2
    await outbox.close()


def test_a_sigkill_inside_a_batch_of_marks_costs_each_row_one_copy_at_most(
    sessions: sessionmaker[Session], smtp_factory: ServerFactory, database_url: str
) -> None:
    server = smtp_factory()
    ids = queue_many(sessions, 30)
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.mail.outbox_flusher", database_url, str(server.port)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    # The 25th letter: the first mark went alone, the next 20 as a batch, 4 are unrecorded.
    server.handler.kill_after(process.pid, messages=1 + MARKS_PER_COMMIT + 4)
    try:
        _, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == -signal.SIGKILL, stderr.decode(errors="replace")
    assert [r.status for r in rows(sessions)] == ["sent"] * 21 + ["pending"] * 9

    # The next flusher (here in the test's process) resumes the claims of the dead one.
    outbox = OutboxSender(make_config(server.port), sessions, OUTBOX_ALERTS)
    assert outbox.resume() == 9
    assert asyncio.run(outbox.flush()).sent == 9
    asyncio.run(outbox.close())

    final = rows(sessions)
    assert [r.id for r in final] == ids
    assert {r.status for r in final} == {"sent"}
    copies = Counter(str(m.message["Message-ID"]) for m in server.messages)
    assert set(copies) == {r.message_id for r in final}
    assert [copies[r.message_id] for r in final] == [1] * 21 + [2] * 4 + [1] * 5
    by_id: dict[str, set[bytes]] = {}
    for message in server.messages:
        by_id.setdefault(str(message.message["Message-ID"]), set()).add(message.data)
    assert all(len(versions) == 1 for versions in by_id.values())  # the same bytes again
