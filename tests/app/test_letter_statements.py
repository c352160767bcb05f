"""The SQL one certificate letter costs in a burst (issue 12: the daemon is CPU-bound, and
every statement through the ORM costs CPU), on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, event

from mailbot.app.letters import LetterSource
from mailbot.regulation.decision import Outcome
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
            first, LetterSource("INBOX", 1, 1), following=(second, LetterSource("INBOX", 1, 2))
        )
    assert result.outcome is Outcome.SUCCESS
    assert result.next_claim is not None and not result.next_claim.finished
    ca_reads = [s for s in seen if re.match(r"SELECT .* FROM certification_authorities", s)]
    # The issuer lookup's row serves the registration's URL update too.
    assert len(ca_reads) == 1, seen
