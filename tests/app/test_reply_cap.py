"""Over the daily reply cap a letter is checked in full; only the participant's reply is withheld."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select

from mailbot.directory.models import (
    Alert,
    CertificateRecord,
    LetterRecord,
    OutboxMessage,
    QuarantinedCertificate,
)
from testkit import letters
from testkit import pki as factory
from tests.app.world import SNILS, World, cert_letter, forged_certificate


def kinds(world: World) -> list[str]:
    with world.sessions() as session:
        return [a.kind for a in session.scalars(select(Alert).order_by(Alert.id))]


def replies(world: World) -> int:
    with world.sessions() as session:
        rows = session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "reply"))
        return len(list(rows))


def test_over_the_cap_alerts_quarantine_and_registration_still_happen(
    make_world: Callable[..., World],
) -> None:
    world = make_world(
        limits={"replies_per_sender_per_day": 1}, admin={"alert_addresses": ["admin@fund.example"]}
    )
    first = world.process(letters.no_attachment_letter(), uid=1)
    assert (first.outcome, first.reply_to) == ("no_cer", letters.TRUSTED_SENDER)
    assert replies(world) == 1

    # A forgery over the cap: invalid_cert decided, the forgery alert raised, no reply.
    forged = forged_certificate(world)
    result = world.process(cert_letter(forged), uid=2)
    assert (result.outcome, result.reply_to, result.reply_text) == ("invalid_cert", None, None)
    assert result.detail["reply"] == "withheld: daily reply cap reached"
    assert kinds(world) == ["forgery", "reply_cap"]

    # An unknown CA's certificate over the cap is still quarantined (and its digest raised).
    stranger = factory.make_end_entity(factory.make_ca("Чужой УЦ", slot=5), snils=SNILS)
    assert world.process(cert_letter(stranger), uid=3).outcome == "unknown_ca"
    # A good certificate over the cap is still registered.
    good = factory.make_end_entity(world.ca, snils=SNILS)
    registered = world.process(cert_letter(good), uid=4)
    assert (registered.outcome, registered.filing, registered.reply_to) == (
        "success", "processed", None,
    )  # fmt: skip

    assert replies(world) == 1
    assert kinds(world).count("reply_cap") == 1  # once per sender and day
    assert "unknown_ca" in kinds(world)
    with world.sessions() as session:
        assert session.scalars(select(QuarantinedCertificate)).one().status == "pending"
        assert session.scalars(select(CertificateRecord)).one().serial == good.cert.serial_hex
        outcomes = [
            row.outcome for row in session.scalars(select(LetterRecord).order_by(LetterRecord.id))
        ]
        assert outcomes == ["no_cer", "invalid_cert", "unknown_ca", "success"]
        alert = session.scalars(select(Alert).where(Alert.kind == "reply_cap")).one()
    assert letters.TRUSTED_SENDER in alert.subject
    assert alert.outbox_id is not None
