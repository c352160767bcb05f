"""A CRL distribution point on loopback that fails until told to serve.

Tests of deferred letters start it answering 404 (or closing the port), then
hand it a CRL: ``server.crl = data``. It counts the requests it saw.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class CrlServer:
    """``http://127.0.0.1:<port>/ca.crl``: 404 while :attr:`crl` is None, else the CRL."""

    def __init__(self) -> None:
        self.crl: bytes | None = None
        self.requests = 0
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with outer._lock:
                    outer.requests += 1
                    body = outer.crl
                if body is None:
                    self.send_error(404, "Not Found")
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/pkix-crl")
                self.send_header("Content-Length", str(len(body)))
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
