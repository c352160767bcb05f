"""The SMTP outbox sender: every queued letter leaves once, over a kept connection.

The ``outbox`` table is the source of truth. :meth:`OutboxSender.flush` takes
the due ``pending`` rows, oldest first, a batch at a time, and:

1. *claims* the batch in one committed transaction (compare-and-set on
   ``status`` and ``next_attempt_at``, which moves to now + a lease), so that a
   second flusher (another daemon, ``mailbot`` from cron) skips those rows while
   they are on the wire; a claim nearing its end is extended before a send;
2. sends each row's stored ``raw`` bytes unchanged (the Message-ID is fixed when
   the row is queued) from ``smtp.from_address`` to the row's recipients, over
   the connection kept by :class:`~mailbot.mail.smtp_link.SmtpLink`;
3. records the outcome: ``sent`` marks are committed together, after
   ``marks_max_rows`` sends or once the oldest is ``marks_max_age`` seconds old
   (checked after each send), with any other outcome, and at the end of the
   flush; the first mark of a flush, and that of a row :meth:`~OutboxSender.resume`
   found waiting, go at once. ``pending`` again with exponential backoff (4xx,
   connection trouble) or ``failed`` plus an admin alert (5xx) are committed at
   once. Rows of the batch never tried get their due time back.

A crash between the server's final 250 and the commit of its mark leaves the
row claimed; it is sent again when the lease ends (or at once after
:meth:`OutboxSender.resume`), with the same Message-ID: at-least-once, with at
most ``marks_max_rows`` rows, and ``marks_max_age`` seconds plus one send,
exposed. A process that crashed after its k-th 250 left at most k - 1 of them,
and its successor records each of those right after its 250, so even a crash
at the same point every time costs a row no third copy (docs/decisions.md "Outbox").
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

import aiosmtplib
from sqlalchemy.orm import Session, sessionmaker

from mailbot.config import Config
from mailbot.directory.models import utcnow
from mailbot.log import get_logger
from mailbot.mail.outbox_store import Claim, Claimed, Due, OutboxStore, SentMark
from mailbot.mail.smtp_link import DEFAULT_IDLE_SECONDS, SmtpConnectError, SmtpLink, describe, scrub

log = get_logger(__name__)

#: A claim is extended when less than this (plus one send's deadline) is left of it.
_LEASE_MARGIN_SECONDS = 60.0


@dataclass(frozen=True)
class FlushReport:
    """What one :meth:`OutboxSender.flush` did."""

    sent: int = 0
    #: Rows put back to ``pending`` with a later ``next_attempt_at``.
    retried: int = 0
    #: Rows marked ``failed`` (permanent refusal).
    failed: int = 0
    #: Why the connection could not be used (the flush stopped there), else None.
    connection_error: str | None = None


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter: base, 2×base, 4×base, ... capped.

    The wait is between half and all of the nominal delay ("equal jitter"):
    rows that failed together (a server outage) spread out when the server
    comes back, yet no retry comes sooner than half the nominal delay.
    """

    base_seconds: float = 30
    max_seconds: float = 3600

    def delay(self, attempts: int, fraction: float) -> dt.timedelta:
        """The wait after the *attempts*-th failed attempt; *fraction* is uniform in [0, 1)."""
        exponent = min(max(attempts - 1, 0), 32)  # 2**32 × base is past any sane cap
        nominal = min(self.max_seconds, self.base_seconds * 2**exponent)
        return dt.timedelta(seconds=nominal / 2 + fraction * nominal / 2)


class _Kind(Enum):
    SENT = "sent"
    #: The server did not take this letter now; the connection is still good.
    TEMPORARY = "temporary"
    #: The server refused this letter for good.
    PERMANENT = "permanent"
    #: The connection is gone or in an unknown state: stop this flush.
    CONNECTION = "connection"


@dataclass(frozen=True)
class _Outcome:
    kind: _Kind
    error: str | None = None


class OutboxAlerts(Protocol):
    """How the outbox tells the administrators about itself.

    Implemented by :data:`mailbot.notices.daemon_alerts.OUTBOX_ALERTS` (texts
    are notices, which sit above ``mail/``); each call queues an alert in the
    session's transaction.
    """

    def outbox_failed(
        self,
        session: Session,
        config: Config,
        *,
        outbox_id: int,
        kind: str,
        recipients: Sequence[str],
        message_id: str,
        letter_id: int | None,
        error: str,
        now: dt.datetime,
    ) -> object:
        """A letter could not be delivered and will not be retried."""

    def smtp_auth_failed(
        self, session: Session, config: Config, error: str, now: dt.datetime
    ) -> object:
        """The SMTP server refused our login."""


