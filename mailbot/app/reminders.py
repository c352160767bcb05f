"""Expiry reminders: a letter to the participant before a registered certificate expires.

Not part of the regulation. For every registered certificate with status
``valid`` and each threshold of ``reminders.expiry_days`` the certificate has
reached (whole days left <= threshold), exactly one ``expiry_reminders`` row
settles the threshold:

* ``sent``: the ``expiry_reminder`` letter was queued in the outbox, to the
  subscriber's active trusted addresses, in the same transaction as the row;
* ``skipped``: a nearer threshold was reached too (a certificate registered
  5 days before expiry gets the 7-day reminder, not the 30-day one as well);
* ``superseded``: the subscriber already has a later valid certificate;
* ``undeliverable``: no active trusted address (or the subscriber or the
  organisation is inactive); nobody is mailed, the threshold is not retried.

The row's unique key (certificate, threshold) is the memory across restarts,
and it decides a race between the daemon and ``mailbot reminders run``.
Everything takes the clock as an argument, so tests pin it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from mailbot.config import Config
from mailbot.dates import format_reply_datetime
from mailbot.directory.models import (
    CertificateRecord,
    ExpiryReminder,
    Organisation,
    Subscriber,
    TrustedAddress,
)
from mailbot.log import get_logger
from mailbot.mail.queue import queue_message
from mailbot.mail.reply import ReplySettings, build_notice
from mailbot.notices.templates import Templates
from mailbot.regulation.decision import Outcome

log = get_logger(__name__)

SENT = "sent"
SKIPPED = "skipped"
SUPERSEDED = "superseded"
UNDELIVERABLE = "undeliverable"

_DAY = dt.timedelta(days=1)
_CHUNK = 500


@dataclass(frozen=True)
class ReminderAction:
    """What was (or, in a dry run, would be) done about one threshold of one certificate."""

    certificate_id: int
    subscriber_id: int
    serial: str
    subject_cn: str | None
    not_after: dt.datetime
    threshold_days: int
    days_left: int
    status: str
    recipients: tuple[str, ...] = ()
    superseded_by: int | None = None


@dataclass(frozen=True)
class ReminderReport:
    """The result of one :func:`send_due_reminders`."""

    actions: tuple[ReminderAction, ...] = ()
    #: Certificates whose status became (or, in a dry run, would become) ``expired``.
    expired: int = 0
    #: Certificates another run settled between our reading and our commit.
    raced: int = 0
    dry_run: bool = False

    def count(self, status: str) -> int:
        """How many actions have *status*."""
        return sum(1 for action in self.actions if action.status == status)

    @property
    def sent(self) -> int:
        """Reminder letters queued."""
        return self.count(SENT)


@dataclass
class _Candidate:
    certificate: CertificateRecord
    days_left: int
    actions: list[ReminderAction] = field(default_factory=list)


def whole_days_left(not_after: dt.datetime, now: dt.datetime) -> int:
    """Complete 24-hour days from *now* until *not_after* (0 on the last day)."""
    return (not_after - now) // _DAY


def due_thresholds(thresholds: Iterable[int], days_left: int) -> list[int]:
    """The thresholds a certificate with *days_left* has reached, nearest first."""
    return sorted(t for t in set(thresholds) if days_left <= t)


def expire_certificates(session: Session, now: dt.datetime, dry_run: bool = False) -> int:
    """Set status ``expired`` on valid certificates past ``not_after``; the caller commits."""
    past = (CertificateRecord.status == "valid", CertificateRecord.not_after <= now)
    if dry_run:
        return int(session.scalar(select(func.count(CertificateRecord.id)).where(*past)) or 0)
    result = session.execute(
        update(CertificateRecord).where(*past).values(status="expired")
        .execution_options(synchronize_session=False)
    )  # fmt: skip
    return int(result.rowcount)  # type: ignore[attr-defined]


def plan_reminders(
    session: Session, thresholds: Sequence[int], now: dt.datetime
) -> list[ReminderAction]:
    """What is due now, without writing anything: one action per unsettled threshold."""
    return [a for c in _candidates(session, thresholds, now) for a in c.actions]


def send_due_reminders(
    config: Config,
    sessions: sessionmaker[Session],
    templates: Templates,
    now: dt.datetime,
    dry_run: bool = False,
) -> ReminderReport:
    """Mark expired certificates, then settle every due threshold and queue the letters.

    Each certificate is settled in its own transaction (rows and outbox letter
    together), so a failure or a concurrent run costs at most that certificate.
    With *dry_run* nothing is written; the report says what would happen.
    """
    thresholds = config.reminders.expiry_days
    with sessions() as session:
        expired = expire_certificates(session, now, dry_run)
        if dry_run:
            session.rollback()
            actions = plan_reminders(session, thresholds, now)
            return ReminderReport(tuple(actions), expired, dry_run=True)
        session.commit()
        done: list[ReminderAction] = []
        raced = 0
        settings = ReplySettings.from_config(config)
        for candidate in _candidates(session, thresholds, now):
            for action in candidate.actions:
                _record(session, action, config, templates, settings, now)
            try:
                session.commit()
            except IntegrityError:
                # Another run settled this certificate first; its rows stand, ours go.
                session.rollback()
                raced += 1
                log.info("reminder.raced", certificate_id=candidate.certificate.id)
                continue
            done.extend(candidate.actions)
            for action in candidate.actions:
                _log(action)
    report = ReminderReport(tuple(done), expired, raced)
    if report.actions or expired:
        log.info("reminders.done", sent=report.sent, skipped=report.count(SKIPPED),
                 superseded=report.count(SUPERSEDED), undeliverable=report.count(UNDELIVERABLE),
                 expired=expired, raced=raced)  # fmt: skip
    return report


# -- planning ------------------------------------------------------------------------------


def _candidates(session: Session, thresholds: Sequence[int], now: dt.datetime) -> list[_Candidate]:
    """Valid certificates with at least one reached, unsettled threshold, soonest first."""
    if not thresholds:
        return []
    # days_left <= T means less than T + 1 days remain.
    horizon = now + (max(thresholds) + 1) * _DAY
    rows = session.scalars(
        select(CertificateRecord)
        .where(
            CertificateRecord.status == "valid",
            CertificateRecord.not_after > now,
            CertificateRecord.not_after < horizon,
        )
        .order_by(CertificateRecord.not_after, CertificateRecord.id)
    ).all()
    settled = _settled(session, [row.id for row in rows])
    candidates = []
    for row in rows:
        days_left = whole_days_left(row.not_after, now)
        due = due_thresholds(thresholds, days_left)
        pending = [t for t in due if (row.id, t) not in settled]
        if not pending:
            continue
        candidate = _Candidate(row, days_left)
        candidate.actions = _decide(session, candidate, due[0], pending)
        candidates.append(candidate)
    return candidates


def _decide(
    session: Session, candidate: _Candidate, nearest: int, pending: list[int]
) -> list[ReminderAction]:
    """One action per pending threshold; at most the nearest one becomes a letter."""
    row = candidate.certificate

    def action(
        threshold: int,
        status: str,
        recipients: tuple[str, ...] = (),
        superseded_by: int | None = None,
    ) -> ReminderAction:
        return ReminderAction(
            row.id, row.subscriber_id, row.serial, row.subject_cn, row.not_after,
            threshold, candidate.days_left, status, recipients, superseded_by,
        )  # fmt: skip

    newer = _newer_certificate(session, row)
    if newer is not None:
        return [action(t, SUPERSEDED, superseded_by=newer) for t in pending]
    # Farther thresholds reached together with the nearest one are never mailed:
    # two letters at once about one certificate would only confuse.
    actions = [action(t, SKIPPED) for t in pending if t != nearest]
    if nearest in pending:
        recipients = _recipients(session, row.subscriber_id)
        status = SENT if recipients else UNDELIVERABLE
        actions.append(action(nearest, status, recipients=recipients))
    return actions


def _settled(session: Session, certificate_ids: list[int]) -> set[tuple[int, int]]:
    found: set[tuple[int, int]] = set()
    for start in range(0, len(certificate_ids), _CHUNK):
        chunk = certificate_ids[start : start + _CHUNK]
        rows = session.execute(
            select(ExpiryReminder.certificate_id, ExpiryReminder.threshold_days).where(
                ExpiryReminder.certificate_id.in_(chunk)
            )
        )
        found.update((int(c), int(t)) for c, t in rows)
    return found


def _newer_certificate(session: Session, row: CertificateRecord) -> int | None:
    """A valid certificate of the same subscriber expiring later: the participant renewed."""
    return session.scalar(
        select(CertificateRecord.id)
        .where(
            CertificateRecord.subscriber_id == row.subscriber_id,
            CertificateRecord.id != row.id,
            CertificateRecord.status == "valid",
            CertificateRecord.not_after > row.not_after,
        )
        .order_by(CertificateRecord.not_after.desc())
        .limit(1)
    )


def _recipients(session: Session, subscriber_id: int) -> tuple[str, ...]:
    """Active trusted addresses of an active subscriber of an active organisation.

    The same people the sender gate accepts letters from: a reminder must not
    reach an address the fund has stopped trusting.
    """
    addresses = session.scalars(
        select(TrustedAddress.address)
        .join(Subscriber, Subscriber.id == TrustedAddress.subscriber_id)
        .join(Organisation, Organisation.id == Subscriber.organisation_id)
        .where(
            TrustedAddress.subscriber_id == subscriber_id,
            TrustedAddress.active.is_(True),
            Subscriber.active.is_(True),
            Organisation.active.is_(True),
        )
        .order_by(TrustedAddress.address)
    ).all()
    return tuple(dict.fromkeys(addresses))


# -- recording -----------------------------------------------------------------------------


def _record(
    session: Session,
    action: ReminderAction,
    config: Config,
    templates: Templates,
    settings: ReplySettings,
    now: dt.datetime,
) -> None:
    """Add the threshold's row and, for ``sent``, its letter to the outbox."""
    outbox_id = None
    if action.status == SENT:
        outbox_id = _queue_letter(session, action, config, templates, settings, now)
    session.add(
        ExpiryReminder(
            certificate_id=action.certificate_id,
            threshold_days=action.threshold_days,
            status=action.status,
            days_left=action.days_left,
            recipients=list(action.recipients),
            outbox_id=outbox_id,
            superseded_by_id=action.superseded_by,
            created_at=now,
        )
    )


