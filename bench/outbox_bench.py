"""Outbox benchmark: flush N queued letters through a local SMTP server, per database.

Prints the time per letter and the database commits per letter (counted with an
engine event), for SQLite and PostgreSQL (127.0.0.1:5432, as the tests use).

Run: ``PYTHONPATH=. .venv/bin/python bench/outbox_bench.py [--letters 1000] [--tls none]
[--mode backlog|trickle]``.
Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import email.utils
import itertools
import os
import tempfile
import time
from email import policy
from email.message import EmailMessage
from pathlib import Path

from sqlalchemy import Engine, event, func, select
from sqlalchemy.orm import Session, sessionmaker

from mailbot.config.schema import AdminConfig, Config, GeneralConfig, SmtpConfig
from mailbot.directory import migrate
from mailbot.directory.engine import make_engine
from mailbot.directory.models import OutboxMessage
from mailbot.directory.session import session_factory
from mailbot.log import configure_logging
from mailbot.mail.outbox import OutboxSender
from mailbot.notices.daemon_alerts import OUTBOX_ALERTS
from testkit import postgres
from testkit.smtpd import RecordingRelayHandler, SmtpServer
from testkit.tls import make_self_signed

NOW = dt.datetime(2025, 3, 1, 9, 0, tzinfo=dt.UTC)
_numbers = itertools.count()


def queue(sessions: sessionmaker[Session], count: int) -> None:
    with sessions() as session, session.begin():
        for _ in range(count):
            number = next(_numbers)
            message = EmailMessage(policy=policy.SMTP)
            message["From"] = "reestrin@fund.test"
            message["To"] = f"user{number}@example.test"
            message["Subject"] = "Re: ADD_CERT"
            message["Date"] = email.utils.format_datetime(NOW)
            message["Message-ID"] = email.utils.make_msgid(domain="fund.test")
            message.set_content("Установка сертификата выполнена успешно.\n" * 20)
            session.add(
                OutboxMessage(
                    kind="reply",
                    recipients=[f"user{number}@example.test"],
                    message_id=str(message["Message-ID"]),
                    raw=bytes(message),
                    next_attempt_at=NOW,
                    created_at=NOW + dt.timedelta(microseconds=number),
                )
            )


async def drain(outbox: OutboxSender) -> int:
    sent = 0
    while True:
        report = await outbox.flush()
        if report.connection_error:
            raise RuntimeError(report.connection_error)
        if not report.sent:
            break
        sent += report.sent
    close = getattr(outbox, "close", None)
    if close is not None:
        await close()
    return sent


async def trickle(outbox: OutboxSender, sessions: sessionmaker[Session], letters: int) -> int:
    sent = 0
    for _ in range(letters):
        await asyncio.to_thread(queue, sessions, 1)
        sent += (await outbox.flush()).sent
    close = getattr(outbox, "close", None)
    if close is not None:
        await close()
    return sent


def run(engine: Engine, letters: int, tls: str, mode: str, certs: tuple[Path, Path]) -> None:
    migrate.upgrade(engine)
    sessions = session_factory(engine)
    if mode == "backlog":
        queue(sessions, letters)
    cert, key = certs
    handler = RecordingRelayHandler(local_domains=frozenset(), lmtp=None)
    kwargs = {"cert_file": cert, "key_file": key} if tls != "none" else {}
    server = SmtpServer(handler, tls=tls, **kwargs).start()  # type: ignore[arg-type]
    config = Config(
        general=GeneralConfig(instance_name="bench"),
        smtp=SmtpConfig(
            host="127.0.0.1",
            port=server.port,
            tls=tls,  # type: ignore[arg-type]
            ca_file=cert if tls != "none" else None,
            from_address="reestrin@fund.test",
        ),
        admin=AdminConfig(alert_addresses=("admin@fund.test",)),
    )
    commits = 0

    def count(_connection: object) -> None:
        nonlocal commits
        commits += 1

    event.listen(engine, "commit", count)
    outbox = OutboxSender(config, sessions, OUTBOX_ALERTS)
    started = time.perf_counter()
    sent = asyncio.run(drain(outbox) if mode == "backlog" else trickle(outbox, sessions, letters))
    elapsed = time.perf_counter() - started
    event.remove(engine, "commit", count)
    server.stop()
    with sessions() as session:
        unsent = session.scalar(
            select(func.count()).select_from(OutboxMessage).where(OutboxMessage.status != "sent")
        )
    if mode == "trickle":
        commits -= letters  # queueing each letter is not the outbox's work
    per_letter = 1000 * elapsed / max(sent, 1)
    print(
        f"  {engine.dialect.name:10} tls={tls:8} {mode:7} {sent} letters in {elapsed:.2f} s: "
        f"{per_letter:.2f} ms/letter, {commits / max(sent, 1):.3f} commits/letter, "
        f"{len(handler.messages)} accepted, {unsent} unsent"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--letters", type=int, default=1000)
    parser.add_argument("--tls", default="none", choices=["none", "starttls", "implicit"])
    # backlog: N letters queued, then flushed; trickle: queue one, flush, N times (the
    # daemon flushes after every letter it answers).
    parser.add_argument("--mode", default="backlog", choices=["backlog", "trickle"])
    args = parser.parse_args()
    with Path(os.devnull).open("w") as devnull:
        configure_logging(stream=devnull)  # logged as in production, not printed
        measure(args.letters, args.tls, args.mode)


def measure(letters: int, tls: str, mode: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        certs = Path(tmp, "cert.pem"), Path(tmp, "key.pem")
        make_self_signed(*certs)
        sqlite = make_engine(f"sqlite:///{Path(tmp, 'bench.sqlite3')}")
        run(sqlite, letters, tls, mode, certs)
        sqlite.dispose()
        url = postgres.create_database("mailbot_bench")
        engine = make_engine(url)
        try:
            run(engine, letters, tls, mode, certs)
        finally:
            engine.dispose()
            postgres.drop_database(url)


if __name__ == "__main__":
    main()
