"""An in-process SMTP server (aiosmtpd) that records mail and hands local mail to Dovecot.

Replies the daemon sends land in the participant's real IMAP INBOX: the
handler relays recipients of the local domain to Dovecot's LMTP port. Tests
can also make the server answer with a temporary or permanent error, require
STARTTLS or implicit TLS, and require AUTH, and crash tests can have it
SIGKILL the sending process right after a ``250`` (:meth:`RecordingRelayHandler.kill_after`).
The server counts the connections it accepts and can drop idle clients quickly
(``idle_timeout``), as busy MTAs do.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import smtplib
import ssl
import threading
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from testkit.ports import free_port


@dataclass(frozen=True)
class ReceivedMessage:
    """One message as the server accepted it."""

    sender: str
    recipients: tuple[str, ...]
    data: bytes

    @property
    def message(self) -> EmailMessage:
        """The message parsed with the modern policy."""
        parsed = message_from_bytes(self.data, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass
class RecordingRelayHandler:
    """aiosmtpd handler: record, optionally fail, relay local recipients over LMTP."""

    local_domains: frozenset[str]
    lmtp: tuple[str, int] | None
    messages: list[ReceivedMessage] = field(default_factory=list)
    #: When set, every DATA is answered with this reply (e.g. "451 4.3.0 try later").
    fail_with: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    arrived: threading.Condition = field(init=False)
    #: Processes killed by :meth:`kill_after` so far, in order.
    killed: list[int] = field(default_factory=list)
    #: The armed kill: (pid, accepted messages still to go), else None.
    _kill: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        self.arrived = threading.Condition(self.lock)

    def kill_after(self, pid: int, messages: int = 1) -> None:
        """SIGKILL *pid* right after answering ``250`` to the *messages*-th next message.

        The crash point no try/except can see: the server has taken the letter
        (and delivered it), its ``250`` is on the wire, and the sender may not
        have recorded it yet. Fires once.
        """
        if messages < 1:
            raise ValueError("messages must be at least 1")
        with self.lock:
            self._kill = (pid, messages)

    async def handle_DATA(self, _server: Any, _session: Session, envelope: Envelope) -> str:  # noqa: N802
        """Accept (and relay) one message, or fail as configured."""
        if self.fail_with:
            return self.fail_with
        data = envelope.original_content or envelope.content or b""
        if isinstance(data, str):
            data = data.encode("utf-8")
        recipients = tuple(str(r) for r in envelope.rcpt_tos)
        local = [r for r in recipients if r.rsplit("@", 1)[-1].lower() in self.local_domains]
        if local and self.lmtp is not None:
            try:
                with smtplib.LMTP(self.lmtp[0], self.lmtp[1], timeout=30) as lmtp:
                    lmtp.sendmail(str(envelope.mail_from), local, data)
            except smtplib.SMTPRecipientsRefused:
                return "550 5.1.1 unknown local recipient"
            except (OSError, smtplib.SMTPException):
                return "451 4.4.1 local delivery failed, try again later"
        with self.arrived:
            self.messages.append(ReceivedMessage(str(envelope.mail_from), recipients, bytes(data)))
            self.arrived.notify_all()
            victim = self._count_down()
        if victim is not None:
            # aiosmtpd writes the returned reply to the socket before its task next
            # yields to the loop, so this callback runs after the 250 has been sent.
            asyncio.get_running_loop().call_soon(_kill, victim)
        return "250 2.0.0 OK"

    def _count_down(self) -> int | None:
        """Count an accepted message against the armed kill; the pid when it is due."""
        if self._kill is None:
            return None
        pid, left = self._kill
        if left > 1:
            self._kill = (pid, left - 1)
            return None
        self._kill = None
        self.killed.append(pid)
        return pid

    def wait_for(self, count: int, timeout: float = 10.0) -> list[ReceivedMessage]:
        """Block until at least *count* messages were accepted; return them all."""
        with self.arrived:
            self.arrived.wait_for(lambda: len(self.messages) >= count, timeout=timeout)
            return list(self.messages)


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # it died on its own meanwhile
        os.kill(pid, signal.SIGKILL)


class _CountingController(Controller):
    """A controller that counts the connections it serves (one server object each)."""

    connections = 0

    def factory(self) -> SMTP:
        """Count, then make the usual per-connection server (as Controller.factory does)."""
        self.connections += 1
        return SMTP(self.handler, **self.SMTP_kwargs)


class SmtpServer:
    """A running aiosmtpd server on a free loopback port."""

    def __init__(
        self,
        handler: RecordingRelayHandler,
        port: int | None = None,
        tls: str = "none",
        cert_file: Path | None = None,
        key_file: Path | None = None,
        users: dict[str, str] | None = None,
        idle_timeout: float | None = None,
    ) -> None:
        if tls not in {"none", "starttls", "implicit"}:
            raise ValueError(f"unknown tls mode {tls!r}")
        self.handler = handler
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.tls = tls
        self.users = dict(users or {})
        context: ssl.SSLContext | None = None
        if tls != "none":
            if cert_file is None or key_file is None:
                raise ValueError("TLS needs cert_file and key_file")
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(cert_file, key_file)
        kwargs: dict[str, Any] = {}
        if tls == "starttls":
            kwargs.update(tls_context=context, require_starttls=True)
        elif tls == "implicit":
            kwargs.update(ssl_context=context)
        if self.users:
            kwargs.update(authenticator=self._authenticate, auth_required=True)
        kwargs.setdefault("auth_require_tls", tls != "none")
        kwargs.setdefault("enable_SMTPUTF8", True)  # as real MTAs do: RFC 6531 addresses
        if idle_timeout is not None:
            kwargs.update(timeout=idle_timeout)  # the server drops a client idle this long
        self._controller = _CountingController(
            handler, hostname=self.host, port=self.port, **kwargs
        )

    @property
    def connections(self) -> int:
        """Client connections accepted since :meth:`start` returned."""
        return self._controller.connections

    @property
    def messages(self) -> list[ReceivedMessage]:
        """Every message accepted so far."""
        return self.handler.messages

    def _authenticate(
        self, _server: Any, _session: Session, _envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        if mechanism not in {"LOGIN", "PLAIN"} or not isinstance(data, LoginPassword):
            return AuthResult(success=False, handled=False)
        user = data.login.decode()
        ok = self.users.get(user) == data.password.decode()
        return AuthResult(success=ok, handled=False)

    def start(self) -> SmtpServer:
        """Start serving (returns self)."""
        # aiosmtpd's readiness probe wraps itself in TLS when the server has an
        # ssl_context (implicit TLS); skipping it makes start() time out.
        self._controller.start()
        self._controller.connections = 0  # not the readiness probe of start()
        return self

    def stop(self) -> None:
        """Stop serving; the port is released."""
        self._controller.stop()


def start_smtp_server(
    local_domains: set[str] | frozenset[str],
    lmtp: tuple[str, int] | None,
    **kwargs: Any,
) -> SmtpServer:
    """Start a recording SMTP server relaying *local_domains* to the LMTP address."""
    handler = RecordingRelayHandler(
        local_domains=frozenset(d.lower() for d in local_domains), lmtp=lmtp
    )
    return SmtpServer(handler, **kwargs).start()
