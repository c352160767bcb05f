"""sd_notify against a real AF_UNIX datagram socket, as systemd would bind it."""

from __future__ import annotations

import os
import secrets
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog.testing

from mailbot.daemon import systemd
from tests.logs import _captured_logs  # noqa: F401  (autouse, as in its old folder)


@pytest.fixture
def path_socket(monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    """A datagram socket bound to a file; NOTIFY_SOCKET points at it."""
    # sun_path holds 108 bytes: pytest's tmp_path can be longer than that.
    with tempfile.TemporaryDirectory(prefix="sdn-") as folder:
        path = str(Path(folder) / "notify")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(path)
        sock.settimeout(2)
        monkeypatch.setenv("NOTIFY_SOCKET", path)
        yield sock
        sock.close()


@pytest.fixture
def abstract_socket(monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    """A datagram socket in the abstract namespace; NOTIFY_SOCKET is ``@name``."""
    name = f"mailbot-test-{secrets.token_hex(8)}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(2)
    monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
    yield sock
    sock.close()


def receive(sock: socket.socket) -> list[str]:
    return sock.recv(4096).decode("utf-8").split("\n")


def test_ready_to_a_path_socket(path_socket: socket.socket) -> None:
    assert systemd.notify_ready() is True
    assert receive(path_socket) == ["READY=1"]


def test_ready_with_status_is_one_datagram(path_socket: socket.socket) -> None:
    assert systemd.notify_ready("watching INBOX")
    assert receive(path_socket) == ["READY=1", "STATUS=watching INBOX"]


def test_every_message_to_an_abstract_socket(abstract_socket: socket.socket) -> None:
    assert systemd.notify_status("3 letters in the outbox")
    assert receive(abstract_socket) == ["STATUS=3 letters in the outbox"]
    assert systemd.notify_watchdog()
    assert receive(abstract_socket) == ["WATCHDOG=1"]
    assert systemd.notify_reloading()
    assert receive(abstract_socket) == ["RELOADING=1"]
    assert systemd.notify_stopping()
    assert receive(abstract_socket) == ["STOPPING=1"]


def test_status_cannot_smuggle_another_assignment(path_socket: socket.socket) -> None:
    systemd.notify_status("bad\nREADY=1\r\nMAINPID=1")
    assert receive(path_socket) == ["STATUS=bad READY=1 MAINPID=1"]


def test_cyrillic_status_is_utf8(path_socket: socket.socket) -> None:
    systemd.notify_status("ожидание списка отзыва")
    assert receive(path_socket) == ["STATUS=ожидание списка отзыва"]


@pytest.mark.parametrize("value", [None, "", "relative/path", "@", "vsock:2:1234"])
def test_no_op_without_a_usable_socket(monkeypatch: pytest.MonkeyPatch, value: str | None) -> None:
    if value is None:
        monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    else:
        monkeypatch.setenv("NOTIFY_SOCKET", value)
    assert systemd.notify_ready() is False
    assert systemd.notify_watchdog() is False


def test_a_vanished_socket_is_logged_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", "/nonexistent/mailbot-notify")
    with structlog.testing.capture_logs() as logs:
        assert systemd.notify_stopping() is False
    assert [entry["event"] for entry in logs] == ["sd_notify_failed"]
    assert logs[0]["log_level"] == "warning"


def test_watchdog_interval_is_half_of_watchdog_usec(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "120000000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    assert systemd.watchdog_interval() == 60.0
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert systemd.watchdog_interval() == 60.0


@pytest.mark.parametrize(
    ("usec", "pid"),
    [(None, None), ("0", None), ("abc", None), ("-5", None), ("1000000", "1"), ("1000000", "x")],
)
def test_no_watchdog(monkeypatch: pytest.MonkeyPatch, usec: str | None, pid: str | None) -> None:
    for name, value in (("WATCHDOG_USEC", usec), ("WATCHDOG_PID", pid)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    if pid == "1" and os.getpid() == 1:  # pragma: no cover - tests as PID 1
        pytest.skip("running as PID 1")
    assert systemd.watchdog_interval() is None