def _queue_letter(
    session: Session,
    action: ReminderAction,
    config: Config,
    templates: Templates,
    settings: ReplySettings,
    now: dt.datetime,
) -> int:
    values = {
        "serial": action.serial,
        # Imported certificates may lack a CN; the serial alone still identifies it.
        "subject_cn": action.subject_cn or "-",
        "valid_to": format_reply_datetime(action.not_after, config.general.timezone),
        "days": str(action.days_left),
    }
    body = templates.render(Outcome.EXPIRY_REMINDER, values)
    subject = templates.render_subject(Outcome.EXPIRY_REMINDER, values)
    # One letter to all of the subscriber's addresses: they are one person's.
    letter = build_notice(
        ", ".join(action.recipients), subject, body, settings, now,
        auto_submitted="auto-generated",
    )  # fmt: skip
    return queue_message(
        session, letter, kind="reminder", recipients=action.recipients, now=now,
        template_key=Outcome.EXPIRY_REMINDER.value,
    )  # fmt: skip


def _log(action: ReminderAction) -> None:
    event = f"reminder.{action.status}"
    fields = {
        "certificate_id": action.certificate_id,
        "threshold_days": action.threshold_days,
        "days_left": action.days_left,
    }
    if action.status == UNDELIVERABLE:
        log.warning(event, subscriber_id=action.subscriber_id, **fields)
    else:
        log.info(event, **fields)
