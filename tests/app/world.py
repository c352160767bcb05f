"""A whole registration world on SQLite and PostgreSQL: a GOST CA registered, an
organisation with a subscriber and a trusted address, a fresh CRL in the drop
folder, and a processor whose clock is pinned to the test PKI's "now"."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from mailbot.app.assembly import crl_source_factory
from mailbot.app.letters import LetterProcessor, LetterSource, ProcessResult
from mailbot.config import Config, config_from_mapping
from mailbot.directory import migrate
from mailbot.directory import subscribers as directory
from mailbot.directory.authorities import register_ca
from mailbot.directory.session import session_factory
from mailbot.notices.templates import load_templates
from mailbot.regulation.routes import load_routes
from testkit import letters
from testkit import pki as factory

REPO = Path(__file__).resolve().parents[2]
SNILS = "11223344595"
_message_ids = itertools.count(1)


@dataclass
class World:
    config: Config
    sessions: sessionmaker[Session]
    processor: LetterProcessor
    ca: factory.Issued
    subscriber_id: int

    def process(self, raw: bytes, uid: int | None = None, dry_run: bool = False) -> ProcessResult:
        source = LetterSource("INBOX", 1, uid) if uid is not None else LetterSource()
        return self.processor.process(raw, source, dry_run=dry_run)

    def drop_crl(self, crl: bytes, name: str = "ca.crl") -> None:
        self.config.crl_drop_dir.mkdir(parents=True, exist_ok=True)
        (self.config.crl_drop_dir / name).write_bytes(crl)


def cert_letter(
    certificate: factory.Issued | bytes, name: str = "Иванов", sender: str = letters.TRUSTED_SENDER
) -> bytes:
    """An ADD_CERT letter from *sender* with NAME.zip holding NAME.cer."""
    der = certificate if isinstance(certificate, bytes) else certificate.der
    zip_data = letters.certificate_zip(f"{name}.cer", der)
    message_id = f"<test-{next(_message_ids)}@clinic.example>"
    return letters.plain_zip_letter(f"{name}.zip", zip_data, sender=sender, message_id=message_id)


def expired_certificate(world: World) -> factory.Issued:
    """A participant's certificate from the registered CA whose validity ended yesterday."""
    now = factory.NOW
    return factory.make_end_entity(
        world.ca, not_before=now - dt.timedelta(days=400), not_after=now - dt.timedelta(days=1)
    )


def forged_certificate(world: World) -> factory.Issued:
    """A participant's certificate naming the registered CA but signed by another key."""
    forger = factory.make_ca("УЦ Тест", slot=7)
    return factory.issue(
        factory.CertSpec(
            subject=[("CN", "Иванов Иван Иванович"), ("SNILS", SNILS)], include_aki=False
        ),
        factory.make_key(slot=8),
        world.ca,
        signing_key=forger.key,
    )


@pytest.fixture
def make_world(engine: Engine, database_url: str, tmp_path: Path) -> Callable[..., World]:
    def build(**overrides: dict[str, object]) -> World:
        document: dict[str, dict[str, object]] = {
            "general": {"state_dir": str(tmp_path / "state")},
            "database": {"url": database_url},
            "smtp": {"from_address": letters.FUND_ADDRESS},
            "paths": {"rules_dir": str(REPO / "rules"), "templates_dir": str(REPO / "templates")},
        }
        for section, values in overrides.items():
            document.setdefault(section, {}).update(values)
        config = config_from_mapping(document)
        migrate.upgrade(engine)
        sessions = session_factory(engine)
        ca = factory.make_ca("УЦ Тест", crl_urls=())
        with sessions() as session:
            register_ca(session, ca.cert, now=factory.NOW)
            organisation = directory.add_organisation(session, "ГБУЗ МО «Тестовая больница»")
            subscriber = directory.add_subscriber(
                session, organisation.id, surname="Иванов", snils=SNILS,
                addresses=[letters.TRUSTED_SENDER],
            )  # fmt: skip
            session.commit()
            subscriber_id = subscriber.id
        processor = LetterProcessor(
            config,
            sessions,
            load_routes(config.rules_dir),
            load_templates(config.templates_dir),
            crl_source_factory(config),
            clock=lambda: factory.NOW,
        )
        world = World(config, sessions, processor, ca, subscriber_id)
        world.drop_crl(factory.make_crl(ca))
        return world

    return build


@pytest.fixture
def world(make_world: Callable[..., World]) -> World:
    return make_world()
