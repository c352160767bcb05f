"""A private Dovecot for the IMAP client tests, with a fresh user (empty mailbox) per test.

The fixtures are imported by ``tests/mail/conftest.py``; the tests import the helpers.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mailbot.config.schema import ImapConfig
from testkit.dovecot import DovecotServer, dovecot_available

#: Enough users that no test shares a mailbox with another.
USERS = {f"box{i}": f"box{i}-pw" for i in range(1, 61)}
_next_user = itertools.count(1)


@pytest.fixture(scope="package")
def imap_server() -> Iterator[DovecotServer]:
    """One Dovecot for all of tests/mail (the session one's users are shared with others)."""
    if not dovecot_available():
        pytest.skip("dovecot is not installed")
    server = DovecotServer.start(USERS)
    yield server
    server.remove()


@pytest.fixture
def user(imap_server: DovecotServer) -> str:
    """A user nobody has used yet: an empty INBOX and the default folders."""
    name = f"box{next(_next_user)}"
    assert name in USERS, "the user pool is exhausted: raise USERS"
    return name


def make_config(server: DovecotServer, user: str, **overrides: Any) -> ImapConfig:
    """IMAPS with the server's CA and short deadlines; *overrides* change any field."""
    values: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": server.imaps_port,
        "tls": "implicit",
        "ca_file": server.ca_file,
        "user": user,
        "command_timeout_seconds": 5,
        "idle_seconds": 60,
        "poll_seconds": 1,
    }
    values.update(overrides)
    return ImapConfig(**values)


def letter(number: int, subject: str = "Проверка", body: str = "") -> bytes:
    """A small CRLF letter with 8-bit UTF-8 text (IMAP stores and returns it verbatim)."""
    text = (
        f"From: sender@example.org\r\n"
        f"To: reestrin@example.test\r\n"
        f"Subject: {subject} {number}\r\n"
        f"Message-ID: <{number}.{time.time_ns()}@example.org>\r\n"
        f"MIME-Version: 1.0\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\n"
        f"Content-Transfer-Encoding: 8bit\r\n"
        f"\r\n"
        f"Письмо номер {number}.\r\n{body}"
    )
    return text.encode()


def write_maildir(server: DovecotServer, user: str, letters: list[bytes]) -> None:
    """Drop letters straight into the user's Maildir ``new/`` (much faster than APPEND).

    Dovecot creates the Maildir at the first SELECT, so select before calling this.
    The files belong to ``nobody`` like the ones Dovecot writes.
    """
    import pwd

    nobody = pwd.getpwnam("nobody")
    new = Path(server.directory, "mail", user, "Maildir", "new")
    assert new.is_dir(), "SELECT once before writing into the Maildir"
    stamp = int(time.time())
    for index, raw in enumerate(letters):
        # Maildir stores LF line ends; Dovecot sends CRLF over IMAP.
        path = new / f"{stamp}.M{index}P{os.getpid()}.mailbot-test"
        path.write_bytes(raw.replace(b"\r\n", b"\n"))
        os.chown(path, nobody.pw_uid, nobody.pw_gid)
