"""Administrator decisions on quarantined certificates (``ca add``, ``quarantine …``),
on SQLite and PostgreSQL, with the real clock (the CLI decides "now")."""

from __future__ import annotations

import csv
import datetime as dt
import getpass
import io
import json
import sys
from collections.abc import Callable
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import select

from mailbot.cli.main import main
from mailbot.directory import subscribers as directory
from mailbot.directory.models import (
    Alert,
    CertificateRecord,
    LetterRecord,
    OutboxMessage,
    QuarantinedCertificate,
)
from testkit import letters
from testkit import pki as factory
from tests.app.world import REPO, SNILS, World, cert_letter

SUCCESS_PREFIX = "Установка сертификата ключа проверки электронной подписи выполнена успешно."


def real_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@pytest.fixture
def world(make_world: Callable[..., World]) -> World:
    world = make_world(admin={"alert_addresses": ["admin@fund.example"]})
    world.processor.clock = real_now  # letters arrive now; decisions are taken now
    return world


def write_config(world: World, tmp_path: Path, extra: str = "") -> list[str]:
    path = tmp_path / "mailbot.toml"
    path.write_text(
        f'[general]\nstate_dir = "{world.config.general.state_dir}"\n'
        f'[imap]\npassword_env = "UNUSED"\n'
        f'[smtp]\nfrom_address = "{world.config.smtp.from_address}"\n'
        f'[database]\nurl = "{world.config.database_url}"\n'
        f'[admin]\nalert_addresses = ["admin@fund.example"]\n'
        f'[paths]\nrules_dir = "{REPO / "rules"}"\ntemplates_dir = "{REPO / "templates"}"\n'
        + extra,
        encoding="utf-8",
    )
    return ["--config", str(path)]


def stranger_ca(world: World, tmp_path: Path, slot: int = 5) -> tuple[factory.Issued, Path]:
    ca = factory.make_ca(f"Чужой УЦ {slot}", slot=slot)
    path = tmp_path / f"ca-{slot}.cer"
    path.write_bytes(ca.der)
    return ca, path


def publish_crl(world: World, ca: factory.Issued, revoked: tuple[int, ...] = ()) -> None:
    now = real_now()
    crl = factory.make_crl(
        ca, [factory.Revoked(s) for s in revoked], this_update=now - dt.timedelta(hours=1),
        next_update=now + dt.timedelta(days=7), number=1,
    )  # fmt: skip
    world.drop_crl(crl, name=f"{ca.cert.thumbprint_sha1}.crl")


def participant(ca: factory.Issued, serial: int, snils: str | None = SNILS) -> factory.Issued:
    now = real_now()
    return factory.make_end_entity(
        ca, snils=snils, serial=serial, crl_urls=(),
        not_before=now - dt.timedelta(days=1), not_after=now + dt.timedelta(days=365),
    )  # fmt: skip


def quarantine(world: World, certificate: factory.Issued) -> int:
    result = world.process(cert_letter(certificate))
    assert result.outcome == "unknown_ca"
    assert result.letter_id is not None
    return result.letter_id


def followups(world: World) -> list[OutboxMessage]:
    with world.sessions() as session:
        query = select(OutboxMessage).where(OutboxMessage.kind == "followup")
        return list(session.scalars(query.order_by(OutboxMessage.id)))


def parse(raw: bytes) -> EmailMessage:
    message = message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def text_of(row: OutboxMessage) -> str:
    return str(parse(row.raw).get_content()).strip()


def rows(world: World) -> dict[int, QuarantinedCertificate]:
    with world.sessions() as session:
        return {r.id: r for r in session.scalars(select(QuarantinedCertificate))}


