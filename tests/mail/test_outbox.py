"""OutboxSender against a real in-process SMTP server, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from mailbot.directory.models import Alert
from mailbot.mail.outbox import OutboxSender, RetryPolicy
from mailbot.notices.daemon_alerts import OUTBOX_ALERTS
from testkit.dovecot import DovecotServer, wait_until
from testkit.smtpd import SmtpServer
from tests.logs import _default_logging  # noqa: F401  (autouse, as in its old folder)

from .outbox_support import (
    ADMIN,
    FROM,
    NOW,
    CountingHandler,
    ServerFactory,
    make_config,
    queue,
    row,
)
from .outbox_support import rows as all_rows
from .outbox_support import sender as make_sender

SECOND = dt.timedelta(seconds=1)


def handler_of(server: SmtpServer) -> CountingHandler:
    assert isinstance(server.handler, CountingHandler)
    return server.handler


def alerts(sessions: sessionmaker[Session]) -> list[Alert]:
    with sessions() as session:
        return list(session.scalars(select(Alert).order_by(Alert.id)))


# -- the happy path --------------------------------------------------------------------


async def test_plain_sends_the_stored_bytes_once(
    sessions: sessionmaker[Session], smtp_factory: ServerFactory
) -> None:
    server = smtp_factory()
    row_id = queue(sessions, "user1@example.test")
    stored = row(sessions, row_id)
    outbox = make_sender(make_config(server.port), sessions)

    report = await outbox.flush(NOW)

    assert (report.sent, report.retried, report.failed, report.connection_error) == (1, 0, 0, None)
    [received] = server.messages
    assert received.sender == FROM
    assert received.recipients == ("user1@example.test",)
    assert received.message["Message-ID"] == stored.message_id
    # The stored letter goes out as it is (the server adds nothing we would notice).
    assert received.data.rstrip(b"\r\n") == stored.raw.rstrip(b"\r\n")
    after = row(sessions, row_id)
    assert (after.status, after.attempts, after.sent_at, after.last_error) == ("sent", 1, NOW, None)
    # A second flush finds nothing to do.
    assert await outbox.flush(NOW + dt.timedelta(hours=1)) == type(report)()
    assert len(server.messages) == 1


async def test_a_sent_row_is_never_sent_again(
    sessions: sessionmaker[Session], smtp_factory: ServerFactory
) -> None:
    server = smtp_factory()
    queue(sessions, status="sent")
    queue(sessions, status="failed")
    report = await make_sender(make_config(server.port), sessions).flush(NOW + SECOND)
    assert report.sent == 0
    assert server.messages == []


async def test_rows_not_yet_due_wait(
    sessions: sessionmaker[Session], smtp_factory: ServerFactory
) -> None:
    server = smtp_factory()
    row_id = queue(sessions, created=NOW + dt.timedelta(minutes=5))
    outbox = make_sender(make_config(server.port), sessions)
    assert (await outbox.flush(NOW)).sent == 0
    assert server.messages == []
    assert (await outbox.flush(NOW + dt.timedelta(minutes=5))).sent == 1
    assert row(sessions, row_id).status == "sent"


async def test_many_rows_go_over_one_connection_oldest_first(
    sessions: sessionmaker[Session], smtp_factory: ServerFactory
) -> None:
    server = smtp_factory()
    # Queued newest first: the sender must still send the oldest first.
    ids = [queue(sessions, f"user{i}@example.test", created=NOW - i * SECOND) for i in range(6)]
    report = await make_sender(make_config(server.port), sessions).flush(NOW)
    assert report.sent == 6
    assert [m.recipients[0] for m in server.messages] == [
        f"user{i}@example.test" for i in reversed(range(6))
    ]
    assert len(set(handler_of(server).peers)) == 1
    assert {row(sessions, i).status for i in ids} == {"sent"}


async def test_two_flushers_at_once_send_each_row_once(
    sessions: sessionmaker[Session], smtp_factory: ServerFactory
) -> None:
    server = smtp_factory()
    for i in range(8):
        queue(sessions, f"user{i}@example.test", created=NOW + i * SECOND)
    config = make_config(server.port)
    first, second = make_sender(config, sessions), make_sender(config, sessions)
    reports = await asyncio.gather(
        first.flush(NOW + dt.timedelta(minutes=1)), second.flush(NOW + dt.timedelta(minutes=1))
    )
    assert sum(r.sent for r in reports) == 8
    ids = [m.message["Message-ID"] for m in server.messages]
    assert len(ids) == len(set(ids)) == 8


async def test_reply_lands_in_the_dovecot_inbox(
    sessions: sessionmaker[Session], dovecot: DovecotServer, smtp: SmtpServer
) -> None:
    recipient = dovecot.address("user2")
    before = dovecot.message_count("user2")
    row_id = queue(sessions, recipient, text="Доставка в почтовый ящик")
    report = await make_sender(make_config(smtp.port), sessions).flush(NOW)
    assert report.sent == 1
    assert wait_until(lambda: dovecot.message_count("user2") == before + 1)
    assert row(sessions, row_id).status == "sent"


# -- TLS and AUTH ----------------------------------------------------------------------


async def test_starttls_verified_with_ca_file(
    sessions: sessionmaker[Session], smtp_factory: ServerFactory, tls_files: tuple[Path, Path]
) -> None:
    cert, key = tls_files
    server = smtp_factory(tls="starttls", cert_file=cert, key_file=key)
    row_id = queue(sessions)
    report = await make_sender(make_config(server.port, "starttls", ca_file=cert), sessions).flush(
        NOW
    )
    assert report.sent == 1, report.connection_error
    assert len(server.messages) == 1
    assert row(sessions, row_id).status == "sent"


async def test_starttls_is_required_never_silently_plain(
    sessions: sessionmaker[Session], smtp_factory: ServerFactory
) -> None:
    server = smtp_factory()  # plain server: offers no STARTTLS
    row_id = queue(sessions)
    report = await make_sender(make_config(server.port, "starttls"), sessions).flush(NOW)
    assert report.sent == 0
    assert report.connection_error is not None
    assert "STARTTLS" in report.connection_error
    assert server.messages == []
    after = row(sessions, row_id)
    assert (after.status, after.attempts) == ("pending", 1)


async def test_unverifiable_certificate_is_refused(
    sessions: sessionmaker[Session], smtp_factory: ServerFactory, tls_files: tuple[Path, Path]
) -> None:
    cert, key = tls_files
    server = smtp_factory(tls="starttls", cert_file=cert, key_file=key)
    row_id = queue(sessions)
    # No ca_file: the system roots do not know our self-signed certificate.
    report = await make_sender(make_config(server.port, "starttls"), sessions).flush(NOW)
    assert report.connection_error is not None
    assert "certificate" in report.connection_error.lower()
    assert server.messages == []
    assert row(sessions, row_id).status == "pending"


async def test_implicit_tls_verified_with_ca_file(
    sessions: sessionmaker[Session], smtp_factory: ServerFactory, tls_files: tuple[Path, Path]
) -> None:
    cert, key = tls_files
    server = smtp_factory(tls="implicit", cert_file=cert, key_file=key)
    row_id = queue(sessions)
    report = await make_sender(make_config(server.port, "implicit", ca_file=cert), sessions).flush(
        NOW
    )
    assert report.sent == 1, report.connection_error
    assert len(server.messages) == 1
    assert row(sessions, row_id).status == "sent"


async def test_auth_success(
    sessions: sessionmaker[Session],
    smtp_factory: ServerFactory,
    monkeypatch: pytest.MonkeyPatch,
    tls_files: tuple[Path, Path],
) -> None:
    cert, key = tls_files
    monkeypatch.setenv("TEST_SMTP_PW", "s3cret-pw")
    server = smtp_factory(
        users={"mailbot": "s3cret-pw"}, tls="starttls", cert_file=cert, key_file=key
    )
    row_id = queue(sessions)
    config = make_config(
        server.port, "starttls", ca_file=cert, user="mailbot", password_env="TEST_SMTP_PW"
    )
    report = await make_sender(config, sessions).flush(NOW)
    assert report.sent == 1, report.connection_error
    assert row(sessions, row_id).status == "sent"


async def test_auth_failure_keeps_letters_and_alerts_admins_once(
    sessions: sessionmaker[Session],
    smtp_factory: ServerFactory,
    monkeypatch: pytest.MonkeyPatch,
    tls_files: tuple[Path, Path],
) -> None:
    cert, key = tls_files
    monkeypatch.setenv("TEST_SMTP_PW", "wrong-password-123")
    server = smtp_factory(
        users={"mailbot": "right-password"}, tls="starttls", cert_file=cert, key_file=key
    )
    first = queue(sessions, created=NOW - SECOND)
    second = queue(sessions, created=NOW)
    config = make_config(
        server.port, "starttls", ca_file=cert, user="mailbot", password_env="TEST_SMTP_PW"
    )
    outbox = make_sender(config, sessions)

    report = await outbox.flush(NOW)
    assert report.connection_error is not None
    assert "AUTH" in report.connection_error
    assert "wrong-password-123" not in report.connection_error
    # Only the row in hand is charged; the other one keeps its schedule.
    assert (row(sessions, first).status, row(sessions, first).attempts) == ("pending", 1)
    assert "wrong-password-123" not in (row(sessions, first).last_error or "")
    assert row(sessions, second).attempts == 0
    [alert] = alerts(sessions)
    assert alert.kind == "smtp_auth_failed"
    assert alert.outbox_id is not None
    assert row(sessions, alert.outbox_id).recipients == [ADMIN]

    # The next failing flush (same day) raises no second alert.
    await outbox.flush(NOW + dt.timedelta(minutes=5))
    assert len(alerts(sessions)) == 1
    assert server.messages == []

    # Fixed: everything, the alert included, goes out.
    monkeypatch.setenv("TEST_SMTP_PW", "right-password")
    report = await outbox.flush(NOW + dt.timedelta(hours=2))
    assert report.sent == 3
    assert {r.status for r in all_rows(sessions)} == {"sent"}


# -- temporary and permanent failures --------------------------------------------------


async def test_451_is_retried_with_backoff_then_sent(
    sessions: sessionmaker[Session], smtp_factory: ServerFactory
) -> None:
    server = smtp_factory()
    server.handler.fail_with = "451 4.3.0 try again later"
    row_id = queue(sessions)
    outbox = make_sender(make_config(server.port), sessions, jitter=0.5)

    report = await outbox.flush(NOW)
    assert (report.sent, report.retried, report.connection_error) == (0, 1, None)
    after = row(sessions, row_id)
    assert (after.status, after.attempts) == ("pending", 1)
    assert "451" in (after.last_error or "")
    # base 30 s, jitter 0.5: 15 + 0.5 * 15 seconds.
    assert after.next_attempt_at == NOW + dt.timedelta(seconds=22.5)

    # Not due yet: the server is not even asked.
    tries = len(handler_of(server).peers)
    assert (await outbox.flush(NOW + dt.timedelta(seconds=20))).retried == 0
    assert len(handler_of(server).peers) == tries

    # Second failure: the delay doubles.
    second_try = after.next_attempt_at
    await outbox.flush(second_try)
    after = row(sessions, row_id)
    assert after.attempts == 2
    assert after.next_attempt_at == second_try + dt.timedelta(seconds=45)

    # The server recovers.
    server.handler.fail_with = None
    report = await outbox.flush(after.next_attempt_at)
    assert report.sent == 1
    after = row(sessions, row_id)
    assert (after.status, after.attempts) == ("sent", 3)
    assert len(server.messages) == 1


async def test_550_fails_the_row_and_queues_one_alert_without_loops(
    sessions: sessionmaker[Session], smtp_factory: ServerFactory
) -> None:
    server = smtp_factory()
    server.handler.fail_with = "550 5.7.1 message refused"
    row_id = queue(sessions, "user1@example.test")
    outbox = make_sender(make_config(server.port), sessions)

    report = await outbox.flush(NOW)
    assert (report.sent, report.retried, report.failed) == (0, 0, 1)
    failed = row(sessions, row_id)
    assert failed.status == "failed"
    assert "550" in (failed.last_error or "")
    [alert] = alerts(sessions)
    assert alert.kind == "outbox_failed"
    assert "user1@example.test" in alert.body
    assert failed.message_id in alert.body
    assert alert.outbox_id is not None
    alert_row = row(sessions, alert.outbox_id)
    assert (alert_row.kind, alert_row.status, alert_row.recipients) == ("alert", "pending", [ADMIN])

    # The alert itself is refused too: it fails, and no alert about the alert follows.
    report = await outbox.flush(NOW + SECOND)
    assert report.failed == 1
    assert row(sessions, alert.outbox_id).status == "failed"
    assert len(alerts(sessions)) == 1
    assert len(all_rows(sessions)) == 2
    assert (await outbox.flush(NOW + dt.timedelta(days=1))).failed == 0


async def test_all_recipients_refused_permanently_fails(
    sessions: sessionmaker[Session], smtp_factory: ServerFactory
) -> None:
    server = smtp_factory()
    handler_of(server).refuse_recipients = {"gone@example.test": "550 5.1.1 no such user"}
    row_id = queue(sessions, "gone@example.test")
    report = await make_sender(make_config(server.port), sessions).flush(NOW)
    assert report.failed == 1
    assert row(sessions, row_id).status == "failed"
    assert "gone@example.test" in (row(sessions, row_id).last_error or "")
    assert [a.kind for a in alerts(sessions)] == ["outbox_failed"]


async def test_recipient_refused_temporarily_is_retried(
    sessions: sessionmaker[Session], smtp_factory: ServerFactory
) -> None:
    server = smtp_factory()
    handler_of(server).refuse_recipients = {"full@example.test": "452 4.2.2 mailbox full"}
    row_id = queue(sessions, "full@example.test")
    report = await make_sender(make_config(server.port), sessions).flush(NOW)
    assert (report.retried, report.failed) == (1, 0)
    assert row(sessions, row_id).status == "pending"
    assert alerts(sessions) == []


async def test_some_recipients_refused_counts_as_sent(
    sessions: sessionmaker[Session], smtp_factory: ServerFactory
) -> None:
    server = smtp_factory()
    handler_of(server).refuse_recipients = {"gone@example.test": "550 5.1.1 no such user"}
    row_id = queue(sessions, "gone@example.test", "user1@example.test")
    report = await make_sender(make_config(server.port), sessions).flush(NOW)
    assert report.sent == 1
    assert [m.recipients for m in server.messages] == [("user1@example.test",)]
    after = row(sessions, row_id)
    assert after.status == "sent"
    assert "gone@example.test" in (after.last_error or "")


async def test_server_down_loses_nothing_and_sends_once_after_restart(
    sessions: sessionmaker[Session], smtp_factory: ServerFactory
) -> None:
    server = smtp_factory()
    port = server.port
    server.stop()
    ids = [queue(sessions, f"user{i}@example.test", created=NOW + i * SECOND) for i in range(3)]
    outbox = make_sender(make_config(port), sessions)

    report = await outbox.flush(NOW + dt.timedelta(minutes=1))
    assert report.connection_error is not None
    assert (report.sent, report.retried) == (0, 1)
    # One connection attempt per flush; only the row in hand is charged.
    assert [row(sessions, i).attempts for i in ids] == [1, 0, 0]
    assert {row(sessions, i).status for i in ids} == {"pending"}

    restarted = smtp_factory(port=port)
    report = await outbox.flush(NOW + dt.timedelta(hours=1))
    assert report.sent == 3
    assert sorted(m.recipients[0] for m in restarted.messages) == [
        f"user{i}@example.test" for i in range(3)
    ]
    assert (await outbox.flush(NOW + dt.timedelta(days=1))).sent == 0
    assert len(restarted.messages) == 3


async def test_slow_server_hits_the_row_deadline_and_the_row_is_retried(
    sessions: sessionmaker[Session], smtp_factory: ServerFactory
) -> None:
    """The documented at-least-once window: the server may take a letter we gave up on."""
    server = smtp_factory()
    handler_of(server).delay = 2.0
    row_id = queue(sessions)
    outbox = make_sender(make_config(server.port, timeout_seconds=1), sessions)

    report = await outbox.flush(NOW)
    assert report.connection_error is not None
    after = row(sessions, row_id)
    assert (after.status, after.attempts) == ("pending", 1)

    # The slow server took it after all; the retry sends it again with the same Message-ID.
    handler_of(server).delay = 0.0
    assert len(server.handler.wait_for(1, timeout=5)) == 1
    assert (await outbox.flush(after.next_attempt_at)).sent == 1
    first, second = server.handler.wait_for(2)
    assert first.message["Message-ID"] == second.message["Message-ID"] == after.message_id


async def test_421_ends_the_flush_and_leaves_the_other_rows_alone(
    sessions: sessionmaker[Session], smtp_factory: ServerFactory
) -> None:
    server = smtp_factory()
    server.handler.fail_with = "421 4.3.2 service shutting down"
    ids = [queue(sessions, f"user{i}@example.test", created=NOW + i * SECOND) for i in range(3)]
    report = await make_sender(make_config(server.port), sessions).flush(
        NOW + dt.timedelta(minutes=1)
    )
    assert report.connection_error is not None
    assert "421" in report.connection_error
    assert (report.sent, report.retried, report.failed) == (0, 1, 0)
    assert [row(sessions, i).attempts for i in ids] == [1, 0, 0]
    assert len(handler_of(server).peers) == 1


# -- the backoff itself ------------------------------------------------------------------


def test_backoff_doubles_up_to_the_cap() -> None:
    policy = RetryPolicy(base_seconds=30, max_seconds=3600)
    nominal = [policy.delay(n, 1.0).total_seconds() for n in range(1, 10)]
    assert nominal == [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]
    assert policy.delay(1, 0.0).total_seconds() == 15
    assert policy.delay(10_000, 0.0).total_seconds() == 1800


def test_sender_uses_the_configured_backoff(sessions: sessionmaker[Session]) -> None:
    config = make_config(25, retry_base_seconds=5, retry_max_seconds=40)
    outbox = OutboxSender(config, sessions, OUTBOX_ALERTS)
    assert outbox.retry == RetryPolicy(5, 40)
    assert outbox.lease > dt.timedelta(seconds=config.smtp.timeout_seconds)
