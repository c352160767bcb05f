"""One deadline for a whole HTTP exchange over stdlib ``http.client``.

``http.client`` only has a timeout per socket operation: a server that sends
one byte a second (status line, headers or body) never trips it, and each
address of a host gets the whole timeout to connect. Here one
:class:`Deadline` (a point in monotonic time) bounds everything: name
resolution, connecting (all addresses together), the TLS handshake, sending
the request, and every single read, whose socket timeout is set to the time
left just before the call.

The mechanism is independent of ``http.client``: another transport (a proxy
tunnel, httpx's pluggable network backend) bounds itself the same way by
asking :meth:`Deadline.left` before each socket operation.
"""

from __future__ import annotations

import functools
import http.client
import io
import socket
import ssl
import threading
import time
from typing import Any

_AddrInfo = list[tuple[Any, Any, int, str, Any]]


class Deadline:
    """A point in ``time.monotonic()`` time; movable (a caller may grant more time)."""

    def __init__(self, at: float) -> None:
        self.at = at

    def left(self, doing: str) -> float:
        """Seconds left (> 0); ``TimeoutError("timed out <doing>")`` once past the deadline."""
        left = self.at - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"timed out {doing}")
        return left


def resolve(host: str, port: int, deadline: Deadline) -> _AddrInfo:
    """``getaddrinfo`` waited for no longer than the deadline.

    The C resolver cannot be interrupted or given a timeout; it runs in a
    daemon thread that ends by the resolver's own timeouts (resolv.conf), and
    an answer arriving after the deadline is dropped.
    """
    answer: list[_AddrInfo | Exception] = []

    def look_up() -> None:
        try:
            answer.append(socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM))
        except Exception as exc:  # handed to the waiting thread
            answer.append(exc)

    thread = threading.Thread(target=look_up, name="crl-resolve", daemon=True)
    thread.start()
    thread.join(deadline.left(f"resolving {host}"))
    if not answer:
        raise TimeoutError(f"timed out resolving {host}")
    if isinstance(answer[0], Exception):
        raise answer[0]
    return answer[0]


def open_socket(deadline: Deadline, address: tuple[str, int], *_ignored: object) -> socket.socket:
    """A connected TCP socket, the addresses tried in turn, all within the deadline.

    Signature of ``socket.create_connection`` (its timeout and source address
    are ignored), so ``http.client`` can call it. The socket's timeout is the
    time left, which bounds a TLS handshake that follows.
    """
    host, port = address
    error: OSError | None = None
    for family, kind, proto, _name, sockaddr in resolve(host, port, deadline):
        sock = socket.socket(family, kind, proto)
        try:
            sock.settimeout(deadline.left(f"connecting to {host}"))
            sock.connect(sockaddr)
            sock.settimeout(deadline.left(f"connecting to {host}"))
            return sock
        except TimeoutError:
            sock.close()
            raise  # the whole budget went to this address: none left for the next
        except OSError as exc:
            sock.close()
            error = exc
    raise error or OSError(f"no address for {host}")


class _DeadlineReader(io.RawIOBase):
    """The socket's byte stream; each read may wait only for the time left."""

    def __init__(self, sock: socket.socket, deadline: Deadline) -> None:
        super().__init__()
        self._sock = sock
        # A makefile() reference, so that http.client closing the connection
        # early (Connection: close) keeps the socket open until the body is read.
        self._raw = sock.makefile("rb", buffering=0)
        self._deadline = deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int | None:
        self._sock.settimeout(self._deadline.left("waiting for data"))
        return self._raw.readinto(buffer)

    def close(self) -> None:
        self._raw.close()
        super().close()


class _DeadlineResponse(http.client.HTTPResponse):
    def __init__(
        self,
        sock: socket.socket,
        debuglevel: int = 0,
        method: str | None = None,
        url: str | None = None,
        *,
        deadline: Deadline,
    ) -> None:
        super().__init__(sock, debuglevel, method, url)
        self.fp.close()  # the plain socket file made by HTTPResponse; ours replaces it
        self.fp = io.BufferedReader(_DeadlineReader(sock, deadline))


class _Bounded:
    """Mixin for an ``http.client`` connection class: every step within ``deadline``."""

    sock: Any
    response_class: Any
    _create_connection: Any

    def _bound(self, deadline: Deadline) -> None:
        self._deadline = deadline
        self._create_connection = functools.partial(open_socket, deadline)
        self.response_class = functools.partial(_DeadlineResponse, deadline=deadline)

    def connect(self) -> None:
        super().connect()  # type: ignore[misc]
        # After a TLS handshake: what is left is the bound for sending the request.
        self.sock.settimeout(self._deadline.left("connecting"))


class _HTTPConnection(_Bounded, http.client.HTTPConnection):
    pass


class _HTTPSConnection(_Bounded, http.client.HTTPSConnection):
    pass


def connection(
    scheme: str,
    host: str,
    port: int | None,
    deadline: Deadline,
    ssl_context: ssl.SSLContext,
) -> http.client.HTTPConnection:
    """An unconnected ``http.client`` connection whose every step ends by ``deadline``.

    Moving ``deadline.at`` later (or earlier) applies to the reads still to come.
    """
    conn: _HTTPConnection | _HTTPSConnection
    if scheme == "https":
        conn = _HTTPSConnection(host, port, context=ssl_context)
    else:
        conn = _HTTPConnection(host, port)
    conn._bound(deadline)
    return conn


__all__ = ["Deadline", "connection", "open_socket", "resolve"]