def test_ca_add_registers_every_waiting_certificate_and_answers(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(world, tmp_path)
    ca, ca_file = stranger_ca(world, tmp_path)
    other, _ = stranger_ca(world, tmp_path, slot=6)
    first, second = participant(ca, 0xA01), participant(ca, 0xA02)
    letter_ids = [quarantine(world, first), quarantine(world, second)]
    quarantine(world, participant(other, 0xA03))
    publish_crl(world, ca)

    assert main(["ca", "add", str(ca_file), "--by", "Петров", *config]) == 0
    out = capsys.readouterr().out
    assert "registered: Чужой УЦ 5" in out
    assert f"(serial {first.cert.serial_hex}, {letters.TRUSTED_SENDER}): registered" in out
    assert out.count("follow-up 'success' queued") == 2
    assert "0A03" not in out  # the other CA's certificate is not touched

    by_letter = {r.letter_id: r for r in rows(world).values()}
    for letter_id in letter_ids:
        row = by_letter[letter_id]
        assert (row.status, row.decided_by) == ("registered", "Петров")
        assert row.decided_at is not None and row.reason and "registered" in row.reason
        assert row.subscriber_id == world.subscriber_id
    assert [r.status for r in rows(world).values()].count("pending") == 1
    with world.sessions() as session:
        registered = session.scalars(select(CertificateRecord).order_by(CertificateRecord.id)).all()
        assert [c.letter_id for c in registered] == letter_ids
        letter = session.get_one(LetterRecord, letter_ids[0])
        assert letter.detail["quarantine"]["status"] == "registered"
        assert letter.certificate_id == registered[0].id
        original_message_id = letter.message_id
    assert (world.config.certificate_store / f"{first.cert.thumbprint_sha1}.cer").exists()

    sent = followups(world)
    assert [(f.letter_id, f.template_key, f.recipients) for f in sent] == [
        (letter_ids[0], "success", [letters.TRUSTED_SENDER]),
        (letter_ids[1], "success", [letters.TRUSTED_SENDER]),
    ]
    message = parse(sent[0].raw)
    assert message["Subject"] == "Re: ADD_CERT"
    assert message["In-Reply-To"] == original_message_id
    assert message["References"] == original_message_id
    assert message["Auto-Submitted"] == "auto-replied"
    assert text_of(sent[0]).startswith(SUCCESS_PREFIX)

    # Nothing is decided twice: a second `ca add` finds no waiting certificate of this CA.
    assert main(["ca", "add", str(ca_file), *config]) == 0
    assert "no quarantined certificate waited for this CA" in capsys.readouterr().out
    assert len(followups(world)) == 2


def test_recheck_failures_get_the_fitting_template(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(world, tmp_path)
    ca, ca_file = stranger_ca(world, tmp_path)
    revoked, mismatch = participant(ca, 0xB01), participant(ca, 0xB02, snils="12345678964")
    quarantine(world, revoked)
    quarantine(world, mismatch)
    publish_crl(world, ca, revoked=(0xB01,))
    assert main(["ca", "add", str(ca_file), *config]) == 0
    out = capsys.readouterr().out
    assert "failed: invalid_cert: сертификат отозван удостоверяющим центром" in out
    assert "failed: snils_mismatch" in out
    texts = {f.template_key: text_of(f) for f in followups(world)}
    assert texts["invalid_cert"] == (
        f"Сертификат ключа проверки электронной подписи: {revoked.cert.serial_hex} "
        "недействителен. Причина: сертификат отозван удостоверяющим центром. "
        "Установка сертификата не может быть выполнена"
    )
    assert "СНИЛС, указанный в сертификате отличается" in texts["snils_mismatch"]
    assert {r.status for r in rows(world).values()} == {"failed"}
    assert all(r.decided_by == getpass.getuser() for r in rows(world).values())


def test_without_a_crl_the_certificate_stays_pending_until_retry(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(world, tmp_path)
    ca, ca_file = stranger_ca(world, tmp_path)
    quarantine(world, participant(ca, 0xC01))
    assert main(["ca", "add", str(ca_file), *config]) == 0
    out = capsys.readouterr().out
    assert ": pending: no current CRL" in out
    assert "mailbot quarantine retry" in out
    [row] = rows(world).values()
    assert (row.status, row.decided_by) == ("pending", None)
    assert followups(world) == []

    publish_crl(world, ca)
    assert main(["quarantine", "retry", "--by", "admin", *config]) == 0
    assert ": registered: certificate" in capsys.readouterr().out
    assert [f.template_key for f in followups(world)] == ["success"]


def test_install_error_on_recheck_alerts_and_answers(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = "import sys; sys.stderr.write('Нет доступа к хранилищу'); sys.exit(1)"
    command = json.dumps([sys.executable, "-c", script, "{path}"], ensure_ascii=False)
    config = write_config(world, tmp_path, f"[store]\ninstall_command = {command}\n")
    ca, ca_file = stranger_ca(world, tmp_path)
    certificate = participant(ca, 0xD01)
    quarantine(world, certificate)
    publish_crl(world, ca)
    assert main(["ca", "add", str(ca_file), *config]) == 0
    assert "failed: install_error: Нет доступа к хранилищу" in capsys.readouterr().out
    [followup] = followups(world)
    assert text_of(followup).endswith("Ошибка: Нет доступа к хранилищу")
    assert not (world.config.certificate_store / f"{certificate.cert.thumbprint_sha1}.cer").exists()
    with world.sessions() as session:
        assert session.scalars(select(CertificateRecord)).all() == []
        assert session.scalars(select(Alert.kind).order_by(Alert.id)).all() == [
            "unknown_ca",
            "install_error",
        ]


def test_a_sender_no_longer_trusted_gets_no_followup(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(world, tmp_path)
    ca, ca_file = stranger_ca(world, tmp_path)
    quarantine(world, participant(ca, 0xE01))
    publish_crl(world, ca)
    with world.sessions() as session:
        directory.remove_address(session, world.subscriber_id, letters.TRUSTED_SENDER)
        session.commit()
    assert main(["ca", "add", str(ca_file), *config]) == 0
    assert "no longer a trusted address" in capsys.readouterr().out
    assert followups(world) == []
    [row] = rows(world).values()
    assert row.status == "failed"


def test_reject_answers_with_the_reason_once(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(world, tmp_path)
    ca, _ = stranger_ca(world, tmp_path)
    certificate = participant(ca, 0xF01)
    letter_id = quarantine(world, certificate)
    [row] = rows(world).values()
    reason = "УЦ не аккредитован Минцифры"
    assert main(["quarantine", "reject", str(row.id), "--reason", reason, "--by", "Сидоров",
                 *config]) == 0  # fmt: skip
    assert "rejected: УЦ не аккредитован" in capsys.readouterr().out
    [after] = rows(world).values()
    assert (after.status, after.decided_by, after.reason) == ("rejected", "Сидоров", reason)
    [followup] = followups(world)
    assert (followup.letter_id, followup.template_key) == (letter_id, "unknown_ca_rejected")
    assert text_of(followup) == (
        f"Сертификат ключа проверки электронной подписи: {certificate.cert.serial_hex} не "
        "установлен: удостоверяющий центр, выдавший сертификат, не прошёл проверку. "
        f"Причина: {reason}"
    )
    assert parse(followup.raw)["Subject"] == "Re: ADD_CERT"

    assert main(["quarantine", "reject", str(row.id), "--reason", "again", *config]) == 1
    assert "already rejected by Сидоров" in capsys.readouterr().out
    assert main(["quarantine", "reject", "999", "--reason", "x", *config]) == 1
    assert "no quarantined certificate with id 999" in capsys.readouterr().err
    assert len(followups(world)) == 1


@pytest.mark.parametrize("action", [("reject", "--reason", "нет"), ("retry",)], ids=str)
def test_an_unknown_id_among_known_ones_refuses_before_deciding_any(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str], action: tuple[str, ...]
) -> None:
    config = write_config(world, tmp_path)
    ca, ca_file = stranger_ca(world, tmp_path)
    quarantine(world, participant(ca, 0xF11))
    [row] = rows(world).values()
    # The CA registered (no CRL yet: it stays pending), then its CRL published: now a
    # retry would decide and answer it, and so would a reject.
    assert main(["ca", "add", str(ca_file), *config]) == 0
    publish_crl(world, ca)
    capsys.readouterr()

    code = main(["quarantine", action[0], str(row.id), "999", *action[1:], *config])
    out, err = capsys.readouterr()
    assert (code, out, err) == (1, "", "mailbot: no quarantined certificate with id 999\n")
    assert rows(world)[row.id].status == "pending"
    assert followups(world) == []


def test_list_and_show(world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(world, tmp_path)
    ca, _ = stranger_ca(world, tmp_path)
    first, second = participant(ca, 0x1A01), participant(ca, 0x1A02)
    letter_id = quarantine(world, first)
    quarantine(world, second)
    ids = sorted(rows(world))
    assert main(["quarantine", "reject", str(ids[1]), "--reason", "нет", *config]) == 0
    capsys.readouterr()

    assert main(["quarantine", "list", "--format", "json", *config]) == 0
    [pending] = json.loads(capsys.readouterr().out)
    assert (pending["id"], pending["serial"], pending["status"]) == (
        ids[0], first.cert.serial_hex, "pending",
    )  # fmt: skip
    assert pending["subject_cn"] == "Иванов Иван Иванович"
    assert pending["issuer"] == "Чужой УЦ 5"
    assert main(["quarantine", "list", "--status", "all", "--format", "csv", *config]) == 0
    table = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [(r["id"], r["status"]) for r in table] == [
        (str(ids[0]), "pending"), (str(ids[1]), "rejected"),
    ]  # fmt: skip
    assert main(["quarantine", "list", "--status", "rejected", *config]) == 0
    out = capsys.readouterr().out
    assert second.cert.serial_hex in out and first.cert.serial_hex not in out

    assert main(["quarantine", "show", str(ids[0]), *config]) == 0
    out = capsys.readouterr().out
    assert f"authority_key_id   {ca.ski.hex().upper()}" in out
    assert f"letter_id          {letter_id}" in out
    assert "letter_message_id  <test-" in out
    assert "aia_urls           http://cdp.example.ru/aia/ca.crt" in out
    assert main(["quarantine", "show", str(ids[1]), "--format", "json", *config]) == 0
    [shown] = json.loads(capsys.readouterr().out)
    assert (shown["status"], shown["reason"]) == ("rejected", "нет")
    assert shown["decided_by"] == getpass.getuser()
