"""The daemon's metrics, defined in one place, and the HTTP endpoint serving them.

The daemon updates :data:`METRICS`::

    METRICS.up.set(1)
    METRICS.letters.inc(outcome="success")
    METRICS.reply_latency.observe(seconds)
    METRICS.outbox_backlog.set(pending)
    METRICS.crl_age.mark(crl.this_update, ca="Сертум-Про")
    METRICS.imap_connected.set(1)

and, when ``[metrics] enabled = true``, runs :func:`start_metrics_server`,
which answers ``GET /metrics`` on the configured loopback address.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import time
from collections.abc import Iterator
from datetime import datetime
from types import TracebackType

from mailbot.config.schema import MetricsConfig
from mailbot.daemon.exposition import (
    CONTENT_TYPE,
    Counter,
    Gauge,
    Histogram,
    LabelKey,
    Registry,
)
from mailbot.log import get_logger
from mailbot.regulation.decision import Outcome

log = get_logger(__name__)

#: Upper bounds (seconds) from a letter's arrival to its reply leaving the outbox:
#: seconds normally; minutes with a slow SMTP relay; hours for CRL-deferred letters.
REPLY_LATENCY_BUCKETS = (1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600, 24 * 3600)


class AgeGauge(Gauge):
    """A gauge whose value is the number of seconds since a remembered moment.

    The age is computed at scrape time, so it keeps growing between updates,
    which is exactly what an alert on a stale CRL needs.
    """

    def mark(self, moment: datetime | float, **labels: str) -> None:
        """Remember *moment* (an aware datetime or a Unix time) for these labels."""
        stamp = moment.timestamp() if isinstance(moment, datetime) else float(moment)
        self.set(stamp, **labels)

    def samples(self) -> Iterator[tuple[str, LabelKey, list[tuple[str, str]], float]]:
        now = time.time()
        for name, key, extra, stamp in super().samples():
            yield name, key, extra, max(now - stamp, 0.0)


class MailbotMetrics:
    """Every metric mailbot exports; one instance, :data:`METRICS`, per process."""

    def __init__(self) -> None:
        self.registry = Registry()
        register = self.registry.register
        self.up = register(Gauge("mailbot_up", "1 while the mailbot daemon is running."))
        self.letters = register(
            Counter(
                "mailbot_letters_total",
                "Letters processed, by outcome (reply template key, no_reply, deferred, ...).",
                labels=("outcome",),
            )
        )
        for outcome in Outcome:
            self.letters.initialise(outcome=outcome.value)
        self.reply_latency = register(
            Histogram(
                "mailbot_letter_reply_latency_seconds",
                "Seconds from a letter's arrival to its reply being accepted by SMTP.",
                buckets=REPLY_LATENCY_BUCKETS,
            )
        )
        self.outbox_backlog = register(
            Gauge("mailbot_outbox_backlog", "Replies and alerts waiting in the outbox.")
        )
        self.crl_age = register(
            AgeGauge(
                "mailbot_crl_age_seconds",
                "Seconds since thisUpdate of the current CRL of each registered CA.",
                labels=("ca",),
            )
        )
        self.imap_connected = register(
            Gauge("mailbot_imap_connected", "1 while the IMAP connection is up, else 0.")
        )

    def render(self) -> str:
        """The exposition text of every metric."""
        return self.registry.render()


#: The process's metrics. The daemon updates them; the endpoint serves them.
METRICS = MailbotMetrics()

_REQUEST_TIMEOUT = 5.0
_MAX_REQUEST_BYTES = 8192


class MetricsServer:
    """A minimal HTTP/1.1 server: ``GET``/``HEAD /metrics``, 404 elsewhere.

    One request per connection; no keep-alive, no TLS, no authentication: the
    address is loopback only (checked here too, not just in the configuration).
    """

    def __init__(self, host: str, port: int, registry: Registry | MailbotMetrics) -> None:
        if not ipaddress.ip_address(host).is_loopback:
            raise ValueError(f"metrics: refusing to listen on non-loopback address {host}")
        self.host = host
        self.port = port
        self._registry = registry
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        """Bind and start serving (port 0 picks a free port; see :attr:`addresses`)."""
        self._server = await asyncio.start_server(
            self._handle, self.host, self.port, limit=_MAX_REQUEST_BYTES
        )
        log.info("metrics_listening", addresses=[f"{h}:{p}" for h, p in self.addresses])

    @property
    def addresses(self) -> list[tuple[str, int]]:
        """The ``(host, port)`` pairs actually bound."""
        if self._server is None:
            return []
        return [
            (str(sock.getsockname()[0]), int(sock.getsockname()[1]))
            for sock in self._server.sockets
        ]

    async def close(self) -> None:
        """Stop listening and wait for open connections to finish."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> MetricsServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), _REQUEST_TIMEOUT)
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
                return  # a scanner or a half-open connection: nothing worth answering
            status, headers, body = self._respond(head)
            writer.write(_response(status, headers, body))
            await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    def _respond(self, head: bytes) -> tuple[str, dict[str, str], bytes]:
        parts = head.split(b"\r\n", 1)[0].decode("latin-1").split()
        if len(parts) != 3 or not parts[2].startswith("HTTP/"):
            return "400 Bad Request", {}, b"bad request\n"
        method, target, _version = parts
        path = target.split("?", 1)[0]
        if path != "/metrics":
            return "404 Not Found", {}, b"not found; metrics are at /metrics\n"
        if method not in ("GET", "HEAD"):
            return "405 Method Not Allowed", {"Allow": "GET, HEAD"}, b"method not allowed\n"
        body = self._registry.render().encode("utf-8")
        headers = {"Content-Type": CONTENT_TYPE}
        if method == "HEAD":
            return "200 OK", {**headers, "Content-Length": str(len(body))}, b""
        return "200 OK", headers, body


def _response(status: str, headers: dict[str, str], body: bytes) -> bytes:
    fields = {"Content-Type": "text/plain; charset=utf-8", "Content-Length": str(len(body))}
    fields.update(headers)
    fields["Connection"] = "close"
    lines = [f"HTTP/1.1 {status}", *(f"{k}: {v}" for k, v in fields.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


async def start_metrics_server(
    config: MetricsConfig, metrics: MailbotMetrics = METRICS
) -> MetricsServer | None:
    """Serve *metrics* where ``[metrics] listen`` says; ``None`` when disabled."""
    if not config.enabled:
        return None
    host, port = config.address
    server = MetricsServer(host, port, metrics)
    await server.start()
    return server
