"""Admin alerts raised by the letter processor, on SQLite and PostgreSQL: the unknown-CA
digest (one per CA key per local day, rebuilt while unsent), possible forgery, install errors."""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Callable
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest
from sqlalchemy import select, update

from mailbot.directory.models import Alert, OutboxMessage
from testkit import pki as factory
from tests.app.world import SNILS, World, cert_letter, forged_certificate

ADMIN = "admin@fund.example"


@pytest.fixture
def world(make_world: Callable[..., World]) -> World:
    return make_world(admin={"alert_addresses": [ADMIN]})


def alerts(world: World) -> list[tuple[Alert, OutboxMessage]]:
    with world.sessions() as session:
        rows = session.scalars(select(Alert).order_by(Alert.id)).all()
        return [(a, session.get_one(OutboxMessage, a.outbox_id)) for a in rows]


def parse(raw: bytes) -> EmailMessage:
    message = message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def body_and_attachments(raw: bytes) -> tuple[str, dict[str, bytes]]:
    message = parse(raw)
    body = message.get_body(("plain",))
    assert body is not None
    files = {str(a.get_filename()): a.get_content() for a in message.iter_attachments()}
    return body.get_content(), files


def stranger(cn: str = "Чужой УЦ", slot: int = 5) -> factory.Issued:
    return factory.make_ca(cn, slot=slot)


def participant(ca: factory.Issued, **kwargs: object) -> factory.Issued:
    return factory.make_end_entity(ca, snils=SNILS, crl_urls=(), **kwargs)  # type: ignore[arg-type]


def test_quarantine_queues_one_alert_with_the_certificate(world: World) -> None:
    ca = stranger()
    certificate = participant(ca)
    assert world.process(cert_letter(certificate)).outcome == "unknown_ca"
    [(alert, outbox)] = alerts(world)
    assert alert.kind == "unknown_ca"
    assert alert.dedup_key == f"unknown_ca:aki:{ca.ski.hex().upper()}:2026-03-02"
    assert (outbox.kind, outbox.recipients, outbox.status) == ("alert", [ADMIN], "pending")
    text, files = body_and_attachments(outbox.raw)
    assert list(files.values()) == [certificate.der]
    assert all(name.endswith(".cer") for name in files)
    assert parse(outbox.raw).get_content_type() == "multipart/mixed"
    assert certificate.cert.issuer.rfc4514() in text
    assert ca.ski.hex().upper() in text
    assert "http://cdp.example.ru/aia/ca.crt" in text  # the AIA caIssuers URL
    assert certificate.cert.serial_hex in text
    assert "mailbot ca add CA.cer" in text
    assert "mailbot quarantine reject ID --reason" in text
    assert "Чужой УЦ" in str(parse(outbox.raw)["Subject"])


def test_two_certificates_of_one_ca_on_one_day_give_one_alert_listing_both(world: World) -> None:
    ca = stranger()
    first, second = participant(ca, serial=0x501), participant(ca, serial=0x502)
    world.process(cert_letter(first))
    [(_, before)] = alerts(world)
    world.process(cert_letter(second))
    [(alert, outbox)] = alerts(world)
    assert outbox.id == before.id
    assert outbox.message_id != before.message_id  # rebuilt, with a fresh Message-ID
    assert parse(outbox.raw)["Message-ID"] == outbox.message_id
    text, files = body_and_attachments(outbox.raw)
    assert sorted(files.values()) == sorted([first.der, second.der])
    assert first.cert.serial_hex in text and second.cert.serial_hex in text
    assert "(2)" in text
    assert second.cert.serial_hex in alert.body  # the alerts table follows the letter


