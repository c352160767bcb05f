"""The SMTP outbox sender: every queued letter leaves once, through one connection per flush.

The ``outbox`` table is the source of truth. :meth:`OutboxSender.flush` takes
the due ``pending`` rows, oldest first, and for each one:

1. *claims* it in a committed transaction (compare-and-set on ``status`` and
   ``next_attempt_at``, which moves to now + a lease), so that a second flusher
   (another daemon, ``mailbot`` from cron) skips it while it is on the wire;
2. sends the stored ``raw`` bytes unchanged (the Message-ID is fixed when the
   row is queued) from ``smtp.from_address`` to the row's recipients;
3. records the outcome in its own committed transaction right after the
   server's answer: ``sent``; ``pending`` again with exponential backoff
   (4xx, connection trouble); or ``failed`` plus an admin alert (5xx).

A crash between the server's final 250 and step 3 leaves the row claimed; it
is sent again when the lease ends, with the same Message-ID (at-least-once,
see docs/decisions.md "Outbox").
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Protocol

import aiosmtplib
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from mailbot.config import Config, SecretError
from mailbot.config.secrets import known_secret_values
from mailbot.directory.models import OutboxMessage, utcnow
from mailbot.log import get_logger

log = get_logger(__name__)

#: ``last_error`` keeps this much of a server's answer.
_MAX_ERROR_CHARS = 500


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


@dataclass(frozen=True)
class _Claimed:
    """A snapshot of a claimed row: sending needs no open session."""

    id: int
    kind: str
    letter_id: int | None
    recipients: tuple[str, ...]
    message_id: str
    raw: bytes
    attempts: int


class _ConnectFailed(Exception):
    """Connecting, TLS or AUTH failed; ``auth`` tells a rejected login apart."""

    def __init__(self, message: str, auth: bool = False) -> None:
        super().__init__(message)
        self.auth = auth


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


class OutboxSender:
    """Sends due outbox rows through the configured SMTP server."""

    def __init__(
        self,
        config: Config,
        sessions: sessionmaker[Session],
        alerts: OutboxAlerts,
        clock: Callable[[], dt.datetime] = utcnow,
        jitter: Callable[[], float] = random.random,
        batch_size: int = 500,
    ) -> None:
        self.config = config
        self.sessions = sessions
        self.alerts = alerts
        self.clock = clock
        self.jitter = jitter
        #: Rows taken per flush; a backlog drains over several flushes, each bounded in time.
        self.batch_size = batch_size
        self.retry = RetryPolicy(config.smtp.retry_base_seconds, config.smtp.retry_max_seconds)
        timeout = config.smtp.timeout_seconds
        #: A claimed row is left alone by other flushers this long. It must outlast the
        #: per-row deadline (plus connecting), or a slow send could be claimed twice.
        self.lease = dt.timedelta(seconds=3 * timeout + 60)

    # -- the flush ---------------------------------------------------------------------

    async def flush(self, now: dt.datetime | None = None) -> FlushReport:
        """Send every due ``pending`` row, oldest first, over one SMTP connection.

        *now* (default: the clock) decides which rows are due and stamps the
        outcome; tests pass it to step through backoff without sleeping.
        Returns counts and, when the connection failed, why.
        """
        fixed_now = now
        now = now or self.clock()
        due = self._due_ids(now)
        if not due:
            return FlushReport()
        sent = retried = failed = 0
        connection_error: str | None = None
        client: aiosmtplib.SMTP | None = None
        try:
            for row_id in due:
                stamp = fixed_now or self.clock()
                row = self._claim(row_id, stamp)
                if row is None:
                    continue  # sent, failed or claimed by someone else meanwhile
                if client is None:
                    try:
                        client = await self._connect()
                    except _ConnectFailed as exc:
                        connection_error = str(exc)
                        self._reschedule(row, stamp, connection_error, auth_failed=exc.auth)
                        retried += 1
                        break
                outcome = await self._send(client, row)
                stamp = fixed_now or self.clock()
                if outcome.kind is _Kind.SENT:
                    self._mark_sent(row, stamp, outcome.error)
                    sent += 1
                elif outcome.kind is _Kind.PERMANENT:
                    self._mark_failed(row, stamp, outcome.error or "refused")
                    failed += 1
                else:
                    self._reschedule(row, stamp, outcome.error or "temporary failure")
                    retried += 1
                    if outcome.kind is _Kind.CONNECTION:
                        # The remaining rows keep their schedule: trying each of them
                        # against a dead server would only inflate their attempts.
                        connection_error = outcome.error
                        break
        finally:
            if client is not None:
                await _close(client, self.config.smtp.timeout_seconds)
        report = FlushReport(sent, retried, failed, connection_error)
        log.info(
            "outbox flushed",
            sent=sent,
            retried=retried,
            failed=failed,
            connection_error=connection_error,
        )
        return report

    # -- SMTP ----------------------------------------------------------------------------

    async def _connect(self) -> aiosmtplib.SMTP:
        smtp = self.config.smtp
        password: str | None = None
        try:
            if smtp.user:
                password = smtp.password.resolve().reveal()
            context = _tls_context(smtp.verify_certificate, smtp.ca_file)
        except SecretError as exc:
            raise _ConnectFailed(f"SMTP password: {exc}", auth=True) from None
        except (OSError, ssl.SSLError) as exc:
            raise _ConnectFailed(f"SMTP ca_file {smtp.ca_file}: {_describe(exc)}") from None
        client = aiosmtplib.SMTP(
            hostname=smtp.host,
            port=smtp.port,
            use_tls=smtp.tls == "implicit",
            # True = STARTTLS is required: a server that does not offer it (or a
            # man in the middle stripping it) fails the connection, never plain text.
            # False for "none": no opportunistic upgrade to an unverifiable certificate.
            start_tls=smtp.tls == "starttls",
            tls_context=context if smtp.tls != "none" else None,
            validate_certs=smtp.verify_certificate,
            username=smtp.user or None,
            password=password,
            timeout=smtp.timeout_seconds,
        )
        try:
            async with asyncio.timeout(smtp.timeout_seconds):
                await client.connect()
        except aiosmtplib.SMTPAuthenticationError as exc:
            message = f"AUTH as {smtp.user!r} refused: {_describe(exc)}"
            raise _ConnectFailed(message, auth=True) from None
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise _ConnectFailed(
                f"cannot connect to {smtp.host}:{smtp.port} (tls={smtp.tls}): {_describe(exc)}"
            ) from None
        return client

    async def _send(self, client: aiosmtplib.SMTP, row: _Claimed) -> _Outcome:
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
            return _Outcome(kind, _describe(exc))
        except aiosmtplib.SMTPResponseException as exc:
            if exc.code == 421:  # the server is closing the connection (RFC 5321 3.8)
                return _Outcome(_Kind.CONNECTION, _describe(exc))
            kind = _Kind.PERMANENT if exc.code >= 500 else _Kind.TEMPORARY
            return _Outcome(kind, _describe(exc))
        except aiosmtplib.SMTPNotSupported as exc:
            # e.g. an SMTPUTF8 address the server cannot carry: retrying will not help.
            return _Outcome(_Kind.PERMANENT, _describe(exc))
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            # Disconnected, timed out (our deadline or the library's): the session's
            # state is unknown. The server may even have taken the letter; the row is
            # retried, the same Message-ID lets the receiver see it is a duplicate.
            return _Outcome(_Kind.CONNECTION, _describe(exc))
        except ValueError as exc:
            # aiosmtplib refuses addresses with line breaks before talking to the server.
            return _Outcome(_Kind.PERMANENT, _describe(exc))
        if errors:
            # Some recipients refused, the rest accepted: resending would duplicate the
            # letter for those who have it, so the row is sent; the refusals are kept.
            refused = "; ".join(f"{r}: {resp.code} {resp.message}" for r, resp in errors.items())
            return _Outcome(_Kind.SENT, _scrub(f"some recipients refused: {refused}"))
        return _Outcome(_Kind.SENT)

    # -- the database: one short committed transaction per step ---------------------------

    def resume(self, now: dt.datetime | None = None) -> int:
        """Make every pending row due now; returns how many were waiting.

        Called when a daemon becomes the only flusher (it holds the lease): rows
        claimed by a flusher that died are then sent at once instead of after
        the claim's lease, and backoff delays restart.
        """
        moment = now or dt.datetime.now(dt.UTC)
        with self.sessions() as session, session.begin():
            result = session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.status == "pending", OutboxMessage.next_attempt_at > moment)
                .values(next_attempt_at=moment)
            )
            return int(result.rowcount or 0)  # type: ignore[attr-defined]

    def _due_ids(self, now: dt.datetime) -> list[int]:
        with self.sessions() as session:
            return list(
                session.scalars(
                    select(OutboxMessage.id)
                    .where(OutboxMessage.status == "pending", OutboxMessage.next_attempt_at <= now)
                    .order_by(OutboxMessage.created_at, OutboxMessage.id)
                    .limit(self.batch_size)
                )
            )

    def _claim(self, row_id: int, now: dt.datetime) -> _Claimed | None:
        with self.sessions() as session, session.begin():
            claimed = session.execute(
                update(OutboxMessage)
                .where(
                    OutboxMessage.id == row_id,
                    OutboxMessage.status == "pending",
                    OutboxMessage.next_attempt_at <= now,
                )
                .values(next_attempt_at=now + self.lease)
                .execution_options(synchronize_session=False)
            )
            if claimed.rowcount != 1:  # type: ignore[attr-defined]
                return None
            row = session.get_one(OutboxMessage, row_id)
            return _Claimed(
                id=row.id,
                kind=row.kind,
                letter_id=row.letter_id,
                recipients=tuple(str(r) for r in row.recipients),
                message_id=row.message_id,
                raw=bytes(row.raw),
                attempts=row.attempts,
            )

    def _mark_sent(self, row: _Claimed, now: dt.datetime, note: str | None) -> None:
        with self.sessions() as session, session.begin():
            session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == row.id, OutboxMessage.status == "pending")
                .values(status="sent", sent_at=now, attempts=row.attempts + 1, last_error=note)
                .execution_options(synchronize_session=False)
            )
        log.info("outbox letter sent", outbox_id=row.id, outbox_kind=row.kind,
                 message_id=row.message_id, attempts=row.attempts + 1)  # fmt: skip
        if note:
            log.warning("outbox letter partly refused", outbox_id=row.id, error=note)

    def _reschedule(
        self, row: _Claimed, now: dt.datetime, error: str, auth_failed: bool = False
    ) -> None:
        attempts = row.attempts + 1
        next_at = now + self.retry.delay(attempts, self.jitter())
        with self.sessions() as session, session.begin():
            session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == row.id, OutboxMessage.status == "pending")
                .values(attempts=attempts, last_error=_scrub(error), next_attempt_at=next_at)
                .execution_options(synchronize_session=False)
            )
            if auth_failed:
                self._alert_auth_failure(session, error, now)
        log.warning("outbox letter deferred", outbox_id=row.id, outbox_kind=row.kind,
                    attempts=attempts, next_attempt_at=next_at.isoformat(),
                    error=_scrub(error))  # fmt: skip

    def _mark_failed(self, row: _Claimed, now: dt.datetime, error: str) -> None:
        error = _scrub(error)
        with self.sessions() as session, session.begin():
            session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == row.id, OutboxMessage.status == "pending")
                .values(status="failed", attempts=row.attempts + 1, last_error=error)
                .execution_options(synchronize_session=False)
            )
            # An alert that cannot be delivered is not reported by another alert:
            # that one would go to the same refusing addresses, and so on.
            if row.kind != "alert":
                self._alert_failure(session, row, error, now)
        log.error("outbox letter failed", outbox_id=row.id, outbox_kind=row.kind,
                  message_id=row.message_id, error=error)  # fmt: skip

    # -- alerts about the outbox itself --------------------------------------------------

    def _alert_failure(self, session: Session, row: _Claimed, error: str, now: dt.datetime) -> None:
        self.alerts.outbox_failed(session, self.config, outbox_id=row.id, kind=row.kind,
                                  recipients=row.recipients, message_id=row.message_id,
                                  letter_id=row.letter_id, error=error, now=now)  # fmt: skip

    def _alert_auth_failure(self, session: Session, error: str, now: dt.datetime) -> None:
        self.alerts.smtp_auth_failed(session, self.config, _scrub(error), now)


def _mail_options(sender: str, recipients: Sequence[str]) -> list[str]:
    """SMTPUTF8 when an address is internationalised (RFC 6531); a server without it
    refuses the letter (``SMTPNotSupported``: permanent) before MAIL FROM."""
    return [] if sender.isascii() and all(r.isascii() for r in recipients) else ["SMTPUTF8"]


def _tls_context(verify: bool, ca_file: Path | None) -> ssl.SSLContext:
    """Verify against ``ca_file`` alone when given (a private CA), else the system roots."""
    if not verify:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    return ssl.create_default_context(cafile=str(ca_file) if ca_file is not None else None)


async def _close(client: aiosmtplib.SMTP, timeout: float) -> None:
    """QUIT politely, but never let a hanging server hold the flush."""
    try:
        async with asyncio.timeout(timeout):
            await client.quit()
    except (aiosmtplib.SMTPException, OSError, TimeoutError):
        client.close()


def _describe(exc: BaseException) -> str:
    """A one-line description of an SMTP failure, without secrets."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        text = "all recipients refused: " + "; ".join(
            f"{r.recipient}: {r.code} {r.message}" for r in exc.recipients
        )
    elif isinstance(exc, aiosmtplib.SMTPResponseException):
        text = f"{exc.code} {exc.message}"
    else:
        text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return _scrub(text)


def _scrub(text: str) -> str:
    for secret in known_secret_values():
        text = text.replace(secret, "[redacted]")
    text = " ".join(text.split())
    return text[:_MAX_ERROR_CHARS]
