"""Steps 5-12 end to end through the processor, with real GOST certificates, on both databases."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from sqlalchemy import func, select

from mailbot.directory.models import (
    CertificateRecord,
    CertificationAuthority,
    LetterRecord,
    OutboxMessage,
    QuarantinedCertificate,
    Subscriber,
)
from testkit import letters
from testkit import pki as factory
from tests.app.world import SNILS, World, cert_letter, expired_certificate, forged_certificate

SUCCESS_PREFIX = "Установка сертификата ключа проверки электронной подписи выполнена успешно."


def outbox(world: World) -> list[OutboxMessage]:
    with world.sessions() as session:
        return list(session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


def test_good_certificate_is_registered_and_answered(world: World) -> None:
    participant = factory.make_end_entity(world.ca, snils=SNILS)
    result = world.process(cert_letter(participant), uid=1)
    assert result.outcome == "success", result.detail
    assert result.filing == "processed"
    assert result.reply_to == letters.TRUSTED_SENDER
    assert result.reply_text == (
        f"{SUCCESS_PREFIX} Сертификат выдан: Иванов Иван Иванович. Срок действия сертификата: "
        "с 31.01.2026 12:00:00 по 31.01.2027 12:00:00"
    )
    store_file = world.config.certificate_store / f"{participant.cert.thumbprint_sha1}.cer"
    assert store_file.read_bytes() == participant.der
    with world.sessions() as session:
        row = session.scalars(select(CertificateRecord)).one()
        assert (row.subscriber_id, row.serial, row.status) == (
            world.subscriber_id,
            participant.cert.serial_hex,
            "valid",
        )
        subscriber = session.get(Subscriber, world.subscriber_id)
        assert subscriber is not None
        # Step 11: certificate data overrides manual fields.
        assert (subscriber.given_names, subscriber.title) == ("Иван Иванович", "Главный врач")
        assert subscriber.organisation.inn == "5001000010"
        assert "title" in subscriber.certificate_fields
        letter = session.scalars(select(LetterRecord)).one()
        assert (letter.outcome, letter.state, letter.certificate_id) == ("success", "done", row.id)
        assert [h["rule"] for h in letter.rule_hits][-7:] == [
            "certificate_parses",
            "validity_period",
            "public_key_valid",
            "registered_ca",
            "ca_signature",
            "not_revoked",
            "snils_matches",
        ]
        assert letter.detail["certificate"]["validation"]["evidence"]["crl_number"] == 1
    (message,) = outbox(world)
    parsed = message_from_bytes(message.raw, policy=policy.default)
    assert parsed["To"] == letters.TRUSTED_SENDER
    assert parsed["Subject"] == "Re: ADD_CERT"
    assert parsed["Auto-Submitted"] == "auto-replied"


def test_same_certificate_again_is_success_without_duplicate(world: World) -> None:
    participant = factory.make_end_entity(world.ca, snils=SNILS)
    assert world.process(cert_letter(participant), uid=1).outcome == "success"
    again = world.process(cert_letter(participant), uid=2)
    assert again.outcome == "success"
    with world.sessions() as session:
        assert session.scalar(select(func.count(CertificateRecord.id))) == 1
        assert session.scalar(select(func.count(LetterRecord.id))) == 2
    assert len(outbox(world)) == 2


def test_a_journaled_letter_is_not_processed_twice(world: World) -> None:
    raw = cert_letter(factory.make_end_entity(world.ca, snils=SNILS))
    first = world.process(raw, uid=7)
    second = world.process(raw, uid=7)
    third = world.process(raw, uid=99)  # same bytes under a new UID (UIDVALIDITY reset)
    assert (first.duplicate, second.duplicate, third.duplicate) == (False, True, True)
    assert second.letter_id == first.letter_id == third.letter_id
    assert len(outbox(world)) == 1


def test_expired_and_not_yet_valid(world: World) -> None:
    now = factory.NOW
    expired = expired_certificate(world)
    result = world.process(cert_letter(expired))
    assert result.outcome == "invalid_cert"
    assert result.reply_text == (
        f"Сертификат ключа проверки электронной подписи: {expired.cert.serial_hex} недействителен. "
        "Причина: срок действия истёк. Установка сертификата не может быть выполнена"
    )
    future = factory.make_end_entity(world.ca, not_before=now + dt.timedelta(days=1))
    result = world.process(cert_letter(future))
    assert result.reply_text is not None and "срок действия ещё не наступил" in result.reply_text


def test_unknown_ca_is_quarantined(world: World) -> None:
    stranger_ca = factory.make_ca("Чужой УЦ", slot=5)
    participant = factory.make_end_entity(stranger_ca, snils=SNILS)
    result = world.process(cert_letter(participant))
    assert result.outcome == "unknown_ca"
    assert result.reply_text is not None
    assert result.reply_text.startswith(
        f"Сертификат ключа проверки электронной подписи: {participant.cert.serial_hex} выдан "
        "неизвестным системе удостоверяющим центром."
    )
    quarantined = world.config.quarantine_dir / f"{participant.cert.thumbprint_sha1}.cer"
    assert quarantined.read_bytes() == participant.der
    assert quarantined.with_suffix(".json").exists()
    with world.sessions() as session:
        row = session.scalars(select(QuarantinedCertificate)).one()
        assert (row.status, row.subscriber_id) == ("pending", world.subscriber_id)
        assert session.scalar(select(func.count(CertificateRecord.id))) == 0


def test_rekeyed_ca_with_a_known_name_is_unknown(world: World) -> None:
    rekeyed = factory.make_ca("УЦ Тест", slot=6)  # same DN, another key
    result = world.process(cert_letter(factory.make_end_entity(rekeyed, snils=SNILS)))
    assert result.outcome == "unknown_ca"


def test_forgery_with_a_registered_ca_name_but_another_key(world: World) -> None:
    forged = forged_certificate(world)
    result = world.process(cert_letter(forged))
    assert result.outcome == "invalid_cert"
    assert result.reply_text is not None
    assert "Причина: подпись удостоверяющего центра неверна" in result.reply_text
    assert "possible forgery" in result.detail["certificate"]["alert"]


@pytest.mark.parametrize(
    ("kind", "paramset", "point", "why"),
    [
        (factory.GOST256, "1.2.643.2.2.35.1", (12345, 67890), "not a point on the curve"),
        (factory.GOST256, "1.2.643.7.1.2.1.1.1", (0, 0), "the point at infinity"),
        (factory.GOST512, "1.2.643.7.1.2.1.2.3", (3, 5), "not a point on the curve"),
        (factory.GOST2001, "1.2.643.2.2.36.0", (1, 1), "not a point on the curve"),
    ],
    ids=["2012-256-CryptoPro-A", "2012-256-TC26-A", "2012-512-TC26-C", "2001-XchA"],
)
def test_certificate_whose_key_is_no_curve_point_is_invalid_cert(
    world: World, kind: str, paramset: str, point: tuple[int, int], why: str
) -> None:
    """Signed by the registered CA, current, not revoked, right SNILS - only the key is wrong."""
    key = factory.key_with_point(kind, paramset, *point)
    participant = factory.make_end_entity(world.ca, snils=SNILS, kind=kind, key=key)
    result = world.process(cert_letter(participant))
    assert result.outcome == "invalid_cert"
    assert result.reply_text == (
        "Сертификат ключа проверки электронной подписи: "
        f"{participant.cert.serial_hex} недействителен. "
        "Причина: открытый ключ сертификата недопустим. "
        "Установка сертификата не может быть выполнена"
    )
    assert result.detail["certificate"]["reason"] == "invalid_public_key"
    assert list(world.config.certificate_store.glob("*.cer")) == []
    with world.sessions() as session:
        assert session.scalar(select(func.count(CertificateRecord.id))) == 0
        letter = session.scalars(select(LetterRecord)).one()
        assert letter.rule_hits[-1]["rule"] == "public_key_valid"
        assert why in letter.rule_hits[-1]["detail"]


def test_invalid_key_from_an_unknown_ca_is_refused_not_quarantined(world: World) -> None:
    stranger = factory.make_ca("Чужой УЦ", slot=5)
    key = factory.key_with_point(factory.GOST256, "1.2.643.2.2.35.1", 12345, 67890)
    result = world.process(cert_letter(factory.make_end_entity(stranger, snils=SNILS, key=key)))
    assert result.outcome == "invalid_cert"
    assert result.reply_text is not None and "открытый ключ сертификата недопустим" in (
        result.reply_text
    )
    with world.sessions() as session:
        assert session.scalar(select(func.count(QuarantinedCertificate.id))) == 0


def test_ca_add_refuses_a_ca_whose_key_is_invalid(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mailbot.cli.main import main
    from tests.cli.test_process_cli import config_file

    config = ["--config", str(config_file(world, tmp_path))]
    bad_key = factory.key_with_point(factory.GOST256, "1.2.643.7.1.2.1.1.1", 0, 0)
    bad_ca = factory.issue(
        factory.CertSpec(subject=[("CN", "УЦ с негодным ключом")], is_ca=True), bad_key, world.ca
    )
    good_ca = factory.make_ca("УЦ Годный", slot=9)
    ca_file = tmp_path / "cas.pem"
    ca_file.write_bytes(good_ca.pem() + bad_ca.pem())
    assert main(["ca", "add", str(ca_file), *config]) == 1
    err = capsys.readouterr().err
    assert f"CA certificate {bad_ca.cert.thumbprint_sha1} refused" in err
    assert "public key is invalid (the GOST public key is the point at infinity (0, 0))" in err
    assert "Traceback" not in err
    with world.sessions() as session:  # nothing of the file registered, not even the good CA
        assert session.scalar(select(func.count(CertificationAuthority.id))) == 1


def test_revoked_certificate(world: World) -> None:
    participant = factory.make_end_entity(world.ca, snils=SNILS, serial=0x1002)
    world.drop_crl(
        factory.make_crl(world.ca, [factory.Revoked(0x1002)], number=2), name="newer.crl"
    )
    result = world.process(cert_letter(participant))
    assert result.outcome == "invalid_cert"
    assert result.reply_text is not None
    assert "Причина: сертификат отозван удостоверяющим центром" in result.reply_text
    evidence = result.detail["certificate"]["validation"]["evidence"]
    assert evidence["revocation_reason"] == "keyCompromise"


@pytest.mark.parametrize(
    ("policy_name", "outcome"),
    [("defer", "deferred"), ("reject", "invalid_cert"), ("accept", "success")],
)
def test_crl_unavailable_policies(
    make_world: Callable[..., World], policy_name: str, outcome: str
) -> None:
    world = make_world(crl={"unavailable_policy": policy_name})
    for crl in world.config.crl_drop_dir.iterdir():
        crl.unlink()  # nothing on file, and the certificate's CDP is unreachable
    participant = factory.make_end_entity(
        world.ca, snils=SNILS, crl_urls=("http://127.0.0.1:9/x.crl",)
    )
    result = world.process(cert_letter(participant))
    assert result.outcome == outcome, result.detail
    if policy_name == "defer":
        assert result.reply_text is None
        assert outbox(world) == []
        with world.sessions() as session:
            assert session.scalars(select(LetterRecord)).one().state == "deferred"
    if policy_name == "reject":
        assert result.reply_text is not None and "список отзыва недоступен" in result.reply_text


@pytest.mark.parametrize(
    ("subscriber_snils", "certificate_snils", "outcome"),
    [
        (SNILS, SNILS, "success"),
        (None, SNILS, "success"),
        (SNILS, "12345678964", "snils_mismatch"),
        (SNILS, None, "snils_mismatch"),
        (None, None, "success"),
    ],
)
def test_snils_rules(
    world: World, subscriber_snils: str | None, certificate_snils: str | None, outcome: str
) -> None:
    from mailbot.directory import subscribers as directory

    with world.sessions() as session:
        directory.set_snils(session, world.subscriber_id, subscriber_snils)
        session.commit()
    result = world.process(cert_letter(factory.make_end_entity(world.ca, snils=certificate_snils)))
    assert result.outcome == outcome
    if outcome == "snils_mismatch":
        assert result.reply_text == (
            "Установка сертификата ключа проверки электронной подписи не может быть выполнена. "
            "Причина: СНИЛС, указанный в сертификате отличается от ранее зарегистрированного "
            "для данного абонента"
        )
    with world.sessions() as session:
        subscriber = session.get(Subscriber, world.subscriber_id)
        assert subscriber is not None
        expected = (
            certificate_snils if outcome == "success" and certificate_snils else subscriber_snils
        )
        assert subscriber.snils == expected


def test_shared_address_picks_the_subscriber_whose_snils_matches(world: World) -> None:
    from mailbot.directory import subscribers as directory

    with world.sessions() as session:
        other = directory.add_subscriber(
            session, 1, surname="Петрова", snils="12345678964", addresses=[letters.TRUSTED_SENDER]
        )
        session.commit()
        other_id = other.id
    result = world.process(cert_letter(factory.make_end_entity(world.ca, snils="12345678964")))
    assert result.outcome == "success"
    with world.sessions() as session:
        assert session.scalars(select(CertificateRecord)).one().subscriber_id == other_id


def test_install_command_failure_leaves_nothing(make_world: Callable[..., World]) -> None:
    import sys

    script = "import sys; sys.stderr.write('Хранилище заблокировано'); sys.exit(1)"
    world = make_world(store={"install_command": [sys.executable, "-c", script, "{path}"]})
    result = world.process(cert_letter(factory.make_end_entity(world.ca, snils=SNILS)))
    assert result.outcome == "install_error"
    assert result.reply_text == (
        "Установка сертификата ключа проверки электронной подписи не может быть выполнена. "
        "Ошибка: Хранилище заблокировано"
    )
    assert list(world.config.certificate_store.glob("*.cer")) == []
    with world.sessions() as session:
        assert session.scalar(select(func.count(CertificateRecord.id))) == 0
        assert session.scalars(select(LetterRecord)).one().outcome == "install_error"


def test_broken_certificate_is_invalid_files(world: World) -> None:
    # Passes intake's structural sniff (a SEQUENCE of SEQUENCE, SEQUENCE, BIT STRING) but is no certificate.
    fake = bytes.fromhex("300d3003020101300302010103020000")
    result = world.process(cert_letter(fake))
    assert result.outcome == "invalid_files"


def test_dry_run_changes_nothing(world: World) -> None:
    participant = factory.make_end_entity(world.ca, snils=SNILS)
    result = world.process(cert_letter(participant), dry_run=True)
    assert result.outcome == "success"
    assert result.reply_text is not None
    assert outbox(world) == []
    assert list(world.config.certificate_store.glob("*.cer")) == []
    with world.sessions() as session:
        assert session.scalar(select(func.count(LetterRecord.id))) == 0


def test_untrusted_sender_gets_no_reply(world: World) -> None:
    participant = factory.make_end_entity(world.ca, snils=SNILS)
    result = world.process(cert_letter(participant, sender="stranger@evil.example"))
    assert (result.outcome, result.reply_text) == ("no_reply", None)
    assert outbox(world) == []
    with world.sessions() as session:
        assert session.scalars(select(LetterRecord)).one().outcome == "no_reply"


def test_database_failure_leaves_no_store_file(world: World) -> None:
    """A failing transaction (here: the outbox table is gone) removes the file it wrote."""
    from sqlalchemy import text

    engine = world.sessions.kw["bind"]
    with engine.begin() as connection:
        cascade = " CASCADE" if engine.dialect.name == "postgresql" else ""
        connection.execute(text("DROP TABLE outbox" + cascade))
    participant = factory.make_end_entity(world.ca, snils=SNILS)
    with pytest.raises(Exception, match="outbox"):
        world.process(cert_letter(participant))
    assert list(world.config.certificate_store.glob("*.cer")) == []
    with world.sessions() as session:
        assert session.scalar(select(func.count(CertificateRecord.id))) == 0
        assert session.scalar(select(func.count(LetterRecord.id))) == 0
