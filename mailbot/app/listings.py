"""What the administrator's listings read: the journal, the registered certificates, the store rows.

Read-only queries, each one function, so that the command line only parses
arguments and prints (the daemon's reads are in :mod:`mailbot.app.letters`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailbot.app.states import LetterState
from mailbot.directory.models import CertificateRecord, LetterRecord


@dataclass(frozen=True)
class JournalFilter:
    """Which journal rows a listing shows (every field optional; bounds are aware times)."""

    #: At most this many rows (None: every match).
    limit: int | None = 200
    #: Received at or after this moment.
    since: dt.datetime | None = None
    #: Received at or before this moment.
    until: dt.datetime | None = None
    #: Received before this moment (a period's exclusive end).
    before: dt.datetime | None = None
    outcome: str | None = None
    state: str | None = None
    sender: str | None = None
    #: Subject containing this text (case-insensitive for Latin letters; SQL wildcards literal).
    subject: str | None = None
    #: Skip this many of the newest matches first (paging).
    offset: int = 0


def journal_letters(session: Session, wanted: JournalFilter) -> Sequence[LetterRecord]:
    """The newest journal rows first (by arrival, then id), filtered by *wanted*.

    The one query behind ``mailbot journal`` and ``mailbot letter list``.
    """
    query = select(LetterRecord).order_by(LetterRecord.received_at.desc(), LetterRecord.id.desc())
    if wanted.limit is not None:
        query = query.limit(wanted.limit)
    if wanted.offset:
        query = query.offset(wanted.offset)
    if wanted.since is not None:
        query = query.where(LetterRecord.received_at >= wanted.since)
    if wanted.until is not None:
        query = query.where(LetterRecord.received_at <= wanted.until)
    if wanted.before is not None:
        query = query.where(LetterRecord.received_at < wanted.before)
    if wanted.outcome:
        query = query.where(LetterRecord.outcome == wanted.outcome)
    if wanted.state:
        query = query.where(LetterRecord.state == wanted.state)
    if wanted.sender:
        query = query.where(LetterRecord.sender == wanted.sender.strip().lower())
    if wanted.subject:
        query = query.where(LetterRecord.subject.icontains(wanted.subject, autoescape=True))
    return session.scalars(query).all()


def deferred_letters(session: Session, limit: int) -> Sequence[LetterRecord]:
    """Letters waiting for a CRL, oldest first."""
    query = (
        select(LetterRecord)
        .where(LetterRecord.state == LetterState.DEFERRED)
        .order_by(LetterRecord.id)
        .limit(limit)
    )
    return session.scalars(query).all()


def registered_certificates(
    session: Session,
    subscriber_id: int | None = None,
    expiring_before: dt.datetime | None = None,
) -> Sequence[CertificateRecord]:
    """Registered certificates, soonest to expire first; *expiring_before* keeps valid ones."""
    query = select(CertificateRecord).order_by(CertificateRecord.not_after, CertificateRecord.id)
    if subscriber_id is not None:
        query = query.where(CertificateRecord.subscriber_id == subscriber_id)
    if expiring_before is not None:
        query = query.where(
            CertificateRecord.not_after <= expiring_before, CertificateRecord.status == "valid"
        )
    return session.scalars(query).all()


def store_rows(session: Session) -> list[tuple[str, str]]:
    """``(thumbprint, store path)`` of every registered certificate."""
    rows = session.execute(select(CertificateRecord.thumbprint_sha1, CertificateRecord.store_path))
    return [(str(thumbprint), str(path)) for thumbprint, path in rows]
