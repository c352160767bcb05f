"""A subscriber's iCloud vacation reply to our letter: journaled and filed away, never answered."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from mailbot.directory.models import LetterRecord, OutboxMessage
from testkit import letters
from tests.app.world import World

#: A real iCloud reply (provenance: tests/regulation/mail_samples/README.md); only X-Apple-Action marks it.
ICLOUD = Path(__file__).parents[1] / "regulation" / "mail_samples/auto_replies/icloud_vacation.eml"


def test_icloud_vacation_reply_is_journaled_without_a_reply(world: World) -> None:
    # The anonymised iCloud address replaced by the subscriber's own, trusted one.
    headers = ICLOUD.read_bytes().replace(
        b"kijitora@apple.example.com", letters.TRUSTED_SENDER.encode()
    )
    result = world.process(headers + b"\nI am on holiday until 10 January.\n", uid=1)
    assert (result.outcome, result.filing, result.reply_text) == ("no_reply", "rejected", None)
    with world.sessions() as session:
        assert session.scalars(select(OutboxMessage)).all() == []
        letter = session.scalars(select(LetterRecord)).one()
        assert letter.outcome == "no_reply"
        hits = {h["rule"]: h["detail"] for h in letter.rule_hits if h["hit"]}
        assert hits == {"apple_vacation": "X-Apple-Action: vacation"}