def test_after_the_alert_was_sent_the_same_day_stays_quiet_and_a_new_day_alerts_again(
    world: World,
) -> None:
    ca = stranger()
    first, second, third = (participant(ca, serial=s) for s in (0x601, 0x602, 0x603))
    world.process(cert_letter(first))
    with world.sessions() as session:
        session.execute(update(OutboxMessage).values(status="sent"))
        session.commit()
    [(_, sent)] = alerts(world)
    world.process(cert_letter(second))
    [(_, unchanged)] = alerts(world)
    assert unchanged.raw == sent.raw
    # 22:30 UTC is already the next day in Moscow (UTC+3).
    world.processor.clock = lambda: dt.datetime(2026, 3, 2, 22, 30, tzinfo=dt.UTC)
    world.process(cert_letter(third))
    [_, (alert, outbox)] = alerts(world)
    assert alert.dedup_key.endswith(":2026-03-03")
    assert outbox.status == "pending"
    text, files = body_and_attachments(outbox.raw)
    assert sorted(files.values()) == sorted([first.der, second.der, third.der])
    assert "(3)" in text


def test_an_alert_claimed_by_the_sender_is_not_rebuilt(world: World) -> None:
    ca = stranger()
    world.process(cert_letter(participant(ca, serial=0x701)))
    with world.sessions() as session:  # what OutboxStore.claim does
        session.execute(
            update(OutboxMessage).values(next_attempt_at=factory.NOW + dt.timedelta(minutes=5))
        )
        session.commit()
    [(_, claimed)] = alerts(world)
    world.process(cert_letter(participant(ca, serial=0x702)))
    [(_, after)] = alerts(world)
    assert after.raw == claimed.raw


def test_different_unknown_cas_get_their_own_alerts(world: World) -> None:
    world.process(cert_letter(participant(stranger("Чужой УЦ", 5))))
    world.process(cert_letter(participant(stranger("Другой УЦ", 6))))
    assert len({alert.dedup_key for alert, _ in alerts(world)}) == 2


def test_without_aki_the_issuer_dn_is_the_key(world: World) -> None:
    ca = stranger()
    for serial in (0x801, 0x802):
        spec = factory.CertSpec(
            subject=[("CN", "Иванов Иван Иванович"), ("SNILS", SNILS)],
            serial=serial,
            include_aki=False,
        )
        world.process(cert_letter(factory.issue(spec, factory.make_key(slot=1), ca)))
    [(alert, outbox)] = alerts(world)
    assert alert.dedup_key.startswith("unknown_ca:dn:")
    _text, files = body_and_attachments(outbox.raw)
    assert len(files) == 2


def test_dry_run_raises_no_alert(world: World) -> None:
    world.process(cert_letter(participant(stranger())), dry_run=True)
    assert alerts(world) == []


def test_possible_forgery_alert_with_the_certificate(world: World) -> None:
    forged = forged_certificate(world)
    result = world.process(cert_letter(forged), uid=1)
    assert result.outcome == "invalid_cert"
    world.process(cert_letter(forged), uid=2)  # the same file again: the same incident
    [(alert, outbox)] = alerts(world)
    assert (alert.kind, alert.dedup_key) == ("forgery", f"forgery:{forged.cert.thumbprint_sha1}")
    text, files = body_and_attachments(outbox.raw)
    assert list(files.values()) == [forged.der]
    assert "подделка" in text
    assert f"№{result.letter_id}" in text
    assert "по телефону" in text  # what to do next


def test_install_failure_alert_once_per_error_per_day(make_world: Callable[..., World]) -> None:
    script = "import sys; sys.stderr.write('Хранилище заблокировано'); sys.exit(1)"
    world = make_world(
        admin={"alert_addresses": [ADMIN]},
        store={"install_command": [sys.executable, "-c", script, "{path}"]},
    )
    first = factory.make_end_entity(world.ca, snils=SNILS, serial=0x901)
    assert world.process(cert_letter(first)).outcome == "install_error"
    second = factory.make_end_entity(world.ca, snils=SNILS, serial=0x902)
    assert world.process(cert_letter(second)).outcome == "install_error"
    [(alert, outbox)] = alerts(world)
    assert alert.kind == "install_error"
    assert ":2026-03-02:" in alert.dedup_key
    text, files = body_and_attachments(outbox.raw)
    assert list(files.values()) == [first.der]
    assert "Ошибка: Хранилище заблокировано" in text
    assert "mailbot doctor" in text
    assert "Хранилище заблокировано" in str(parse(outbox.raw)["Subject"])
