"""``mailbot doctor``'s one line about the metrics endpoint."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from mailbot.config import Config
from mailbot.config.schema import MetricsConfig
from mailbot.daemon.metrics import MailbotMetrics
from mailbot.daemon.metrics_server import MetricsServer
from mailbot.doctor import CHECKS
from mailbot.doctor.local_checks import check_metrics
from testkit.ports import free_port
from tests.logs import _captured_logs  # noqa: F401  (autouse, as in its old folder)


def config_with(enabled: bool, port: int = 9468) -> Config:
    return Config(metrics=MetricsConfig(enabled=enabled, listen=f"127.0.0.1:{port}"))


def test_is_registered() -> None:
    assert ("metrics", check_metrics) in CHECKS


def test_disabled() -> None:
    finding = check_metrics(config_with(False))
    assert finding.ok
    assert finding.detail == "disabled ([metrics] enabled = false)"


def test_enabled_but_no_daemon_is_fine() -> None:
    port = free_port()
    finding = check_metrics(config_with(True, port))
    assert finding.ok
    assert finding.detail == f"http://127.0.0.1:{port}/metrics: not answering (daemon not running?)"


async def test_running_daemon_answers() -> None:
    async with MetricsServer("127.0.0.1", 0, MailbotMetrics()) as server:
        port = server.addresses[0][1]
        finding = await asyncio.to_thread(check_metrics, config_with(True, port))
    assert finding.ok
    assert finding.detail.endswith(": answering")


@pytest.fixture
def foreign_server() -> Iterator[int]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"somebody else's exporter\n")

        def log_message(self, *_args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_port_taken_by_another_program_fails(foreign_server: int) -> None:
    finding = check_metrics(config_with(True, foreign_server))
    assert not finding.ok
    assert "another program answers (HTTP 200)" in finding.detail
