"""The HTTP endpoint: ``GET``/``HEAD /metrics`` on the configured loopback address.

Kept small and on asyncio rather than prometheus_client's ``start_http_server``:
that one answers every path with the metrics and runs a thread per request;
this one binds exactly ``[metrics] listen``, answers only ``/metrics`` (404
elsewhere, 405 for other methods), and closes with the daemon. The text itself
is prometheus_client's (:meth:`MailbotMetrics.exposition`), built in a thread
because the CRL ages read the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
from types import TracebackType

from mailbot.config.schema import MetricsConfig
from mailbot.daemon.metrics import MailbotMetrics
from mailbot.log import get_logger

log = get_logger(__name__)

#: The Content-Type of what :func:`prometheus_client.generate_latest` writes (the
#: library's ``CONTENT_TYPE_PLAIN_0_0_4``, spelt out: older releases lack the name).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_REQUEST_TIMEOUT = 5.0
_MAX_REQUEST_BYTES = 8192


class MetricsServer:
    """A minimal HTTP/1.1 server: ``GET``/``HEAD /metrics``, 404 elsewhere.

    One request per connection; no keep-alive, no TLS, no authentication: the
    address is loopback only (checked here too, not just in the configuration).
    """

    def __init__(self, host: str, port: int, metrics: MailbotMetrics) -> None:
        if not ipaddress.ip_address(host).is_loopback:
            raise ValueError(f"metrics: refusing to listen on non-loopback address {host}")
        self.host = host
        self.port = port
        self._metrics = metrics
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
            status, headers, body = await self._respond(head)
            writer.write(_response(status, headers, body))
            await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _respond(self, head: bytes) -> tuple[str, dict[str, str], bytes]:
        parts = head.split(b"\r\n", 1)[0].decode("latin-1").split()
        if len(parts) != 3 or not parts[2].startswith("HTTP/"):
            return "400 Bad Request", {}, b"bad request\n"
        method, target, _version = parts
        path = target.split("?", 1)[0]
        if path != "/metrics":
            return "404 Not Found", {}, b"not found; metrics are at /metrics\n"
        if method not in ("GET", "HEAD"):
            return "405 Method Not Allowed", {"Allow": "GET, HEAD"}, b"method not allowed\n"
        # Built off the event loop: the CRL ages read the database and the cache.
        body = await asyncio.to_thread(self._metrics.exposition)
        headers = {"Content-Type": CONTENT_TYPE, "Content-Length": str(len(body))}
        return "200 OK", headers, b"" if method == "HEAD" else body


def _response(status: str, headers: dict[str, str], body: bytes) -> bytes:
    fields = {"Content-Type": "text/plain; charset=utf-8", "Content-Length": str(len(body))}
    fields.update(headers)
    fields["Connection"] = "close"
    lines = [f"HTTP/1.1 {status}", *(f"{k}: {v}" for k, v in fields.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


async def start_metrics_server(
    config: MetricsConfig, metrics: MailbotMetrics
) -> MetricsServer | None:
    """Serve *metrics* where ``[metrics] listen`` says; ``None`` when disabled."""
    if not config.enabled:
        return None
    host, port = config.address
    server = MetricsServer(host, port, metrics)
    await server.start()
    return server
