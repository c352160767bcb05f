"""The command line: help on every command, doctor, clean errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mailbot.cli.main import build_parser, main


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mailbot", *args], capture_output=True, text=True, timeout=60
    )


def test_help_lists_commands() -> None:
    result = run("--help")
    assert result.returncode == 0
    assert "check-config" in result.stdout
    assert "doctor" in result.stdout


def test_every_command_has_help() -> None:
    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.dest == "command")
    for name, sub in subparsers.choices.items():  # type: ignore[union-attr]
        assert sub.description or sub.format_help(), name
        with pytest.raises(SystemExit) as info:
            main([name, "--help"])
        assert info.value.code == 0


def test_no_command_prints_help_and_fails(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "usage: mailbot" in capsys.readouterr().out


def test_doctor_reports_each_check(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(
        f'[general]\nstate_dir = "{tmp_path}"\n[imap]\npassword_env = "X"\n', encoding="utf-8"
    )
    result = run("doctor", "--config", str(config))
    assert "[ok] python" in result.stdout
    # Nothing is set up here: no schema, no IMAP server on 127.0.0.1:993.
    assert "[FAIL] database: sqlite:///" in result.stdout
    assert "schema missing" in result.stdout
    assert "[FAIL] imap: 127.0.0.1:993" in result.stdout
    assert result.returncode == 1, result.stdout + result.stderr


def test_doctor_fails_on_unreachable_database(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(
        '[imap]\npassword_env = "X"\n[database]\nurl = "postgresql://nobody@127.0.0.1:1/none"\n',
        encoding="utf-8",
    )
    result = run("doctor", "--config", str(config))
    assert result.returncode == 1
    assert "[FAIL] database: postgresql://nobody@127.0.0.1:1/none: cannot connect" in result.stdout
    assert "Traceback" not in result.stderr


def test_bad_config_gives_one_clean_message(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("[imap]\nport = 'x'\n", encoding="utf-8")
    result = run("doctor", "--config", str(config))
    assert result.returncode == 78  # EX_CONFIG
    assert "imap.port: must be an integer" in result.stderr
    assert "Traceback" not in result.stderr
