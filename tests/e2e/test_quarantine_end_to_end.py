"""Unknown CA end to end: the participant's ``unknown_ca`` reply and the admin's alert land in
their INBOXes; ``mailbot ca add`` (or ``quarantine reject``) then answers the participant.

Real Dovecot, SMTP bridge, SQLite/PostgreSQL; the daemon runs in-process, the
CLI through its ``main``.
"""

from __future__ import annotations

import asyncio
import json
from email.message import EmailMessage
from email.parser import BytesHeaderParser

import pytest

from mailbot.cli.main import main
from mailbot.config import load_config
from mailbot.daemon.runner import Daemon
from testkit import pki as factory
from testkit.running import running
from testkit.scenario import ADMIN, PARTICIPANT, Scenario, publish_crl
from tests.e2e import test_end_to_end as e2e
from tests.e2e.test_end_to_end import inbox, wait_for

# The end-to-end world (both databases), shared with the daemon's own end-to-end tests.
scenario_factory = e2e.scenario_factory
scenario = e2e.scenario

pytestmark = pytest.mark.timeout(180)

UNKNOWN_CA_TEXT = "выдан неизвестным системе удостоверяющим центром"
SUCCESS_PREFIX = "Установка сертификата ключа проверки электронной подписи выполнена успешно."


def message_id_of(raw: bytes) -> str:
    return str(BytesHeaderParser().parsebytes(raw)["Message-ID"])


def text(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    return str(body.get_content()).strip()


async def run_once(scenario: Scenario) -> None:
    daemon = Daemon(load_config(scenario.config_path), once=True)
    assert await asyncio.wait_for(daemon.run(), 60) == 0


async def quarantine_one(scenario: Scenario, ca: factory.Issued) -> tuple[factory.Issued, str]:
    """Deliver a letter with a certificate of *ca*; wait for the reply and the alert."""
    certificate = scenario.participant_certificate(ca=ca)
    raw = scenario.add_cert_letter(certificate)
    replies, alerts = len(inbox(scenario, PARTICIPANT)), len(inbox(scenario, ADMIN))
    scenario.deliver(raw)
    async with running(scenario.config_path):
        await wait_for(lambda: len(inbox(scenario, PARTICIPANT)) == replies + 1)
        await wait_for(lambda: len(inbox(scenario, ADMIN)) == alerts + 1)
    return certificate, message_id_of(raw)


async def test_unknown_ca_then_ca_add_answers_the_participant(
    scenario: Scenario, capsys: pytest.CaptureFixture[str]
) -> None:
    stranger = factory.make_ca("Чужой УЦ", slot=4)
    certificate, original_id = await quarantine_one(scenario, stranger)

    [reply] = inbox(scenario, PARTICIPANT)
    assert UNKNOWN_CA_TEXT in text(reply)
    [alert] = inbox(scenario, ADMIN)
    assert "Чужой УЦ" in str(alert["Subject"])
    assert alert["Auto-Submitted"] == "auto-generated"
    [attachment] = list(alert.iter_attachments())
    assert str(attachment.get_filename()).endswith(".cer")
    assert attachment.get_content() == certificate.der
    assert f"mailbot ca add CA.cer --config {scenario.config_path}" in text(alert)

    publish_crl(scenario, stranger)
    ca_file = scenario.directory / "stranger-ca.cer"
    ca_file.write_bytes(stranger.der)
    config = ["--config", str(scenario.config_path)]
    assert main(["ca", "add", str(ca_file), "--by", "admin", *config]) == 0
    out = capsys.readouterr().out
    assert "registered: Чужой УЦ" in out
    assert f"(serial {certificate.cert.serial_hex}, " in out
    assert "follow-up 'success' queued" in out

    await run_once(scenario)
    await wait_for(lambda: len(inbox(scenario, PARTICIPANT)) == 2)
    followup = inbox(scenario, PARTICIPANT)[1]
    assert text(followup).startswith(SUCCESS_PREFIX)
    assert followup["Subject"] == "Re: ADD_CERT"
    assert followup["In-Reply-To"] == original_id
    assert len(inbox(scenario, ADMIN)) == 1  # registering raises no further alert

    assert main(["quarantine", "list", "--status", "all", "--format", "json", *config]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert (row["status"], row["decided_by"]) == ("registered", "admin")
    assert main(["cert", "list", "--format", "json", *config]) == 0
    serials = [c["serial"] for c in json.loads(capsys.readouterr().out)]
    assert certificate.cert.serial_hex in serials


async def test_unknown_ca_then_reject_answers_the_participant(
    scenario: Scenario, capsys: pytest.CaptureFixture[str]
) -> None:
    stranger = factory.make_ca("Сомнительный УЦ", slot=5)
    certificate, original_id = await quarantine_one(scenario, stranger)
    config = ["--config", str(scenario.config_path)]

    assert main(["quarantine", "list", "--format", "json", *config]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert (row["serial"], row["status"], row["issuer"]) == (
        certificate.cert.serial_hex, "pending", "Сомнительный УЦ",
    )  # fmt: skip
    assert main(["quarantine", "show", str(row["id"]), *config]) == 0
    shown = capsys.readouterr().out
    assert f"letter_message_id  {original_id}" in shown
    assert "status             pending" in shown

    reason = "удостоверяющий центр не аккредитован"
    assert main(["quarantine", "reject", str(row["id"]), "--reason", reason, *config]) == 0
    assert "follow-up 'unknown_ca_rejected' queued" in capsys.readouterr().out

    await run_once(scenario)
    await wait_for(lambda: len(inbox(scenario, PARTICIPANT)) == 2)
    followup = inbox(scenario, PARTICIPANT)[1]
    assert text(followup) == (
        f"Сертификат ключа проверки электронной подписи: {certificate.cert.serial_hex} не "
        "установлен: удостоверяющий центр, выдавший сертификат, не прошёл проверку. "
        f"Причина: {reason}"
    )
    assert followup["In-Reply-To"] == original_id
    assert main(["quarantine", "list", *config]) == 0
    assert certificate.cert.serial_hex not in capsys.readouterr().out  # no longer pending