@dataclass
class _Tally:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    connection_error: str | None = None


class OutboxSender:
    """Sends due outbox rows through the configured SMTP server.

    The connection outlives a flush; call :meth:`close` on shutdown (and
    :meth:`close_if_idle` from a periodic job if flushes may stop for long: a
    flush closes an idle connection itself).
    """

    def __init__(
        self,
        config: Config,
        sessions: sessionmaker[Session],
        alerts: OutboxAlerts,
        clock: Callable[[], dt.datetime] = utcnow,
        jitter: Callable[[], float] = random.random,
        batch_size: int = 500,
        *,
        claim_size: int = 20,
        marks_max_rows: int = 20,
        marks_max_age: float = 0.2,
        idle_seconds: float = DEFAULT_IDLE_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.store = OutboxStore(sessions)
        self.alerts = alerts
        self.clock = clock
        self.jitter = jitter
        #: Rows taken per flush; a backlog drains over several flushes, each bounded in time.
        self.batch_size = batch_size
        #: Rows claimed (and so read into memory) per transaction.
        self.claim_size = claim_size
        #: "sent" marks are committed once this many wait, or this old (seconds): the
        #: bound on letters sent twice after a crash, and on how stale the table is.
        self.marks_max_rows = marks_max_rows
        self.marks_max_age = marks_max_age
        self.monotonic = monotonic
        self.link = SmtpLink(config.smtp, idle_seconds, monotonic)
        self.retry = RetryPolicy(config.smtp.retry_base_seconds, config.smtp.retry_max_seconds)
        timeout = config.smtp.timeout_seconds
        #: A claimed row is left alone by other flushers this long. It must outlast the
        #: per-row deadline (plus connecting), or a slow send could be claimed twice;
        #: a batch sending longer than that extends its claim.
        self.lease = dt.timedelta(seconds=3 * timeout + 60)
        #: Rows resume() found waiting: possibly sent by a flusher that died before
        #: recording them; their marks are never held back in a batch.
        self._recovered: set[int] = set()
        self._lock: asyncio.Lock | None = None
        self._lock_loop: asyncio.AbstractEventLoop | None = None

    # -- the public interface ------------------------------------------------------------

    async def flush(self, now: dt.datetime | None = None) -> FlushReport:
        """Send every due ``pending`` row, oldest first, over the kept SMTP connection.

        *now* (default: the clock) decides which rows are due and stamps the
        outcome; tests pass it to step through backoff without sleeping.
        Returns counts and, when the connection failed, why. Flushes of one
        sender run one at a time.
        """
        async with self._exclusive():
            await self.link.close_if_idle()
            return await _Flush(self, now).run()

    async def close_if_idle(self) -> bool:
        """Close the SMTP connection if it has been idle long enough; whether it was."""
        async with self._exclusive():
            return await self.link.close_if_idle()

    async def close(self) -> None:
        """Close the SMTP connection (``QUIT``), if one is open; for shutdown."""
        async with self._exclusive():
            await self.link.close()

    def resume(self, now: dt.datetime | None = None) -> int:
        """Make every pending row due now; returns how many were waiting.

        Called when a daemon becomes the only flusher (it holds the lease): rows
        claimed by a flusher that died are then sent at once instead of after
        the claim's lease, and backoff delays restart.
        """
        waiting = self.store.resume(now or dt.datetime.now(dt.UTC))
        self._recovered.update(waiting)
        return len(waiting)

    def _exclusive(self) -> asyncio.Lock:
        # One lock per event loop: an asyncio.Lock must not be shared between loops.
        loop = asyncio.get_running_loop()
        if self._lock is None or self._lock_loop is not loop:
            self._lock, self._lock_loop = asyncio.Lock(), loop
        return self._lock

    # -- SMTP ----------------------------------------------------------------------------

    async def _send(self, client: aiosmtplib.SMTP, row: Claimed) -> _Outcome:
        if not row.recipients:
            return _Outcome(_Kind.PERMANENT, "the row has no recipients")
        try:
            async with asyncio.timeout(self.config.smtp.timeout_seconds):
                errors, _response = await client.sendmail(
                    self.config.smtp.from_address,
                    list(row.recipients),
                    row.raw,
                    mail_options=_mail_options(self.config.smtp.from_address, row.recipients),
                )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            # Every recipient refused: permanent only when every refusal is.
            codes = [r.code for r in exc.recipients]
            kind = _Kind.PERMANENT if codes and min(codes) >= 500 else _Kind.TEMPORARY
            return _Outcome(kind, describe(exc))
        except aiosmtplib.SMTPResponseException as exc:
            if exc.code == 421:  # the server is closing the connection (RFC 5321 3.8)
                return _Outcome(_Kind.CONNECTION, describe(exc))
            kind = _Kind.PERMANENT if exc.code >= 500 else _Kind.TEMPORARY
            return _Outcome(kind, describe(exc))
        except aiosmtplib.SMTPNotSupported as exc:
            # e.g. an SMTPUTF8 address the server cannot carry: retrying will not help.
            return _Outcome(_Kind.PERMANENT, describe(exc))
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            # Disconnected, timed out (our deadline or the library's): the session's
            # state is unknown. The server may even have taken the letter; the row is
            # retried, the same Message-ID lets the receiver see it is a duplicate.
            return _Outcome(_Kind.CONNECTION, describe(exc))
        except ValueError as exc:
            # aiosmtplib refuses addresses with line breaks before talking to the server.
            return _Outcome(_Kind.PERMANENT, describe(exc))
        if errors:
            # Some recipients refused, the rest accepted: resending would duplicate the
            # letter for those who have it, so the row is sent; the refusals are kept.
            refused = "; ".join(f"{r}: {resp.code} {resp.message}" for r, resp in errors.items())
            return _Outcome(_Kind.SENT, scrub(f"some recipients refused: {refused}"))
        return _Outcome(_Kind.SENT)

    # -- alerts about the outbox itself --------------------------------------------------

    def _alert_failure(self, session: Session, row: Claimed, error: str, now: dt.datetime) -> None:
        self.alerts.outbox_failed(session, self.config, outbox_id=row.id, kind=row.kind,
                                  recipients=row.recipients, message_id=row.message_id,
                                  letter_id=row.letter_id, error=error, now=now)  # fmt: skip

    def _alert_auth_failure(self, session: Session, error: str, now: dt.datetime) -> None:
        self.alerts.smtp_auth_failed(session, self.config, scrub(error), now)


async def flush_once(
    config: Config, sessions: sessionmaker[Session], alerts: OutboxAlerts
) -> FlushReport:
    """One flush, then the connection is closed: for one-shot commands."""
    sender = OutboxSender(config, sessions, alerts)
    try:
        return await sender.flush()
    finally:
        await sender.close()


class _Flush:
    """One flush: its counts, its connection and its unrecorded "sent" marks."""

    def __init__(self, sender: OutboxSender, now: dt.datetime | None) -> None:
        self.sender = sender
        self.store = sender.store
        self.fixed_now = now
        self.now = now or sender.clock()
        self.tally = _Tally()
        self.client: aiosmtplib.SMTP | None = None
        self.marks: list[SentMark] = []
        self.first_mark_at = 0.0

    def stamp(self) -> dt.datetime:
        return self.fixed_now or self.sender.clock()

    async def run(self) -> FlushReport:
        due = self.store.due(self.now, self.sender.batch_size)
        if not due:
            return FlushReport()
        try:
            size = self.sender.claim_size
            for start in range(0, len(due), size):
                if not await self._batch(due[start : start + size]):
                    break
        finally:
            self._record_marks()
        t = self.tally
        log.info("outbox flushed", sent=t.sent, retried=t.retried, failed=t.failed,
                 connection_error=t.connection_error)  # fmt: skip
        return FlushReport(t.sent, t.retried, t.failed, t.connection_error)

    async def _batch(self, due: Sequence[Due]) -> bool:
        """Claim and send *due*; False when the connection failed (the flush stops)."""
        sender = self.sender
        stamp = self.stamp()
        claim = self.store.claim(due, stamp, stamp + sender.lease)
        deadline = sender.monotonic() + sender.lease.total_seconds()
        waiting = list(claim.rows)
        try:
            while waiting:
                if self.client is None:
                    try:
                        self.client = await sender.link.client()
                    except SmtpConnectError as exc:
                        self.tally.connection_error = str(exc)
                        self._reschedule(waiting.pop(0), str(exc), auth_failed=exc.auth)
                        return False
                budget = sender.config.smtp.timeout_seconds + _LEASE_MARGIN_SECONDS
                if sender.monotonic() + budget > deadline:
                    claim, waiting, deadline = self._extend(claim, waiting)
                    continue
                row = waiting.pop(0)  # from here on its fate is unknown until recorded
                outcome = await sender._send(self.client, row)
                sender.link.used()
                if not self._record(row, outcome):
                    self.client = None
                    await sender.link.close()
                    return False
            return True
        except BaseException:
            # Cancelled or failed mid-conversation: the connection's state is unknown.
            sender.link.abandon()
            raise
        finally:
            # Claimed, never tried (the connection failed, or we were cancelled):
            # these rows keep their schedule, as if this flush had not seen them.
            self.store.release(claim, waiting, due)

    def _extend(self, claim: Claim, waiting: list[Claimed]) -> tuple[Claim, list[Claimed], float]:
        self._record_marks()  # the rows already sent need no longer claim
        stamp = self.stamp()
        claim = self.store.extend(claim, waiting, stamp + self.sender.lease)
        return claim, list(claim.rows), self.sender.monotonic() + self.sender.lease.total_seconds()

    def _record(self, row: Claimed, outcome: _Outcome) -> bool:
        """Record *outcome* for *row*; False when the connection is gone."""
        if outcome.kind is _Kind.SENT:
            self._sent(SentMark(row, self.stamp(), outcome.error))
            return True
        if outcome.kind is _Kind.PERMANENT:
            self._fail(row, outcome.error or "refused")
            return True
        self._reschedule(row, outcome.error or "temporary failure")
        if outcome.kind is _Kind.TEMPORARY:
            return True
        # The remaining rows keep their schedule: trying each of them against a
        # dead server would only inflate their attempts.
        self.tally.connection_error = outcome.error
        return False

    # -- outcomes --------------------------------------------------------------------------

    def _sent(self, mark: SentMark) -> None:
        # Committed at once: the first mark of a flush and that of a row resume() found
        # waiting (see the module docstring: no third copies), a full or old batch.
        self.tally.sent += 1
        now = self.sender.monotonic()
        if not self.marks:
            self.first_mark_at = now
        self.marks.append(mark)
        sender = self.sender
        if (
            self.tally.sent == 1
            or mark.row.id in sender._recovered
            or len(self.marks) >= sender.marks_max_rows
            or now - self.first_mark_at >= sender.marks_max_age
        ):
            self._record_marks()

    def _record_marks(self) -> None:
        marks, self.marks = self.marks, []
        self.store.mark_sent(marks)
        self._recorded(marks)

    def _recorded(self, marks: Sequence[SentMark]) -> None:
        for mark in marks:
            row = mark.row
            self.sender._recovered.discard(row.id)
            log.info("outbox letter sent", outbox_id=row.id, outbox_kind=row.kind,
                     message_id=row.message_id, attempts=row.attempts + 1)  # fmt: skip
            if mark.note:
                log.warning("outbox letter partly refused", outbox_id=row.id, error=mark.note)

    def _reschedule(self, row: Claimed, error: str, auth_failed: bool = False) -> None:
        sender = self.sender
        now = self.stamp()
        error = scrub(error)
        attempts = row.attempts + 1
        next_at = now + sender.retry.delay(attempts, sender.jitter())
        marks, self.marks = self.marks, []
        also = (lambda s: sender._alert_auth_failure(s, error, now)) if auth_failed else None
        self.store.reschedule(row, error, next_at, sent=marks, also=also)
        self._recorded(marks)
        sender._recovered.discard(row.id)
        self.tally.retried += 1
        log.warning("outbox letter deferred", outbox_id=row.id, outbox_kind=row.kind,
                    attempts=attempts, next_attempt_at=next_at.isoformat(),
                    error=error)  # fmt: skip

    def _fail(self, row: Claimed, error: str) -> None:
        sender = self.sender
        now = self.stamp()
        error = scrub(error)
        marks, self.marks = self.marks, []
        # An alert that cannot be delivered is not reported by another alert:
        # that one would go to the same refusing addresses, and so on.
        also = (
            (lambda s: sender._alert_failure(s, row, error, now)) if row.kind != "alert" else None
        )
        self.store.mark_failed(row, error, sent=marks, also=also)
        self._recorded(marks)
        sender._recovered.discard(row.id)
        self.tally.failed += 1
        log.error("outbox letter failed", outbox_id=row.id, outbox_kind=row.kind,
                  message_id=row.message_id, error=error)  # fmt: skip


def _mail_options(sender: str, recipients: Sequence[str]) -> list[str]:
    """SMTPUTF8 when an address is internationalised (RFC 6531); a server without it
    refuses the letter (``SMTPNotSupported``: permanent) before MAIL FROM."""
    return [] if sender.isascii() and all(r.isascii() for r in recipients) else ["SMTPUTF8"]
