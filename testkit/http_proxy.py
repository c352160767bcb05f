"""A recording HTTP forward proxy on loopback, for tests of downloads through a proxy.

It serves ``GET http://host:port/path`` (absolute URI, forwarded on a new
connection) and ``CONNECT host:port`` (a tunnel, for HTTPS), and records each
request line. ``aliases`` maps host names to addresses only the proxy knows,
e.g. ``{"crl.invalid": "127.0.0.1"}``: a URL with such a host can be reached
through the proxy and not without it. With ``credentials`` it asks for Basic
proxy authentication (407) like a corporate proxy.
"""

from __future__ import annotations

import base64
import contextlib
import socket
import threading
from dataclasses import dataclass, field
from urllib.parse import urlsplit

_HOP_BY_HOP = {"connection", "keep-alive", "proxy-authorization", "proxy-connection", "te"}


@dataclass(frozen=True)
class ProxiedRequest:
    """One request the proxy saw."""

    method: str
    #: The absolute URI of a GET, ``host:port`` of a CONNECT.
    target: str
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def line(self) -> str:
        """``METHOD target``, as tests compare it."""
        return f"{self.method} {self.target}"


class RecordingProxy:
    """A threading forward proxy on ``127.0.0.1``; :attr:`requests` lists what it was asked."""

    def __init__(
        self,
        aliases: dict[str, str] | None = None,
        credentials: tuple[str, str] | None = None,
    ) -> None:
        self.aliases = dict(aliases or {})
        self.credentials = credentials
        self.requests: list[ProxiedRequest] = []
        self._lock = threading.Lock()
        self._open: list[socket.socket] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        threading.Thread(target=self._accept, name="test-proxy", daemon=True).start()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``: the value for ``http_proxy`` or ``[crl] proxy``."""
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    @property
    def lines(self) -> list[str]:
        """The request lines seen so far (``GET http://...``, ``CONNECT host:port``)."""
        with self._lock:
            return [request.line for request in self.requests]

    def stop(self) -> None:
        """Close the listener and every connection."""
        self._listener.close()
        with self._lock:
            for sock in self._open:
                with contextlib.suppress(OSError):
                    sock.close()

    # ------------------------------------------------------------------ serving

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed by stop()
            self._track(client)
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _track(self, sock: socket.socket) -> None:
        with self._lock:
            self._open.append(sock)

    def _serve(self, client: socket.socket) -> None:
        with contextlib.suppress(OSError), client:
            client.settimeout(10)
            head = b""
            while b"\r\n\r\n" not in head:
                data = client.recv(4096)
                if not data or len(head) > 65536:
                    return
                head += data
            head, _, rest = head.partition(b"\r\n\r\n")
            first, *header_lines = head.decode("latin-1").split("\r\n")
            method, target, _version = first.split(" ", 2)
            headers = dict(line.split(": ", 1) for line in header_lines if ": " in line)
            with self._lock:
                self.requests.append(ProxiedRequest(method, target, headers))
            if not self._authorised(headers):
                client.sendall(
                    b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                    b'Proxy-Authenticate: Basic realm="test"\r\nContent-Length: 0\r\n'
                    b"Connection: close\r\n\r\n"
                )
                return
            if method == "CONNECT":
                self._tunnel(client, target, rest)
            else:
                self._forward(client, method, target, headers, rest)

    def _authorised(self, headers: dict[str, str]) -> bool:
        if self.credentials is None:
            return True
        token = base64.b64encode(":".join(self.credentials).encode()).decode()
        sent = {k.lower(): v for k, v in headers.items()}.get("proxy-authorization")
        return sent == f"Basic {token}"

    def _upstream(self, host: str, port: int) -> socket.socket:
        upstream = socket.create_connection((self.aliases.get(host, host), port), timeout=10)
        self._track(upstream)
        return upstream

    def _forward(
        self,
        client: socket.socket,
        method: str,
        target: str,
        headers: dict[str, str],
        rest: bytes,
    ) -> None:
        """An absolute-URI request: sent on by origin form, the answer relayed until it ends."""
        parts = urlsplit(target)
        if parts.scheme != "http" or not parts.hostname:
            client.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            return
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        kept = [f"{k}: {v}" for k, v in headers.items() if k.lower() not in _HOP_BY_HOP]
        request = "\r\n".join([f"{method} {path} HTTP/1.1", *kept, "Connection: close", "", ""])
        with self._upstream(parts.hostname, parts.port or 80) as upstream:
            upstream.sendall(request.encode("latin-1") + rest)
            while data := upstream.recv(65536):
                client.sendall(data)

    def _tunnel(self, client: socket.socket, target: str, rest: bytes) -> None:
        """CONNECT: bytes relayed both ways until one side closes."""
        host, _, port = target.rpartition(":")
        try:
            upstream = self._upstream(host, int(port))
        except OSError:
            client.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            return
        with upstream:
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            if rest:
                upstream.sendall(rest)
            upstream.settimeout(None)
            client.settimeout(None)
            back = threading.Thread(target=_pipe, args=(upstream, client), daemon=True)
            back.start()
            _pipe(client, upstream)
            back.join(10)


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    """Copy ``source`` to ``sink`` until ``source`` ends; then end ``sink``'s sending side."""
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            sink.sendall(data)
    with contextlib.suppress(OSError):
        sink.shutdown(socket.SHUT_WR)


__all__ = ["ProxiedRequest", "RecordingProxy"]
