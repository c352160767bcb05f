"""Files mailbot writes are private whatever the umask: personal data is never world-readable."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailbot.files import make_private_dirs, write_atomically


@pytest.fixture
def open_umask() -> Iterator[None]:
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_written_files_and_created_folders_are_private_under_umask_0(
    tmp_path: Path, open_umask: None
) -> None:
    target = tmp_path / "state" / "archive" / "ab" / "letter.eml"
    write_atomically(target, b"From: someone\r\n\r\nSNILS 112-233-445 95")
    assert mode(target) == 0o640
    for folder in (tmp_path / "state", tmp_path / "state" / "archive", target.parent):
        assert mode(folder) == 0o750, folder


def test_a_stricter_umask_stays_stricter(tmp_path: Path) -> None:
    previous = os.umask(0o077)
    try:
        make_private_dirs(tmp_path / "a" / "b")
    finally:
        os.umask(previous)
    assert mode(tmp_path / "a") == 0o700
    assert mode(tmp_path / "a" / "b") == 0o700


def test_the_program_tightens_an_inherited_umask(tmp_path: Path) -> None:
    """`mailbot` started under umask 022 creates its SQLite database unreadable by others."""
    config = tmp_path / "config.toml"
    config.write_text(
        f'[general]\nstate_dir = "{tmp_path / "state"}"\n'
        f'[database]\nurl = "sqlite:///{tmp_path / "state" / "db" / "mailbot.sqlite3"}"\n'
        '[imap]\npassword_env = "UNUSED_IMAP_PASSWORD"\n'
    )
    subprocess.run(
        [sys.executable, "-m", "mailbot", "db", "upgrade", "--config", str(config)],
        check=True,
        capture_output=True,
        preexec_fn=lambda: os.umask(0o022),
        cwd=tmp_path,
    )
    created = [*(tmp_path / "state").rglob("*"), tmp_path / "state"]
    assert any(p.name == "mailbot.sqlite3" for p in created)
    for path in created:
        assert mode(path) & 0o007 == 0, f"{path} is {oct(mode(path))}"
