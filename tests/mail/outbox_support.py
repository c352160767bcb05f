"""Outbox fixtures: a migrated database (SQLite and PostgreSQL), queued letters, SMTP servers.

The fixtures are imported by the conftests of ``tests/mail`` and ``tests/notices``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import email.utils
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from mailbot.config.schema import AdminConfig, Config, GeneralConfig, SmtpConfig
from mailbot.config.secrets import SecretSource
from mailbot.directory import migrate
from mailbot.directory.models import OutboxMessage
from mailbot.directory.session import session_factory
from mailbot.mail.outbox import OutboxSender
from mailbot.notices.daemon_alerts import OUTBOX_ALERTS
from testkit.smtpd import RecordingRelayHandler, SmtpServer
from testkit.tls import make_self_signed

NOW = dt.datetime(2025, 3, 1, 9, 0, tzinfo=dt.UTC)
FROM = "reestrin@fund.test"
ADMIN = "admin@fund.test"


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    """Sessions on a freshly migrated database."""
    migrate.upgrade(engine)
    return session_factory(engine)


def make_config(
    port: int,
    tls: str = "none",
    ca_file: Path | None = None,
    user: str = "",
    password_env: str = "",
    alerts: tuple[str, ...] = (ADMIN,),
    **smtp: Any,
) -> Config:
    """A configuration sending through 127.0.0.1:*port*."""
    return Config(
        general=GeneralConfig(instance_name="mailbot-test"),
        smtp=SmtpConfig(
            host="127.0.0.1",
            port=port,
            tls=tls,  # type: ignore[arg-type]
            ca_file=ca_file,
            user=user,
            password=SecretSource(env=password_env),
            from_address=FROM,
            **smtp,
        ),
        admin=AdminConfig(alert_addresses=alerts),
    )


def sender(config: Config, sessions: sessionmaker[Session], jitter: float = 0.5) -> OutboxSender:
    """An :class:`OutboxSender` with fixed jitter, so that backoff times are exact."""
    return OutboxSender(config, sessions, OUTBOX_ALERTS, jitter=lambda: jitter)


def queue(
    sessions: sessionmaker[Session],
    *recipients: str,
    kind: str = "reply",
    created: dt.datetime = NOW,
    status: str = "pending",
    text: str = "Установка сертификата выполнена успешно.",
) -> int:
    """Queue one letter to *recipients* (default user1@example.test); returns the row id."""
    to = list(recipients or ("user1@example.test",))
    message = EmailMessage(policy=policy.SMTP)
    message["From"] = FROM
    message["To"] = ", ".join(to)
    message["Subject"] = "Re: ADD_CERT"
    message["Date"] = email.utils.format_datetime(created)
    message["Message-ID"] = email.utils.make_msgid(domain="fund.test")
    message.set_content(text + "\n", charset="utf-8")
    with sessions() as session:
        row = OutboxMessage(
            kind=kind,
            recipients=to,
            message_id=str(message["Message-ID"]),
            raw=bytes(message),
            status=status,
            next_attempt_at=created,
            created_at=created,
        )
        session.add(row)
        session.commit()
        return row.id


def row(sessions: sessionmaker[Session], row_id: int) -> OutboxMessage:
    """The outbox row as stored now."""
    with sessions() as session:
        return session.get_one(OutboxMessage, row_id)


def rows(sessions: sessionmaker[Session]) -> list[OutboxMessage]:
    """Every outbox row, by id."""
    with sessions() as session:
        return list(session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


@dataclass
class CountingHandler(RecordingRelayHandler):
    """Records the client's address of every DATA (one per connection in a flush)."""

    peers: list[Any] = field(default_factory=list)
    #: Recipients answered with this reply at RCPT TO.
    refuse_recipients: dict[str, str] = field(default_factory=dict)
    #: Seconds to wait before answering DATA (a slow server).
    delay: float = 0.0
    #: Called at each DATA, before anything else (e.g. to move a test's clocks).
    on_data: Callable[[], object] | None = None
    #: When set, every NOOP is answered with this reply (e.g. a 421).
    noop_reply: str | None = None
    noops: int = 0

    async def handle_NOOP(self, _server: Any, _session: Any, _envelope: Any, _arg: str) -> str:
        """Count the NOOP; answer as configured."""
        self.noops += 1
        return self.noop_reply or "250 OK"

    async def handle_RCPT(
        self, _server: Any, _session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        """Refuse configured recipients, accept the rest."""
        if address in self.refuse_recipients:
            return self.refuse_recipients[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        """Note the connection, then behave like the recording handler."""
        self.peers.append(session.peer)
        if self.on_data is not None:
            self.on_data()
        if self.delay:
            await asyncio.sleep(self.delay)
        return await super().handle_DATA(server, session, envelope)


ServerFactory = Callable[..., SmtpServer]


@pytest.fixture
def smtp_factory() -> Iterator[ServerFactory]:
    """Start in-process SMTP servers (no relay) with a :class:`CountingHandler`; stop them all."""
    started: list[SmtpServer] = []

    def start(**kwargs: Any) -> SmtpServer:
        handler = CountingHandler(local_domains=frozenset(), lmtp=None)
        server = SmtpServer(handler, **kwargs).start()
        started.append(server)
        return server

    yield start
    for server in started:
        with contextlib.suppress(AssertionError, RuntimeError):  # stopped by the test
            server.stop()


@pytest.fixture
def tls_files(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate (for localhost and 127.0.0.1) and its key."""
    cert, key = tmp_path / "smtp-cert.pem", tmp_path / "smtp-key.pem"
    make_self_signed(cert, key)
    return cert, key
