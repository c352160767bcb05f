"""One SMTP connection for the outbox: opened on demand, kept between flushes, closed when idle.

Connecting costs a TCP handshake, the server's greeting, EHLO, STARTTLS and
AUTH; the TLS context alone (the system CA store) took ≈18 ms to build. So:

* the TLS context is built once per process for each (``verify_certificate``,
  ``ca_file``) setting, lazily, and shared (:func:`tls_context_for`); none is
  built for ``tls = "none"``;
* :class:`SmtpLink` keeps its connection after a flush. The next flush checks it
  with a ``NOOP`` first: a connection the server closed meanwhile (its idle
  timeout, a restart) is replaced by a new one, transparently; a letter is never
  charged for it. A connection unused for ``idle_seconds`` is closed (``QUIT``)
  at the next use or :meth:`SmtpLink.close_if_idle`; there is no background task.

Nothing here decides what a failure means for a letter: that is the outbox's job.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ssl
import time
from collections.abc import Callable
from pathlib import Path

import aiosmtplib

from mailbot.config import SecretError
from mailbot.config.schema import SmtpConfig
from mailbot.config.secrets import known_secret_values
from mailbot.log import get_logger

log = get_logger(__name__)

#: Error texts keep this much of a server's answer.
_MAX_ERROR_CHARS = 500

#: A connection unused this long is closed: below the idle timeouts of common servers
#: (Postfix 300 s, 10 s under stress: the NOOP check covers those), short enough not to
#: hold a server slot for nothing.
DEFAULT_IDLE_SECONDS = 30.0


class SmtpConnectError(Exception):
    """Connecting, TLS or AUTH failed; ``auth`` tells a rejected login apart."""

    def __init__(self, message: str, auth: bool = False) -> None:
        super().__init__(message)
        self.auth = auth


class SmtpLink:
    """The outbox's SMTP connection, reused while letters keep coming.

    One user at a time: the caller (:class:`mailbot.mail.outbox.OutboxSender`)
    serialises its flushes. A link belongs to the event loop it connected in; used
    from another loop (a new ``asyncio.run``), it forgets the old connection.
    """

    def __init__(
        self,
        smtp: SmtpConfig,
        idle_seconds: float = DEFAULT_IDLE_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.smtp = smtp
        self.idle_seconds = idle_seconds
        self.monotonic = monotonic
        self._client: aiosmtplib.SMTP | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._last_used = 0.0

    @property
    def is_open(self) -> bool:
        """Whether a connection is being kept (it may still have been closed by the server)."""
        return self._client is not None

    async def client(self) -> aiosmtplib.SMTP:
        """A connection ready for MAIL FROM: the kept one if it still answers, else a new one.

        Raises :class:`SmtpConnectError` when a new connection cannot be made.
        """
        self._forget_other_loop()
        await self.close_if_idle()
        kept = self._client
        if kept is not None:
            if await self._answers(kept):
                return kept
            # Closed by the server (idle timeout, restart): reconnect once, silently.
            log.info("smtp connection lost while idle, reconnecting")
            kept.close()
            self._client = None
        self._client = await _connect(self.smtp)
        self._loop = asyncio.get_running_loop()
        self.used()
        return self._client

    def used(self) -> None:
        """Note that the connection just did some work (the idle clock restarts)."""
        self._last_used = self.monotonic()

    async def close_if_idle(self) -> bool:
        """Close the connection if unused for ``idle_seconds``; whether it was closed."""
        self._forget_other_loop()
        if self._client is None or self.monotonic() - self._last_used < self.idle_seconds:
            return False
        await self.close()
        return True

    async def close(self) -> None:
        """``QUIT`` and close the connection, if any; never waits past the timeout."""
        self._forget_other_loop()
        client, self._client = self._client, None
        if client is not None:
            await _quit(client, self.smtp.timeout_seconds)

    def abandon(self) -> None:
        """Drop the connection without a word: its state is unknown (a cancelled command)."""
        client, self._client = self._client, None
        if client is not None:
            client.close()

    async def _answers(self, client: aiosmtplib.SMTP) -> bool:
        if not client.is_connected:
            return False
        try:
            async with asyncio.timeout(self.smtp.timeout_seconds):
                await client.noop()
        except (aiosmtplib.SMTPException, OSError, TimeoutError):
            return False  # a 421, a reset, silence: this connection is done
        return True

    def _forget_other_loop(self) -> None:
        # A connection is bound to its loop; the loop that made it may be gone.
        if self._client is not None and self._loop is not asyncio.get_running_loop():
            client, self._client = self._client, None
            with contextlib.suppress(RuntimeError):  # that loop is closed: nothing to tell it
                client.close()


def tls_context_for(smtp: SmtpConfig) -> ssl.SSLContext | None:
    """The shared TLS context for *smtp*'s settings; ``None`` for ``tls = "none"``.

    Raises ``OSError``/``ssl.SSLError`` when ``ca_file`` cannot be loaded (not cached:
    a fixed file is picked up by the next attempt).
    """
    if smtp.tls == "none":
        return None
    return _tls_context(smtp.verify_certificate, smtp.ca_file)


@functools.cache
def _tls_context(verify: bool, ca_file: Path | None) -> ssl.SSLContext:
    """Verify against ``ca_file`` alone when given (a private CA), else the system roots."""
    if not verify:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    return ssl.create_default_context(cafile=str(ca_file) if ca_file is not None else None)


async def _connect(smtp: SmtpConfig) -> aiosmtplib.SMTP:
    password: str | None = None
    try:
        if smtp.user:
            password = smtp.password.resolve().reveal()
        context = tls_context_for(smtp)
    except SecretError as exc:
        raise SmtpConnectError(f"SMTP password: {exc}", auth=True) from None
    except (OSError, ssl.SSLError) as exc:
        raise SmtpConnectError(f"SMTP ca_file {smtp.ca_file}: {describe(exc)}") from None
    client = aiosmtplib.SMTP(
        hostname=smtp.host,
        port=smtp.port,
        use_tls=smtp.tls == "implicit",
        # True = STARTTLS is required: a server that does not offer it (or a
        # man in the middle stripping it) fails the connection, never plain text.
        # False for "none": no opportunistic upgrade to an unverifiable certificate.
        start_tls=smtp.tls == "starttls",
        tls_context=context,
        validate_certs=smtp.verify_certificate,
        username=smtp.user or None,
        password=password,
        timeout=smtp.timeout_seconds,
    )
    try:
        async with asyncio.timeout(smtp.timeout_seconds):
            await client.connect()
    except aiosmtplib.SMTPAuthenticationError as exc:
        client.close()
        raise SmtpConnectError(
            f"AUTH as {smtp.user!r} refused: {describe(exc)}", auth=True
        ) from None
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
        client.close()
        raise SmtpConnectError(
            f"cannot connect to {smtp.host}:{smtp.port} (tls={smtp.tls}): {describe(exc)}"
        ) from None
    return client


async def _quit(client: aiosmtplib.SMTP, timeout: float) -> None:
    """QUIT politely, but never let a hanging server hold the caller."""
    try:
        async with asyncio.timeout(timeout):
            await client.quit()
    except (aiosmtplib.SMTPException, OSError, TimeoutError):
        client.close()


def describe(exc: BaseException) -> str:
    """A one-line description of an SMTP failure, without secrets."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        text = "all recipients refused: " + "; ".join(
            f"{r.recipient}: {r.code} {r.message}" for r in exc.recipients
        )
    elif isinstance(exc, aiosmtplib.SMTPResponseException):
        text = f"{exc.code} {exc.message}"
    else:
        text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return scrub(text)


def scrub(text: str) -> str:
    """*text* without any resolved secret, on one line, at most 500 characters."""
    for secret in known_secret_values():
        text = text.replace(secret, "[redacted]")
    text = " ".join(text.split())
    return text[:_MAX_ERROR_CHARS]
