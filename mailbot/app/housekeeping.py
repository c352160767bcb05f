"""Retention and status upkeep: old raw letters and journal rows go, expired certificates
are marked ``expired``."""

from __future__ import annotations

import datetime as dt
import time

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, sessionmaker

from mailbot.app.reminders import expire_certificates
from mailbot.app.states import LetterState
from mailbot.config import Config
from mailbot.directory.models import (
    CertificateRecord,
    LetterRecord,
    OutboxMessage,
    QuarantinedCertificate,
)
from mailbot.log import get_logger

log = get_logger(__name__)


def prune_archive(config: Config, now: float | None = None) -> int:
    """Delete archived raw letters older than ``daemon.archive_retention_days``."""
    days = config.daemon.archive_retention_days
    if days <= 0 or not config.archive_dir.is_dir():
        return 0
    cutoff = (now or time.time()) - days * 86400
    removed = 0
    for path in config.archive_dir.glob("*/*.eml"):
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
        except FileNotFoundError:
            continue
    return removed


def prune_journal(
    config: Config, sessions: sessionmaker[Session], now: dt.datetime | None = None
) -> int:
    """Delete finished journal rows older than ``daemon.journal_retention_days``.

    Their sent or failed outbox rows go with them; references from registered
    certificates and quarantine rows are cleared, never the certificates.
    """
    days = config.daemon.journal_retention_days
    if days <= 0:
        return 0
    cutoff = (now or dt.datetime.now(dt.UTC)) - dt.timedelta(days=days)
    with sessions() as session:
        old = select(LetterRecord.id).where(
            LetterRecord.received_at < cutoff,
            LetterRecord.state.in_((LetterState.DONE, LetterState.FAILED)),
        )
        pending = select(OutboxMessage.letter_id).where(OutboxMessage.status == "pending")
        finished_with_replies_sent = old.where(
            LetterRecord.id.not_in(pending.where(OutboxMessage.letter_id.is_not(None)))
        )
        ids = list(session.scalars(finished_with_replies_sent))
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            session.execute(
                update(CertificateRecord)
                .where(CertificateRecord.letter_id.in_(chunk))
                .values(letter_id=None)
            )
            session.execute(
                update(QuarantinedCertificate)
                .where(QuarantinedCertificate.letter_id.in_(chunk))
                .values(letter_id=None)
            )
            session.execute(delete(OutboxMessage).where(OutboxMessage.letter_id.in_(chunk)))
            session.execute(delete(LetterRecord).where(LetterRecord.id.in_(chunk)))
        session.commit()
    return len(ids)


def mark_expired(sessions: sessionmaker[Session], now: dt.datetime | None = None) -> int:
    """Valid certificates past their ``not_after`` become ``expired``; returns how many."""
    with sessions() as session:
        count = expire_certificates(session, now or dt.datetime.now(dt.UTC))
        session.commit()
    return count


def run(config: Config, sessions: sessionmaker[Session]) -> None:
    """Both retention jobs and the expiry marking, logged."""
    letters = prune_archive(config)
    rows = prune_journal(config, sessions)
    # The reminders job marks them too, hourly; this covers reminders.enabled = false.
    expired = mark_expired(sessions)
    if letters or rows or expired:
        log.info("housekeeping.done", archive_removed=letters, journal_removed=rows,
                 certificates_expired=expired)  # fmt: skip
