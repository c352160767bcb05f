"""A reminders world on SQLite and PostgreSQL: a GOST CA, an organisation, a subscriber with
a trusted address, and a helper registering real test-PKI certificates by their expiry."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from mailbot.app.reminders import ReminderReport, send_due_reminders
from mailbot.config import Config, config_from_mapping
from mailbot.directory import migrate
from mailbot.directory import subscribers as directory
from mailbot.directory.certstore import CertificateStore
from mailbot.directory.models import CertificateRecord, ExpiryReminder, OutboxMessage
from mailbot.directory.registration import register_certificate
from mailbot.directory.session import session_factory
from mailbot.notices.templates import Templates, load_templates
from testkit import pki as factory

REPO = Path(__file__).resolve().parents[2]
NOW = factory.NOW
ADDRESS = "ivanov@clinic.example"
FUND = "reestrin@fund.example"


@dataclass
class World:
    config: Config
    sessions: sessionmaker[Session]
    templates: Templates
    ca: factory.Issued
    subscriber_id: int

    def register(
        self, not_after: dt.datetime, subscriber_id: int | None = None, cn: str = "Иванов И. И."
    ) -> int:
        """Register a real certificate expiring at *not_after*; returns its row id."""
        issued = factory.make_end_entity(
            self.ca, cn=cn, crl_urls=(),
            not_before=not_after - dt.timedelta(days=365), not_after=not_after,
        )  # fmt: skip
        store = CertificateStore(self.config.certificate_store)
        with self.sessions() as session:
            registration = register_certificate(
                session, store, issued.cert, self.ca.cert,
                subscriber_id or self.subscriber_id, None, NOW,
            )  # fmt: skip
            session.commit()
            return registration.row.id

    def run(self, now: dt.datetime, dry_run: bool = False) -> ReminderReport:
        return send_due_reminders(self.config, self.sessions, self.templates, now, dry_run)

    def reminders(self) -> list[tuple[int, int, str]]:
        """(certificate, threshold, status) of every recorded threshold."""
        with self.sessions() as session:
            rows = session.execute(
                select(
                    ExpiryReminder.certificate_id,
                    ExpiryReminder.threshold_days,
                    ExpiryReminder.status,
                ).order_by(ExpiryReminder.id)
            )
            return [(c, t, s) for c, t, s in rows]

    def letters(self) -> list[EmailMessage]:
        """Every reminder letter in the outbox, oldest first."""
        with self.sessions() as session:
            rows = session.scalars(
                select(OutboxMessage)
                .where(OutboxMessage.kind == "reminder")
                .order_by(OutboxMessage.id)
            ).all()
            found = []
            for row in rows:
                message = message_from_bytes(row.raw, policy=policy.default)
                assert isinstance(message, EmailMessage)
                found.append(message)
            return found

    def status(self, certificate_id: int) -> str:
        with self.sessions() as session:
            return session.get_one(CertificateRecord, certificate_id).status


@pytest.fixture
def make_world(engine: Engine, database_url: str, tmp_path: Path) -> Callable[..., World]:
    def build(sections: dict[str, dict[str, object]] | None = None, **reminders: object) -> World:
        """The world with ``[reminders]`` *reminders* and further TOML *sections*."""
        config = config_from_mapping(
            {
                "general": {"state_dir": str(tmp_path / "state"), "timezone": "Europe/Moscow"},
                "database": {"url": database_url},
                "smtp": {"from_address": FUND},
                "paths": {"templates_dir": str(REPO / "templates")},
                "reminders": reminders,
                **(sections or {}),
            }
        )
        migrate.upgrade(engine)
        sessions = session_factory(engine)
        ca = factory.make_ca("УЦ Тест", crl_urls=())
        with sessions() as session:
            organisation = directory.add_organisation(session, "ГБУЗ «Тестовая больница»")
            subscriber = directory.add_subscriber(
                session, organisation.id, surname="Иванов", addresses=[ADDRESS]
            )
            session.commit()
            subscriber_id = subscriber.id
        return World(config, sessions, load_templates(config.templates_dir), ca, subscriber_id)

    return build


@pytest.fixture
def world(make_world: Callable[..., World]) -> Iterator[World]:
    yield make_world()
