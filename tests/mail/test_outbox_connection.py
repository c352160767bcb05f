"""The outbox's SMTP connection: kept between flushes, replaced when dead, closed when idle;
one TLS context per setting. Real in-process SMTP servers, SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from mailbot.mail import smtp_link
from mailbot.mail.outbox import OutboxSender
from mailbot.mail.smtp_link import tls_context_for
from mailbot.notices.daemon_alerts import OUTBOX_ALERTS
from testkit.smtpd import SmtpServer
from tests.logs import _default_logging  # noqa: F401  (autouse, as in its old folder)

from .outbox_support import NOW, CountingHandler, ServerFactory, make_config, queue, row


def handler_of(server: SmtpServer) -> CountingHandler:
    assert isinstance(server.handler, CountingHandler)
    return server.handler


class Ticks:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_the_connection_is_kept_across_flushes_and_closed_on_request(
    sessions: sessionmaker[Session], smtp_factory: ServerFactory
) -> None:
    server = smtp_factory()
    outbox = OutboxSender(make_config(server.port), sessions, OUTBOX_ALERTS)
    first = queue(sessions, "user1@example.test")
    assert (await outbox.flush(NOW)).sent == 1
    second = queue(sessions, "user2@example.test")
    assert (await outbox.flush(NOW)).sent == 1

    assert server.connections == 1
    assert handler_of(server).noops == 1  # the kept connection is checked before reuse
    assert [row(sessions, i).status for i in (first, second)] == ["sent", "sent"]
    await outbox.close()
    assert not outbox.link.is_open
    queue(sessions, "user3@example.test")
    assert (await outbox.flush(NOW)).sent == 1
    assert server.connections == 2
    await outbox.close()


async def test_an_idle_connection_is_closed_at_the_next_flush(
    sessions: sessionmaker[Session], smtp_factory: ServerFactory
) -> None:
    server = smtp_factory()
    ticks = Ticks()
    outbox = OutboxSender(
        make_config(server.port), sessions, OUTBOX_ALERTS, idle_seconds=30, monotonic=ticks
    )
    queue(sessions)
    await outbox.flush(NOW)
    ticks.now += 29
    assert not await outbox.close_if_idle()
    assert (await outbox.flush(NOW)).sent == 0  # nothing due: the connection stays
    assert outbox.link.is_open

    ticks.now += 2  # 31 s since the last letter
    assert (await outbox.flush(NOW)) == type(await outbox.flush(NOW))()
    assert not outbox.link.is_open
    queue(sessions, "user2@example.test")
    assert (await outbox.flush(NOW)).sent == 1
    assert server.connections == 2
    ticks.now += 31
    assert await outbox.close_if_idle()  # what a periodic job may call
    assert not outbox.link.is_open


async def test_a_connection_the_server_dropped_is_replaced_without_charging_a_letter(
    sessions: sessionmaker[Session], smtp_factory: ServerFactory
) -> None:
    server = smtp_factory(idle_timeout=0.3)
    outbox = OutboxSender(make_config(server.port), sessions, OUTBOX_ALERTS)
    queue(sessions)
    assert (await outbox.flush(NOW)).sent == 1
    await asyncio.sleep(0.8)  # the server hangs up on its idle client
    row_id = queue(sessions, "user2@example.test")

    report = await outbox.flush(NOW)

    assert (report.sent, report.retried, report.connection_error) == (1, 0, None)
    after = row(sessions, row_id)
    assert (after.status, after.attempts, after.last_error) == ("sent", 1, None)
    assert server.connections == 2
    assert len(server.messages) == 2
    await outbox.close()


async def test_a_421_to_the_noop_means_reconnect_not_a_failed_letter(
    sessions: sessionmaker[Session], smtp_factory: ServerFactory
) -> None:
    server = smtp_factory()
    outbox = OutboxSender(make_config(server.port), sessions, OUTBOX_ALERTS)
    queue(sessions)
    await outbox.flush(NOW)
    handler_of(server).noop_reply = "421 4.4.2 idle too long, closing"
    row_id = queue(sessions, "user2@example.test")

    report = await outbox.flush(NOW)

    assert (report.sent, report.connection_error) == (1, None)
    assert (row(sessions, row_id).status, row(sessions, row_id).attempts) == ("sent", 1)
    assert server.connections == 2
    await outbox.close()


async def test_a_server_gone_for_good_still_charges_the_row_in_hand(
    sessions: sessionmaker[Session], smtp_factory: ServerFactory
) -> None:
    server = smtp_factory()
    outbox = OutboxSender(make_config(server.port), sessions, OUTBOX_ALERTS)
    queue(sessions)
    await outbox.flush(NOW)
    server.stop()
    row_id = queue(sessions, "user2@example.test")

    report = await outbox.flush(NOW)

    # The dead kept connection is not the letter's fault; the refused reconnect is.
    assert report.connection_error is not None
    assert "cannot connect" in report.connection_error
    assert (row(sessions, row_id).status, row(sessions, row_id).attempts) == ("pending", 1)
    await outbox.close()


# -- the TLS context -----------------------------------------------------------------------


@pytest.fixture
def context_builds(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """Client-side ``ssl.create_default_context`` calls from now on (the real one still runs)."""
    calls: list[Any] = []
    real = ssl.create_default_context

    def counting(*args: Any, **kwargs: Any) -> ssl.SSLContext:
        if ssl.Purpose.CLIENT_AUTH not in (*args, *kwargs.values()):  # not the test server's
            calls.append((args, kwargs))
        return real(*args, **kwargs)

    smtp_link._tls_context.cache_clear()
    monkeypatch.setattr(ssl, "create_default_context", counting)
    yield calls
    smtp_link._tls_context.cache_clear()


async def test_one_tls_context_serves_every_sender_and_flush(
    sessions: sessionmaker[Session],
    smtp_factory: ServerFactory,
    tls_files: tuple[Path, Path],
    context_builds: list[Any],
) -> None:
    cert, key = tls_files
    server = smtp_factory(tls="starttls", cert_file=cert, key_file=key)
    config = make_config(server.port, "starttls", ca_file=cert)
    senders = [OutboxSender(config, sessions, OUTBOX_ALERTS) for _ in range(2)]
    for number, outbox in enumerate(senders * 2):
        queue(sessions, f"user{number}@example.test")
        report = await outbox.flush(NOW)
        assert report.sent == 1, report.connection_error
        await outbox.close()  # a new connection (and TLS handshake) every time

    assert server.connections == 4
    assert len(context_builds) == 1
    assert tls_context_for(config.smtp) is tls_context_for(config.smtp)


async def test_no_tls_context_at_all_without_tls(
    sessions: sessionmaker[Session], smtp_factory: ServerFactory, context_builds: list[Any]
) -> None:
    server = smtp_factory()
    outbox = OutboxSender(make_config(server.port), sessions, OUTBOX_ALERTS)
    queue(sessions)
    assert (await outbox.flush(NOW)).sent == 1
    await outbox.close()
    assert context_builds == []
    assert tls_context_for(make_config(server.port).smtp) is None
