"""The SQL one certificate letter costs in a burst (issue 12: the daemon is CPU-bound, and
every statement through the ORM costs CPU), on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, event, func, select

from mailbot.app.letters import Following, LetterSource
from mailbot.directory.models import LetterRecord
from mailbot.regulation.decision import Outcome
from testkit import letters
from testkit import pki as factory
from tests.app.world import SNILS, World, cert_letter


@contextmanager
def statements(engine: Engine) -> Iterator[list[str]]:
    """The SQL statements executed on *engine* inside the block, on one line each."""
    seen: list[str] = []

    def record(*args: object) -> None:
        seen.append(" ".join(str(args[2]).split()))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def test_certificate_letter_reads_its_ca_row_once(
    make_world: Callable[..., World], engine: Engine
) -> None:
    world = make_world()
    first = cert_letter(factory.make_end_entity(world.ca, snils=SNILS, serial=0xA01))
    second = cert_letter(factory.make_end_entity(world.ca, snils=SNILS, serial=0xA02))
    world.processor.claim(first, LetterSource("INBOX", 1, 1))
    with statements(engine) as seen:
        result = world.processor.process(
            first,
            LetterSource("INBOX", 1, 1),
            following=Following.of(second, LetterSource("INBOX", 1, 2)),
        )
    assert result.outcome is Outcome.SUCCESS
    assert result.next_claim is not None and not result.next_claim.finished
    ca_reads = [s for s in seen if re.match(r"SELECT .* FROM certification_authorities", s)]
    # The issuer lookup's row serves the registration's URL update too.
    assert len(ca_reads) == 1, seen


def test_registered_letter_updates_its_journal_row_once(
    make_world: Callable[..., World], engine: Engine
) -> None:
    world = make_world()
    raw = cert_letter(factory.make_end_entity(world.ca, snils=SNILS, serial=0xA03))
    world.processor.claim(raw, LetterSource("INBOX", 1, 1))
    with statements(engine) as seen:
        result = world.processor.process(raw, LetterSource("INBOX", 1, 1))
    assert result.outcome is Outcome.SUCCESS
    updates = [s for s in seen if s.startswith("UPDATE letters ")]
    assert len(updates) == 1, updates
    # The one UPDATE carries the decision and the registered certificate together.
    assert "state=" in updates[0] and "certificate_id=" in updates[0], updates
    with world.sessions() as session:
        row = session.get(LetterRecord, result.letter_id)
        assert row is not None and row.state == "done" and row.outcome == "success"
        assert row.certificate_id is not None and row.subscriber_id == world.subscriber_id
        assert row.detail["install"]["already_registered"] is False
        assert row.archive_path and row.template_key == "success"


def test_the_same_letter_following_itself_is_found_already_decided(world: World) -> None:
    """The claim's Core lookups see the decision of their own transaction.

    A delivery report gets no reply: no outbox row flushes the decision before the claim.
    """
    raw = letters.delivery_report()
    world.processor.claim(raw, LetterSource("INBOX", 1, 1))
    result = world.processor.process(
        raw, LetterSource("INBOX", 1, 1), following=Following.of(raw, LetterSource("INBOX", 1, 2))
    )
    assert result.outcome is Outcome.NO_REPLY
    claim = result.next_claim
    assert claim is not None and claim.finished and claim.letter_id == result.letter_id
    with world.sessions() as session:
        count = session.scalar(select(func.count()).select_from(LetterRecord))
    assert count == 1
