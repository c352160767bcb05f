"""The shared steps 10-11 effect (letters and quarantine decisions), on SQLite and PostgreSQL."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mailbot.app.adapters import DbCaDirectory, DbSenderDirectory
from mailbot.app.registration_effect import register_effect
from mailbot.directory.models import Alert, CertificateRecord, LetterRecord
from mailbot.mail.ziparchive import CertificateFile
from mailbot.regulation.add_cert import Action, AddCertDecision, AddCertSettings, decide_add_cert
from mailbot.regulation.decision import Outcome
from testkit import letters
from testkit import pki as factory
from tests.app.world import SNILS, World

ADMIN = "admin@fund.example"


def register_decision(world: World, session: Session, serial: int) -> AddCertDecision:
    """Steps 5-9 for a good certificate of the world's subscriber: REGISTER."""
    der = factory.make_end_entity(world.ca, snils=SNILS, serial=serial).der
    ca_directory = DbCaDirectory(session)
    decision = decide_add_cert(
        CertificateFile(zip_name="c.zip", entry_name="c.cer", data=der, encoding="der"),
        DbSenderDirectory(session).active_subscribers(letters.TRUSTED_SENDER),
        ca_directory,
        world.processor.crl_source_for(ca_directory),
        AddCertSettings(
            factory.NOW, world.config.general.timezone, world.config.crl.unavailable_policy
        ),
    )
    assert decision.action is Action.REGISTER
    return decision


def journal_row(session: Session) -> LetterRecord:
    row = LetterRecord(
        mailbox="INBOX", sha256="0" * 64, received_at=factory.NOW, state="done", attempts=1
    )
    session.add(row)
    session.flush()
    return row


def test_registered_certificate_is_linked_to_its_letter(make_world: Callable[..., World]) -> None:
    world = make_world(admin={"alert_addresses": [ADMIN]})
    written: list[Path] = []
    with world.sessions() as session:
        letter = journal_row(session)
        decision = register_decision(world, session, 0x911)
        effect = register_effect(
            session, world.config, world.processor.store, decision,
            letters.TRUSTED_SENDER, letter.id, factory.NOW, written,
        )  # fmt: skip
        session.commit()
        assert effect.outcome is Outcome.SUCCESS
        assert effect.values == dict(decision.template_values)
        assert effect.registration is not None and effect.error is None
        certificate = effect.registration.row
        assert (letter.certificate_id, letter.subscriber_id) == (
            certificate.id,
            world.subscriber_id,
        )
        assert certificate.letter_id == letter.id
        assert written == [Path(certificate.store_path)] and written[0].is_file()
        assert session.scalar(select(func.count(Alert.id))) == 0


def test_refused_install_writes_no_row_and_alerts_once(make_world: Callable[..., World]) -> None:
    script = "import sys; sys.stderr.write('Хранилище заблокировано'); sys.exit(1)"
    world = make_world(
        admin={"alert_addresses": [ADMIN]},
        store={"install_command": [sys.executable, "-c", script, "{path}"]},
    )
    written: list[Path] = []
    with world.sessions() as session:
        letter = journal_row(session)
        decision = register_decision(world, session, 0x912)
        effect = register_effect(
            session, world.config, world.processor.store, decision,
            letters.TRUSTED_SENDER, letter.id, factory.NOW, written,
        )  # fmt: skip
        session.commit()
        assert effect.outcome is Outcome.INSTALL_ERROR
        assert effect.registration is None
        assert "Хранилище заблокировано" in effect.values["error"]
        assert effect.failure_note["error"] == effect.values["error"]
        assert set(effect.failure_note) == {"error", "os_error"}
        assert (letter.certificate_id, letter.subscriber_id) == (None, None)
        assert written == []
        assert session.scalar(select(func.count(CertificateRecord.id))) == 0
        [alert] = session.scalars(select(Alert)).all()
        assert alert.kind == "install_error"
