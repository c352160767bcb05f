"""The periodic report to the administrators: what a week (or a day) of mailbot looked like.

:func:`send_report` gathers the period (:func:`gather`: the journal by outcome,
the senders with most rejections, pending quarantine and deferred letters,
certificates expiring soon, CAs without a current CRL, outbox failures),
renders the letter (:mod:`mailbot.notices.report_letter`) and queues it to
``admin.alert_addresses`` in the same transaction as its ``reports`` row. The
row's unique period key is the memory across restarts and the referee between
two mailbots (or the daemon and ``mailbot report send``): the second insert
fails, its transaction - letter included - is rolled back.

Which period is due when is :mod:`mailbot.app.report_period`'s business.
Everything takes the clock as an argument, so tests pin it.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from mailbot.app import deferral
from mailbot.app.assembly import crl_store
from mailbot.app.crl_status import stale_crls
from mailbot.app.listings import JournalFilter, journal_letters, registered_certificates
from mailbot.app.outbox_status import failed_messages
from mailbot.app.quarantine import list_quarantine
from mailbot.app.report_period import Period, due_period
from mailbot.app.states import Filing, LetterState, QuarantineStatus, filing_for
from mailbot.config import Config
from mailbot.directory.models import CertificateRecord, LetterRecord, SentReport
from mailbot.log import get_logger
from mailbot.mail.queue import queue_message
from mailbot.notices.report_letter import PROCESSING, ReportContents, ReportLetter, render_report

log = get_logger(__name__)

#: How many senders with most rejected letters the report names.
TOP_SENDERS = 10
#: How many of the period's outbox failures are quoted with their error.
OUTBOX_ERRORS = 5

SENT = "sent"
#: The period's report was queued before (by us, another mailbot or the command line).
ALREADY_SENT = "already_sent"
#: Another mailbot queued it between our check and our commit; ours was rolled back.
RACED = "raced"
DRY_RUN = "dry_run"


@dataclass(frozen=True)
class ReportResult:
    """What :func:`send_report` did about one period."""

    period: Period
    status: str
    #: The letter (queued, or for a dry run only rendered); None when none was made.
    letter: ReportLetter | None = None
    outbox_id: int | None = None
    #: When an earlier report of this period was queued (``already_sent``).
    sent_at: dt.datetime | None = None

    @property
    def sent(self) -> bool:
        """Whether this call queued the letter."""
        return self.status == SENT


def current_period(config: Config, now: dt.datetime) -> Period:
    """The period whose report the daemon owes at *now* (see :func:`due_period`)."""
    report = config.report
    return due_period(report.period, report.weekday, report.hour, config.general.timezone, now)


def last_period(config: Config, now: dt.datetime, kind: str | None = None) -> Period:
    """The last *kind* period (default ``report.period``) that has ended by *now*."""
    report = config.report
    return due_period(kind or report.period, report.weekday, 0, config.general.timezone, now)


def send_report(
    config: Config,
    sessions: sessionmaker[Session],
    period: Period,
    now: dt.datetime,
    dry_run: bool = False,
) -> ReportResult:
    """Queue *period*'s report to ``admin.alert_addresses`` unless it was queued before.

    With *dry_run* the letter is only rendered (sent or not), nothing written.
    The caller checks that there are addresses (the loader does when enabled).
    """
    with sessions() as session:
        earlier = sent_report(session, period)
        if earlier is not None and not dry_run:
            return ReportResult(period, ALREADY_SENT, sent_at=earlier.created_at)
        letter = render_report(config, gather(config, session, sessions, period, now), now)
        if dry_run:
            return ReportResult(period, DRY_RUN, letter)
        return record_report(config, session, period, letter, now)


def record_report(
    config: Config, session: Session, period: Period, letter: ReportLetter, now: dt.datetime
) -> ReportResult:
    """Queue *letter* with its ``reports`` row and commit; the unique key settles a race."""
    recipients = config.admin.alert_addresses
    outbox_id = queue_message(
        session, letter.message(config, now), kind="report", recipients=recipients, now=now
    )
    session.add(
        SentReport(
            period_key=period.key, period=period.kind, period_start=period.start,
            period_end=period.end, outbox_id=outbox_id, created_at=now,
        )
    )  # fmt: skip
    try:
        session.commit()
    except IntegrityError:
        # Another mailbot queued this period's report first: its letter stands, ours goes.
        session.rollback()
        log.info("report.raced", period=period.key)
        return ReportResult(period, RACED)
    log.info("report.queued", period=period.key, outbox_id=outbox_id)
    return ReportResult(period, SENT, letter, outbox_id)


def sent_report(session: Session, period: Period) -> SentReport | None:
    """The ``reports`` row of *period*, if its report was queued."""
    return session.scalar(select(SentReport).where(SentReport.period_key == period.key))


def gather(
    config: Config,
    session: Session,
    sessions: sessionmaker[Session],
    period: Period,
    now: dt.datetime,
) -> ReportContents:
    """What the report of *period* says, read at *now* (lists of waiting things are as of now)."""
    wanted = JournalFilter(limit=None, since=period.start, before=period.end)
    letters = list(reversed(journal_letters(session, wanted)))
    failed, errors = failed_messages(session, period.start, period.end, OUTBOX_ERRORS)
    return ReportContents(
        kind=period.kind,
        first_day=period.first_day,
        last_day=period.last_day,
        letters=letters,
        outcomes=outcome_counts(letters),
        senders=most_rejected(letters, TOP_SENDERS),
        quarantine=list_quarantine(session, QuarantineStatus.PENDING),
        deferred=deferral.deferred_letters(session),
        expiring_days=config.report.expiring_days,
        certificates=expiring_certificates(session, now, config.report.expiring_days),
        crls=stale_crls(sessions, crl_store(config), now),
        outbox_failed=failed,
        outbox_errors=errors,
    )


def outcome_counts(letters: Sequence[LetterRecord]) -> list[tuple[str, int]]:
    """``(outcome, letters)``, most first; a letter not yet decided counts as ``processing``."""
    counts = Counter(letter.outcome or PROCESSING for letter in letters)
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))


def most_rejected(letters: Sequence[LetterRecord], limit: int) -> list[tuple[str, int]]:
    """The *limit* senders with most decided letters filed as rejected, with their counts."""
    counts = Counter(
        letter.sender or "-"
        for letter in letters
        if letter.state == LetterState.DONE
        and filing_for(letter.outcome, letter.state) == Filing.REJECTED
    )
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:limit]


def expiring_certificates(session: Session, now: dt.datetime, days: int) -> list[CertificateRecord]:
    """Valid certificates expiring after *now* and within *days*, soonest first."""
    rows = registered_certificates(session, expiring_before=now + dt.timedelta(days=days))
    # Past not_after but not yet marked expired (the reminders job does that): not "expiring".
    return [row for row in rows if row.not_after > now]
