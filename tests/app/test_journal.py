"""Odd letters through the whole processor into the journal, on SQLite and PostgreSQL.

The registration world of :mod:`tests.app.world` (imported by this folder's conftest).
"""

from __future__ import annotations

from collections.abc import Callable
from email import message_from_bytes, policy

from sqlalchemy import select

from mailbot.app.letters import Following, LetterSource
from mailbot.directory import subscribers as directory
from mailbot.directory.models import LetterRecord, OutboxMessage
from mailbot.mail.outbox import OutboxSender
from mailbot.notices.daemon_alerts import OUTBOX_ALERTS
from testkit import pki as factory
from testkit.smtpd import start_smtp_server
from tests.app.world import SNILS, World, cert_letter
from tests.regulation.hostile import nested_multipart, set_header


def journal(world: World) -> list[LetterRecord]:
    with world.sessions() as session:
        return list(session.scalars(select(LetterRecord).order_by(LetterRecord.id)))


async def test_internationalised_trusted_sender_is_registered_and_answered(
    make_world: Callable[..., World],
) -> None:
    server = start_smtp_server(set(), None)
    world = make_world(smtp={"host": server.host, "port": server.port, "tls": "none"})
    with world.sessions() as session:
        directory.add_address(session, world.subscriber_id, "иван@пример.рф")
        session.commit()
    participant = factory.make_end_entity(world.ca, snils=SNILS)
    raw = set_header(
        cert_letter(participant, sender="Иван@Пример.РФ"),
        b"Message-ID",
        "<ид-1@пример.рф>".encode(),
    )
    result = world.process(raw, uid=1)
    assert (result.outcome, result.reply_to) == ("success", "Иван@Пример.РФ"), result.detail
    (row,) = journal(world)
    assert (row.sender, row.message_id, row.outcome) == (
        "иван@пример.рф",
        "<ид-1@пример.рф>",
        "success",
    )
    # The reply goes out with SMTPUTF8 (RFC 6531), its To header in UTF-8 (RFC 6532).
    try:
        report = await OutboxSender(world.config, world.sessions, OUTBOX_ALERTS).flush(factory.NOW)
    finally:
        server.stop()
    assert (report.sent, report.failed) == (1, 0), report
    (received,) = server.messages
    assert received.recipients == ("Иван@Пример.РФ",)
    reply = message_from_bytes(received.data, policy=policy.default)
    assert str(reply["To"]) == "Иван@Пример.РФ"
    assert reply["In-Reply-To"] == "<ид-1@пример.рф>"


def test_undecodable_sender_is_journaled_without_reply(world: World) -> None:
    participant = factory.make_end_entity(world.ca, snils=SNILS)
    raw = cert_letter(participant)
    raw = set_header(raw, b"From", b"\xd0\x98\xff <iv\xffanov@clinic.example>")
    raw = set_header(raw, b"Subject", b"ADD_CERT\xff\x00")
    raw = set_header(raw, b"Message-ID", b"<\xff\x00@x>")
    result = world.process(raw, uid=2)
    assert (result.outcome, result.filing, result.reply_to) == ("no_reply", "rejected", None)
    (row,) = journal(world)
    assert row.outcome == "no_reply" and row.message_id is None
    assert row.sender == "iv\ufffdanov@clinic.example"
    assert row.subject == "ADD_CERT\u044f\ufffd"  # cp1251 recovered, the NUL replaced
    with world.sessions() as session:
        assert session.scalars(select(OutboxMessage)).all() == []


def test_deeply_nested_letter_is_answered_invalid_files(world: World) -> None:
    result = world.process(nested_multipart(1000), uid=3)
    assert (result.outcome, result.reply_to) == ("invalid_files", "ivanov@clinic.example")
    (row,) = journal(world)
    assert row.message_id == "<20250301101500.1@clinic.example>"
    assert row.subject == "ADD_CERT"


def test_a_decision_claims_the_following_letter_in_its_transaction(world: World) -> None:
    first = cert_letter(factory.make_end_entity(world.ca, snils=SNILS))
    second = cert_letter(factory.make_end_entity(world.ca, snils=SNILS))
    source = LetterSource("INBOX", 1, 1)
    world.processor.claim(first, source)
    result = world.processor.process(
        first, source, following=Following.of(second, LetterSource("INBOX", 1, 2))
    )
    assert result.outcome == "success", result.detail
    assert result.next_claim is not None
    assert (result.next_claim.attempts, result.next_claim.state) == (1, "claimed")
    rows = journal(world)
    assert [(r.uid, r.state, r.attempts) for r in rows] == [(1, "done", 1), (2, "claimed", 1)]
    # Its processing then goes on the claimed row, counted once.
    done = world.processor.process(second, LetterSource("INBOX", 1, 2))
    assert done.letter_id == result.next_claim.letter_id and done.outcome == "success"
    assert [(r.state, r.attempts) for r in journal(world)] == [("done", 1), ("done", 1)]


def test_a_letter_archived_beforehand_is_not_written_again(world: World) -> None:
    raw = cert_letter(factory.make_end_entity(world.ca, snils=SNILS))
    archived = world.processor.archive(raw)
    assert archived.read_bytes() == raw
    # Removed behind the processor's back: only a second write would bring it back.
    archived.unlink()
    result = world.processor.process(raw, LetterSource("INBOX", 1, 1), archived=archived)
    assert result.outcome == "success", result.detail
    (row,) = journal(world)
    assert row.archive_path == str(archived)
    assert not archived.exists()


def test_a_dry_run_claims_no_following_letter(world: World) -> None:
    first = cert_letter(factory.make_end_entity(world.ca, snils=SNILS))
    second = cert_letter(factory.make_end_entity(world.ca, snils=SNILS))
    result = world.processor.process(
        first, LetterSource("INBOX", 1, 1), dry_run=True,
        following=Following.of(second, LetterSource("INBOX", 1, 2)),
    )  # fmt: skip
    assert result.next_claim is None
    assert journal(world) == []
