"""Backup, lose everything, restore: the daemon goes on where it stood.

Real Dovecot, SMTP bridge, SQLite/PostgreSQL, GOST certificates and CRLs. The
daemon answers a registration and quarantines a certificate of an unknown CA;
``mailbot backup`` is taken; the database is dropped and the state folder
(store, quarantine, CRL cache, archive) deleted; ``mailbot restore`` brings
them back. Then the letter answered before the backup arrives again (same
bytes, new UID) and is not answered twice, while a new letter is.
"""

from __future__ import annotations

import shutil
from typing import Any

import pytest
from sqlalchemy import select

from mailbot.cli.main import main
from mailbot.directory.engine import engine_from_config
from mailbot.directory.models import (
    CertificateRecord,
    CertificationAuthority,
    LetterRecord,
    OutboxMessage,
    QuarantinedCertificate,
    Subscriber,
)
from mailbot.directory.session import session_factory
from testkit import pki as factory
from testkit import postgres
from testkit.running import running
from testkit.scenario import ADMIN, FUND, PARTICIPANT, Scenario
from tests.e2e import test_end_to_end as e2e
from tests.e2e.test_end_to_end import inbox, wait_for

scenario_factory = e2e.scenario_factory
scenario = e2e.scenario

pytestmark = pytest.mark.timeout(240)

SUCCESS_PREFIX = "Установка сертификата ключа проверки электронной подписи выполнена успешно."


def installation(scenario: Scenario) -> dict[str, Any]:
    """What must survive a backup and a restore: journal, directories, store, outbox."""
    engine = engine_from_config(scenario.config)
    try:
        with session_factory(engine)() as session:
            return {
                "letters": [
                    (r.id, r.sha256, r.uidvalidity, r.uid, r.state, r.outcome, r.filed_to)
                    for r in session.scalars(select(LetterRecord).order_by(LetterRecord.id))
                ],
                "certificates": [
                    (r.id, r.thumbprint_sha1, r.status, r.letter_id, r.registered_at)
                    for r in session.scalars(select(CertificateRecord))
                ],
                "quarantine": [
                    (r.id, r.thumbprint_sha1, r.status, r.created_at)
                    for r in session.scalars(select(QuarantinedCertificate))
                ],
                "cas": [r.thumbprint_sha1 for r in session.scalars(select(CertificationAuthority))],
                "subscribers": [(r.id, r.snils) for r in session.scalars(select(Subscriber))],
                "outbox": [
                    (r.id, r.kind, r.status, r.raw, r.recipient_key)
                    for r in session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))
                ],
            }
    finally:
        engine.dispose()


def lose_everything(scenario: Scenario) -> None:
    """The server is gone: no database, no state folder (store, quarantine, CRLs, archive)."""
    if scenario.database_url.startswith("postgresql"):
        postgres.recreate_database(scenario.database_url)
    shutil.rmtree(scenario.config.general.state_dir)


async def test_restored_installation_goes_on_without_answering_twice(
    scenario: Scenario, capsys: pytest.CaptureFixture[str]
) -> None:
    stranger = factory.make_ca("Чужой УЦ", slot=4)
    scenario.deliver(scenario.add_cert_letter(scenario.participant_certificate()))
    scenario.deliver(scenario.add_cert_letter(scenario.participant_certificate(ca=stranger)))
    async with running(scenario.config_path):
        await wait_for(lambda: len(inbox(scenario, PARTICIPANT)) == 2)
        await wait_for(lambda: len(inbox(scenario, ADMIN)) == 1)
        await wait_for(lambda: scenario.dovecot.message_count(FUND) == 0)
    before = installation(scenario)
    assert len(before["certificates"]) == 1 and len(before["quarantine"]) == 1

    config = ["--config", str(scenario.config_path)]
    backup = scenario.directory / "backups" / "daily"
    assert main(["backup", str(backup), *config]) == 0
    assert "backup written to" in capsys.readouterr().out
    lose_everything(scenario)

    assert main(["restore", str(backup), *config]) == 0
    assert "rows at database revision" in capsys.readouterr().out
    assert main(["store", "verify", *config]) == 0
    assert "1 registered certificate(s), consistent" in capsys.readouterr().out
    assert installation(scenario) == before
    quarantined = scenario.config.quarantine_dir / f"{before['quarantine'][0][1]}.cer"
    assert quarantined.is_file()

    # The letter answered before the backup is put back into the INBOX (the same
    # bytes under a new UID, as an administrator moving it back would), and a new
    # letter arrives: only the new one is answered.
    scenario.dovecot.doveadm("move", "-u", FUND, "INBOX", "mailbox", "Processed", "all")
    assert scenario.dovecot.message_count(FUND) == 1
    scenario.deliver(scenario.add_cert_letter(scenario.participant_certificate()))
    async with running(scenario.config_path):
        await wait_for(lambda: len(inbox(scenario, PARTICIPANT)) == 3)
        await wait_for(lambda: scenario.dovecot.message_count(FUND) == 0)
        await wait_for(lambda: scenario.dovecot.message_count(FUND, "Processed") == 2)
    after = installation(scenario)
    assert after["letters"][: len(before["letters"])] == before["letters"]
    assert len(after["letters"]) == len(before["letters"]) + 1  # the repeat added no row
    # ... and queued no reply: one new outbox row, the new letter's.
    assert after["outbox"][: len(before["outbox"])] == before["outbox"]
    assert [row[1] for row in after["outbox"][len(before["outbox"]) :]] == ["reply"]
    newest = after["letters"][-1]
    assert newest[0] > max(row[0] for row in before["letters"])  # ids go on after the restore
    assert newest[4:6] == ("done", "success")
    assert len(after["certificates"]) == 2
    assert text_of_last_reply(scenario).startswith(SUCCESS_PREFIX)
    assert len(inbox(scenario, ADMIN)) == 1
    assert main(["store", "verify", *config]) == 0


def text_of_last_reply(scenario: Scenario) -> str:
    body = inbox(scenario, PARTICIPANT)[-1].get_body(("plain",))
    assert body is not None
    return str(body.get_content()).strip()
