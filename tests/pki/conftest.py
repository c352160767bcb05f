"""Shared fixtures: the test PKI, OpenSSL with the GOST engine, a local HTTP server."""

from __future__ import annotations

import contextlib
import http.server
import os
import shutil
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from testkit import pki
from testkit.crl_server import SlowServer
from tests.logs import _reset_logging  # noqa: F401  (autouse for this folder)

DATA = Path(__file__).parent / "data"

_GOST_CONF = """openssl_conf = openssl_init
[openssl_init]
engines = engine_section
[engine_section]
gost = gost_section
[gost_section]
engine_id = gost
default_algorithms = ALL
"""


def _gost_engine_available() -> bool:
    if shutil.which("openssl") is None:
        return False
    for base in (
        "/usr/lib/x86_64-linux-gnu/engines-3",
        "/usr/lib/aarch64-linux-gnu/engines-3",
        "/usr/lib64/engines-3",
    ):
        if Path(base, "gost.so").exists():
            return True
    return False


GOST_ENGINE = _gost_engine_available()
needs_openssl_gost = pytest.mark.skipif(
    not GOST_ENGINE, reason="openssl with the GOST engine (libengine-gost-openssl) not installed"
)


@dataclass
class OpenSSL:
    """Run ``openssl`` with the GOST engine configured."""

    conf: Path
    workdir: Path

    def run(self, *args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
        env = dict(os.environ, OPENSSL_CONF=str(self.conf))
        return subprocess.run(
            ["openssl", *args],
            capture_output=True,
            text=True,
            env=env,
            check=check,
            cwd=self.workdir,
            timeout=60,
        )

    def file(self, name: str, data: bytes) -> str:
        return pki.write(self.workdir / name, data)


@pytest.fixture
def openssl(tmp_path: Path) -> OpenSSL:
    if not GOST_ENGINE:
        pytest.skip("openssl with the GOST engine (libengine-gost-openssl) not installed")
    conf = tmp_path / "gost.cnf"
    conf.write_text(_GOST_CONF)
    return OpenSSL(conf, tmp_path)


@pytest.fixture(scope="session")
def gost_ca() -> pki.Issued:
    return pki.make_ca()


@dataclass
class Route:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    etag: str | None = None


@dataclass
class CrlServer:
    """A stdlib HTTP server on 127.0.0.1 serving configured routes; records requests."""

    base: str
    routes: dict[str, Route]
    requests: list[tuple[str, dict[str, str]]]

    def url(self, path: str) -> str:
        return self.base + path


@pytest.fixture
def crl_server() -> Iterator[CrlServer]:
    routes: dict[str, Route] = {}
    requests: list[tuple[str, dict[str, str]]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            requests.append((self.path, dict(self.headers)))
            route = routes.get(self.path)
            if route is None:
                self.send_error(404)
                return
            if route.delay:
                time.sleep(route.delay)
            if route.etag is not None and self.headers.get("If-None-Match") == route.etag:
                self.send_response(304)
                self.end_headers()
                return
            self.send_response(route.status)
            for k, v in route.headers.items():
                self.send_header(k, v)
            if route.etag is not None:
                self.send_header("ETag", route.etag)
            self.send_header("Content-Length", str(len(route.body)))
            self.end_headers()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.wfile.write(route.body)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield CrlServer(f"http://127.0.0.1:{server.server_address[1]}", routes, requests)
    finally:
        server.shutdown()
        server.server_close()


Factory = Callable[..., pki.Issued]


@pytest.fixture
def slow() -> Iterator[Callable[..., SlowServer]]:
    """Start servers that answer in timed pieces (stopped afterwards)."""
    servers: list[SlowServer] = []

    def start(
        pieces: list[bytes], pause: float = 1.0, tls: ssl.SSLContext | None = None
    ) -> SlowServer:
        servers.append(SlowServer(pieces, pause, tls))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()
