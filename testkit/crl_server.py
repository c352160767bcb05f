"""CRL distribution points on loopback: one that fails until told to serve, and hostile ones.

Tests of deferred letters start :class:`CrlServer` answering 404 (or closing
the port), then hand it a CRL: ``server.crl = data``. It counts the requests
it saw. :class:`SlowServer` answers in pieces with pauses between them (a byte
a second, or never), :class:`BlackholeServer` never accepts a connection: the
servers a fetch deadline must hold against.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class CrlServer:
    """``http://127.0.0.1:<port>/ca.crl``: 404 while :attr:`crl` is None, else the CRL.

    Any file will do (the list of accredited CAs too). With :attr:`etag` set,
    the answer carries it and a request whose ``If-None-Match`` equals it gets
    304; :attr:`request_headers` keeps every request's headers.
    """

    def __init__(self) -> None:
        self.crl: bytes | None = None
        self.etag: str | None = None
        self.requests = 0
        self.request_headers: list[dict[str, str]] = []
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with outer._lock:
                    outer.requests += 1
                    outer.request_headers.append(dict(self.headers))
                    body, etag = outer.crl, outer.etag
                if body is None:
                    self.send_error(404, "Not Found")
                    return
                if etag is not None and self.headers.get("If-None-Match") == etag:
                    self.send_response(304)
                    self.send_header("ETag", etag)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/pkix-crl")
                self.send_header("Content-Length", str(len(body)))
                if etag is not None:
                    self.send_header("ETag", etag)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return  # keep test output clean

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        """The distribution point to put into certificates."""
        return f"http://127.0.0.1:{self._server.server_address[1]}/ca.crl"

    def stop(self) -> None:
        """Shut the server down."""
        self._server.shutdown()
        self._server.server_close()


def one_byte_at_a_time(data: bytes) -> list[bytes]:
    """``data`` as pieces of one byte, for :class:`SlowServer`."""
    return [data[i : i + 1] for i in range(len(data))]


class SlowServer:
    """Reads a request, then sends ``pieces`` with ``pause`` seconds between them.

    ``SlowServer([])`` accepts connections and never answers. With ``tls`` the
    connection is TLS (the handshake at normal speed). :attr:`connections`
    counts the connections accepted.
    """

    def __init__(
        self, pieces: Sequence[bytes], pause: float = 1.0, tls: ssl.SSLContext | None = None
    ) -> None:
        self.pieces = list(pieces)
        self.pause = pause
        self.connections = 0
        self._tls = tls
        self._stop = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, path: str = "/ca.crl") -> str:
        """The distribution point on this server."""
        scheme = "https" if self._tls is not None else "http"
        return f"{scheme}://127.0.0.1:{self._listener.getsockname()[1]}{path}"

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return  # closed by stop()
            with self._lock:
                self.connections += 1
                self._open.append(sock)
            threading.Thread(target=self._answer, args=(sock,), daemon=True).start()

    def _answer(self, sock: socket.socket) -> None:
        with contextlib.suppress(OSError), contextlib.ExitStack() as closing:
            closing.callback(sock.close)
            sock.settimeout(10)
            if self._tls is not None:
                sock = self._tls.wrap_socket(sock, server_side=True)
                closing.callback(sock.close)
            request = b""
            while b"\r\n\r\n" not in request and len(request) < 65536:
                data = sock.recv(4096)
                if not data:
                    return
                request += data
            for i, piece in enumerate(self.pieces):
                if i and self._stop.wait(self.pause):
                    return
                sock.sendall(piece)
            self._stop.wait()  # keep the connection open, silent, until stop()

    def stop(self) -> None:
        """Close the listener and every connection."""
        self._stop.set()
        self._listener.close()
        with self._lock:
            for sock in self._open:
                sock.close()


class BlackholeServer:
    """A port whose accept queue is full: a connection attempt hangs, as to a firewalled host.

    Linux drops the SYN when the listen backlog is full (``tcp_abort_on_overflow``
    off, the default); the backlog of ``listen(0)`` holds one connection, which
    this server takes itself.
    """

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=0)
        self._filler = socket.create_connection(self._listener.getsockname(), timeout=5)

    def url(self, path: str = "/ca.crl") -> str:
        """The distribution point on this port."""
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}{path}"

    def stop(self) -> None:
        """Close the port."""
        self._filler.close()
        self._listener.close()
