"""The per-letter database lookups: the reply count's semantics, and both lookups use an index.

On SQLite and PostgreSQL, with rows written by Core bulk inserts (as an import
or a benchmark writes them).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, event, insert, text
from sqlalchemy.orm import Session

from mailbot.app.adapters import DbReplyCounter, DbSenderDirectory
from mailbot.directory import migrate
from mailbot.directory.models import Organisation, OutboxMessage, Subscriber, TrustedAddress
from mailbot.directory.session import session_factory

ZONE = "Europe/Moscow"  # UTC+3: the day 2026-11-30 is [11-29 21:00, 11-30 21:00) UTC
DAY = dt.date(2026, 11, 30)
#: Rows enough for a planner to prefer an index to a scan.
VOLUME = 2000


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    migrate.upgrade(engine)
    with session_factory(engine)() as session:
        yield session


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)


def add_replies(session: Session, rows: list[tuple[str, str, dt.datetime]]) -> None:
    """Outbox rows ``(kind, recipient, created_at)``, by a Core executemany."""
    start = session.query(OutboxMessage).count()
    session.execute(
        insert(OutboxMessage),
        [
            {
                "kind": kind,
                "recipients": [recipient],
                "message_id": f"<{start + n}@mailbot.test>",
                "raw": b"",
                "status": "sent",
                "attempts": 1,
                "next_attempt_at": created_at,
                "created_at": created_at,
            }
            for n, (kind, recipient, created_at) in enumerate(rows)
        ],
    )
    session.commit()


def test_replies_are_counted_per_local_day_address_and_kind(session: Session) -> None:
    add_replies(
        session,
        [
            ("reply", "Иван@Пример.РФ", utc(2026, 11, 29, 21, 0)),  # 00:00 in Moscow
            ("reply", "иван@xn--e1afmkfd.xn--p1ai", utc(2026, 11, 30, 20, 59, 59)),
            ("reply", "ИВАН@пример.рф", utc(2026, 11, 30, 21, 0)),  # the next day
            ("reply", "иван@пример.рф", utc(2026, 11, 29, 20, 59, 59)),  # the day before
            ("alert", "иван@пример.рф", utc(2026, 11, 30, 9, 0)),
            ("reminder", "иван@пример.рф", utc(2026, 11, 30, 9, 0)),
            ("reply", "пётр@пример.рф", utc(2026, 11, 30, 9, 0)),
        ],
    )
    counter = DbReplyCounter(session, ZONE)
    assert counter.replies_on("иван@пример.рф", DAY) == 2
    assert counter.replies_on("ИВАН@XN--E1AFMKFD.XN--P1AI", DAY) == 2
    assert counter.replies_on("иван@пример.рф", DAY - dt.timedelta(days=1)) == 1
    assert counter.replies_on("иван@пример.рф", DAY + dt.timedelta(days=1)) == 1
    assert counter.replies_on("пётр@xn--e1afmkfd.xn--p1ai", DAY) == 1
    assert counter.replies_on("admin@fund.example", DAY) == 0


def test_a_reply_to_an_address_longer_once_normalised_is_queued_and_counted(
    session: Session,
) -> None:
    # 241 characters as written (a valid sender), 961 once its labels are punycode.
    sender = "a@" + ".".join(["я"] * 120)
    add_replies(session, [("reply", sender, utc(2026, 11, 30, 9, 0))])
    assert DbReplyCounter(session, ZONE).replies_on(sender.upper(), DAY) == 1


def fill_at_volume(session: Session) -> None:
    """VOLUME subscribers with one trusted address each and VOLUME replies today."""
    session.add(Organisation(id=1, name="Больница"))
    session.flush()
    session.execute(
        insert(Subscriber),
        [{"id": n, "organisation_id": 1, "certificate_fields": {}} for n in range(1, VOLUME + 1)],
    )
    session.execute(
        insert(TrustedAddress),
        [{"subscriber_id": n, "address": f"user{n}@пример.рф"} for n in range(1, VOLUME + 1)],
    )
    session.commit()
    moment = utc(2026, 11, 30, 9, 0)
    add_replies(session, [("reply", f"user{n % 100}@пример.рф", moment) for n in range(VOLUME)])
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("ANALYZE"))  # what autovacuum does after such an insert


def executed_statement(
    session: Session, marker: str, call: Callable[[], object]
) -> tuple[str, Any]:
    """The statement (and its parameters) *call* ran that mentions *marker*."""
    seen: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_rest: Any) -> None:
        seen.append((statement, parameters))

    engine = session.get_bind()
    event.listen(engine, "before_cursor_execute", record)
    try:
        call()
    finally:
        event.remove(engine, "before_cursor_execute", record)
    [found] = [(s, p) for s, p in seen if marker in s]
    return found


def plan(session: Session, statement: str, parameters: Any) -> str:
    """The query plan of *statement* as text."""
    connection = session.connection()
    if connection.dialect.name == "sqlite":
        rows = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
        return "\n".join(str(row[-1]) for row in rows)
    rows = connection.exec_driver_sql(f"EXPLAIN {statement}", parameters)
    return "\n".join(str(row[0]) for row in rows)


def test_sender_lookup_uses_the_address_key_index(session: Session) -> None:
    fill_at_volume(session)
    directory = DbSenderDirectory(session)
    assert [
        c.subscriber_id for c in directory.active_subscribers("USER7@xn--e1afmkfd.xn--p1ai")
    ] == ["7"]

    text_plan = plan(
        session,
        *executed_statement(
            session, "address_key", lambda: directory.active_subscribers("user7@пример.рф")
        ),
    )
    assert "ix_trusted_addresses_address_key" in text_plan, text_plan
    assert "SCAN trusted_addresses" not in text_plan, text_plan  # SQLite
    assert "Seq Scan on trusted_addresses" not in text_plan, text_plan  # PostgreSQL


def test_reply_count_uses_the_recipient_key_index(session: Session) -> None:
    fill_at_volume(session)
    counter = DbReplyCounter(session, ZONE)
    assert counter.replies_on("USER7@пример.рф", DAY) == VOLUME // 100

    text_plan = plan(
        session,
        *executed_statement(
            session, "recipient_key", lambda: counter.replies_on("user7@пример.рф", DAY)
        ),
    )
    assert "ix_outbox_recipient_key_created_at" in text_plan, text_plan
    assert "SCAN outbox" not in text_plan, text_plan
    assert "Seq Scan on outbox" not in text_plan, text_plan
