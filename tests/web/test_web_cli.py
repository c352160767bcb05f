"""``mailbot web user ...``, ``mailbot web`` and ``mailbot web serve`` as real processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from mailbot.config import load_config
from mailbot.directory.models import AuditEntry, WebUser
from mailbot.directory.session import database
from testkit.ports import free_port, wait_for_port
from testkit.web import csrf_token
from tests.web.conftest import write_web_config


def mailbot(config: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mailbot", *args, "--config", str(config)],
        input=stdin, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_accounts_are_added_listed_disabled_and_given_a_password_and_audited(
    web_config: Path,
) -> None:
    added = mailbot(web_config, "web", "user", "add", "alice", "--role", "operator",
                    stdin="a long password\n")  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert "a long password" not in added.stdout + added.stderr
    again = mailbot(web_config, "web", "user", "add", "alice", "--role", "admin",
                    stdin="a long password\n")  # fmt: skip
    assert again.returncode == 1
    assert "exists already" in again.stderr
    short = mailbot(web_config, "web", "user", "add", "bob", "--role", "viewer", stdin="short\n")
    assert short.returncode == 1
    assert "at least 10 characters" in short.stderr
    listed = mailbot(web_config, "web", "user", "list", "--format", "csv")
    assert listed.stdout.splitlines()[1].startswith("alice,operator,True,")
    config = load_config(web_config)
    with database(config) as sessions, sessions() as session:
        user = session.scalar(select(WebUser).where(WebUser.name == "alice"))
        assert user is not None
        old_hash = user.password_hash
    assert old_hash.startswith("$argon2id$")
    assert mailbot(web_config, "web", "user", "passwd", "alice",
                   stdin="another long password\n").returncode == 0  # fmt: skip
    assert mailbot(web_config, "web", "user", "disable", "alice").returncode == 0
    with database(config) as sessions, sessions() as session:
        user = session.scalar(select(WebUser).where(WebUser.name == "alice"))
        assert user is not None
        assert user.password_hash != old_hash
        assert not user.active
        actions = [(e.action, e.target) for e in session.scalars(select(AuditEntry))]
    assert actions == [
        ("web_user.add", "web_user:alice"),
        ("web_user.passwd", "web_user:alice"),
        ("web_user.disable", "web_user:alice"),
    ]
    missing = mailbot(web_config, "web", "user", "disable", "nobody")
    assert missing.returncode == 1
    assert "no web user 'nobody'" in missing.stderr


@pytest.mark.parametrize("command", [("web",), ("web", "serve")], ids=["web", "web-serve"])
def test_web_serve_serves_the_console_until_sigterm(
    web_config: Path, tmp_path: Path, database_url: str, command: tuple[str, ...]
) -> None:
    # ``mailbot web`` alone is the command systemd runs; ``web serve`` stays.
    port = free_port()
    config = write_web_config(tmp_path, database_url, f'listen = "127.0.0.1:{port}"\n')
    assert mailbot(config, "web", "user", "add", "alice", "--role", "viewer",
                   stdin="a long password\n").returncode == 0  # fmt: skip
    process = subprocess.Popen(
        [sys.executable, "-m", "mailbot", *command, "--config", str(config)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(os.environ),
    )  # fmt: skip
    try:
        wait_for_port("127.0.0.1", port, timeout=30, process=process)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            form = client.get("/login")
            assert form.status_code == 200
            response = client.post("/login", data={
                "name": "alice", "password": "a long password", "csrf_token": csrf_token(form.text),
            })  # fmt: skip
            assert response.status_code == 303
            assert client.get("/journal").status_code == 200
        # The signing key was created, private.
        key = tmp_path / "state" / "web-secret.key"
        assert key.stat().st_mode & 0o077 == 0
    finally:
        process.send_signal(signal.SIGTERM)
        # uvicorn shuts down gracefully, then re-raises the signal: systemd counts an
        # end by SIGTERM as a clean stop.
        assert process.wait(30) in (0, -signal.SIGTERM)
        assert process.stderr is not None
        assert b"Traceback" not in process.stderr.read()
