"""Letters waiting for a CRL (``crl.unavailable_policy = "defer"``): listing, retries, alerts.

A deferred letter keeps its journal row (state ``deferred``, no reply) and its
raw copy in the archive. :func:`retry_deferred` decides every waiting letter
again (oldest first) through :meth:`LetterProcessor.retry`; a letter whose CA
still has no CRL makes the other letters waiting on the same CA and URLs skip
this round, so an unreachable distribution point costs one timeout per round,
not one per letter. :func:`alert_long_waits` tells administrators, once per CA
key and day, which CA keeps letters waiting longer than
``crl.alert_after_minutes`` and what to do about it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailbot.app.letters import LetterProcessor, RetryError
from mailbot.app.states import LetterOutcome, LetterState, NoVerdict
from mailbot.config import Config
from mailbot.directory.models import Alert, LetterRecord
from mailbot.log import get_logger
from mailbot.notices.crl_alerts import alert_crl_unavailable

log = get_logger(__name__)


@dataclass(frozen=True)
class DeferredLetter:
    """One waiting letter, as the journal's ``detail["deferral"]`` describes it."""

    id: int
    sender: str | None
    subject: str | None
    received_at: dt.datetime
    since: dt.datetime
    last_try: dt.datetime | None
    retries: int
    ca_key: str | None
    ca_name: str | None
    reason: str | None
    problem: str | None
    urls: tuple[str, ...]
    certificate_crl_urls: tuple[str, ...]

    def waited(self, now: dt.datetime) -> dt.timedelta:
        """How long the letter has been waiting at *now*."""
        return now - self.since

    @classmethod
    def from_row(cls, row: LetterRecord) -> DeferredLetter:
        """Read a journal row (older rows without deferral details give what they can)."""
        info: dict[str, Any] = (row.detail or {}).get("deferral") or {}
        return cls(
            id=row.id,
            sender=row.sender,
            subject=row.subject,
            received_at=row.received_at,
            since=_time(info.get("since")) or row.received_at,
            last_try=_time(info.get("last_try")) or row.processed_at,
            retries=int(info.get("retries", 0)),
            ca_key=info.get("ca_key"),
            ca_name=info.get("ca_name"),
            reason=info.get("reason"),
            problem=info.get("problem"),
            urls=tuple(info.get("urls", ())),
            certificate_crl_urls=tuple(info.get("certificate_crl_urls", ())),
        )


def _time(text: object) -> dt.datetime | None:
    if not isinstance(text, str):
        return None
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def deferred_letters(session: Session) -> list[DeferredLetter]:
    """Every waiting letter, oldest first."""
    rows = session.scalars(
        select(LetterRecord)
        .where(LetterRecord.state == LetterState.DEFERRED)
        .order_by(LetterRecord.id)
    )
    return [DeferredLetter.from_row(row) for row in rows]


@dataclass
class RetryReport:
    """What one round of retries did."""

    decided: list[tuple[int, LetterOutcome]] = field(default_factory=list)
    still_waiting: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)
    errors: list[tuple[int, str]] = field(default_factory=list)


def retry_deferred(processor: LetterProcessor) -> RetryReport:
    """Decide every deferred letter again; the caller flushes the outbox and files letters."""
    report = RetryReport()
    with processor.sessions() as session:
        waiting = deferred_letters(session)
    hopeless: set[tuple[str | None, tuple[str, ...]]] = set()
    for letter in waiting:
        # Same CA key and same distribution points: the same fetch would fail again.
        key = (letter.ca_key, letter.certificate_crl_urls)
        if letter.ca_key is not None and key in hopeless:
            report.skipped.append(letter.id)
            continue
        try:
            result = processor.retry(letter.id)
        except RetryError as exc:
            log.warning("letter.retry_impossible", letter_id=letter.id, error=str(exc))
            report.errors.append((letter.id, str(exc)))
            continue
        except Exception as exc:  # a crash in one letter must not stop the others
            log.exception("letter.retry_crashed", letter_id=letter.id)
            report.errors.append((letter.id, f"{type(exc).__name__}: {exc}"))
            continue
        if result.outcome is NoVerdict.DEFERRED:
            report.still_waiting.append(letter.id)
            hopeless.add(key)
        elif not result.duplicate and result.outcome is not None:
            report.decided.append((letter.id, result.outcome))
    if report.decided or report.still_waiting or report.errors:
        log.info(
            "deferred.retried",
            decided=len(report.decided),
            waiting=len(report.still_waiting) + len(report.skipped),
            errors=len(report.errors),
        )
    return report


def alert_long_waits(
    session: Session, config: Config, now: dt.datetime | None = None
) -> list[Alert]:
    """One alert per CA key and local day while letters wait longer than the threshold.

    The caller commits. Returns the alerts queued now (deduplicated ones are not).
    """
    now = now or dt.datetime.now(dt.UTC)
    threshold = dt.timedelta(minutes=config.crl.alert_after_minutes)
    overdue: dict[str, list[DeferredLetter]] = {}
    for letter in deferred_letters(session):
        if letter.waited(now) >= threshold:
            overdue.setdefault(letter.ca_key or "unknown", []).append(letter)
    queued = []
    for ca_key, letters in overdue.items():
        alert = alert_crl_unavailable(session, config, ca_key, letters, now)
        if alert is not None:
            queued.append(alert)
    return queued


def retry_and_alert(
    processor: LetterProcessor, now: Callable[[], dt.datetime] | None = None
) -> RetryReport:
    """The daemon's job: one round of retries, then the long-wait alerts (committed)."""
    report = retry_deferred(processor)
    with processor.sessions() as session:
        alert_long_waits(session, processor.config, (now or processor.clock)())
        session.commit()
    return report
