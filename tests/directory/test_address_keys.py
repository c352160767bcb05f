"""The indexed address keys are right on every write path (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import insert, select, update
from sqlalchemy.exc import CompileError
from sqlalchemy.orm import Session

from mailbot.directory import subscribers as directory
from mailbot.directory.models import OutboxMessage, TrustedAddress

NOW = dt.datetime(2026, 11, 30, 9, 0, tzinfo=dt.UTC)


def subscriber(session: Session) -> int:
    organisation = directory.add_organisation(session, "ГБУЗ МО «Больница»")
    return directory.add_subscriber(session, organisation.id, surname="Иванов").id


def keys(session: Session) -> dict[str, str]:
    rows = session.execute(select(TrustedAddress.address, TrustedAddress.address_key))
    return dict(rows.all())


def test_orm_and_core_executemany_inserts_fill_the_key(session: Session) -> None:
    subscriber_id = subscriber(session)
    directory.add_address(session, subscriber_id, "Иван@Пример.РФ")
    session.add(TrustedAddress(subscriber_id=subscriber_id, address="orm@Mächine.example"))
    session.execute(
        insert(TrustedAddress),
        [
            {"subscriber_id": subscriber_id, "address": "petrov@xn--e1afmkfd.xn--p1ai"},
            {"subscriber_id": subscriber_id, "address": "jdöe@mächine.example"},
        ],
    )
    session.commit()
    assert keys(session) == {
        "иван@пример.рф": "иван@xn--e1afmkfd.xn--p1ai",
        "orm@Mächine.example": "orm@xn--mchine-bua.example",
        "petrov@xn--e1afmkfd.xn--p1ai": "petrov@xn--e1afmkfd.xn--p1ai",
        "jdöe@mächine.example": "jdöe@xn--mchine-bua.example",
    }
    # Rows written by a bulk insert are found by the gate like any other.
    found = directory.subscribers_trusting(session, "JDÖE@xn--mchine-bua.example")
    assert [s.id for s in found] == [subscriber_id]


def test_updates_keep_the_key_or_refuse_a_stale_one(session: Session) -> None:
    subscriber_id = subscriber(session)
    trusted = directory.add_address(session, subscriber_id, "иван@пример.рф")
    session.commit()

    directory.remove_address(session, subscriber_id, "иван@пример.рф")
    session.execute(update(TrustedAddress).values(active=True))
    session.commit()
    assert keys(session) == {"иван@пример.рф": "иван@xn--e1afmkfd.xn--p1ai"}

    trusted.address = "пётр@пример.рф"  # an ORM assignment moves the key along
    session.commit()
    assert keys(session) == {"пётр@пример.рф": "пётр@xn--e1afmkfd.xn--p1ai"}

    with pytest.raises(CompileError, match="address_key is derived from address"):
        session.execute(update(TrustedAddress).values(address="x@example.test"))
    session.rollback()
    with pytest.raises(CompileError, match="address_key is derived from address"):
        session.execute(update(TrustedAddress), [{"id": trusted.id, "address": "x@example.test"}])
    session.rollback()
    assert keys(session) == {"пётр@пример.рф": "пётр@xn--e1afmkfd.xn--p1ai"}


def outbox_row(kind: str, recipients: list[str], number: int) -> dict[str, object]:
    return {
        "kind": kind,
        "recipients": recipients,
        "message_id": f"<{number}@mailbot.test>",
        "raw": b"",
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": NOW,
        "created_at": NOW,
    }


def test_outbox_recipient_key_is_set_for_replies_only(session: Session) -> None:
    session.execute(
        insert(OutboxMessage),
        [
            outbox_row("reply", ["Иван@Пример.РФ"], 1),
            outbox_row("alert", ["admin@fund.example"], 2),
            outbox_row("reply", [], 3),
        ],
    )
    orm = OutboxMessage(**outbox_row("reply", ["IVANOV@Clinic.example"], 4))
    session.add(orm)
    session.commit()
    orm.status = "sent"  # the sender's updates leave the key alone
    session.commit()
    rows = session.execute(select(OutboxMessage.message_id, OutboxMessage.recipient_key))
    assert dict(rows.all()) == {
        "<1@mailbot.test>": "иван@xn--e1afmkfd.xn--p1ai",
        "<2@mailbot.test>": None,
        "<3@mailbot.test>": None,
        "<4@mailbot.test>": "ivanov@clinic.example",
    }
    with pytest.raises(CompileError, match="recipient_key is derived from kind"):
        session.execute(update(OutboxMessage).values(kind="reply"))


def test_an_address_whose_key_does_not_fit_is_refused(session: Session) -> None:
    subscriber_id = subscriber(session)
    # 241 characters as typed, 961 once each one-letter Cyrillic label is punycode.
    address = "a@" + ".".join(["я"] * 120)
    with pytest.raises(directory.DirectoryError, match="longer than 320"):
        directory.add_address(session, subscriber_id, address)
