"""Every command on a database that was never migrated ends the same way: the exit code
the table in :mod:`mailbot.cli.exit_codes` gives (78, as for any configuration error:
restarting will not help, someone must run ``mailbot db upgrade``) and one line on stderr.

Real processes; before, the letter, reminders, process, directory and quarantine
commands turned the refusal into a plain failure (exit 1) themselves.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mailbot.cli.exit_codes import EX_CONFIG, EXIT_CODES_HELP
from tests.cli.processes import assert_one_line, mailbot

COMMANDS = {
    "letter-list": ["letter", "list"],
    "letter-retry": ["letter", "retry", "1"],
    "reminders": ["reminders", "run", "--dry-run"],
    "process": ["process", "{letter}"],
    "org-list": ["org", "list"],
    "subscriber-list": ["subscriber", "list"],
    "quarantine-list": ["quarantine", "list"],
    "journal": ["journal"],
}


@pytest.fixture
def unmigrated_config(tmp_path: Path) -> Path:
    """A configuration on an SQLite file with no schema at all."""
    path = tmp_path / "config.toml"
    path.write_text(
        f'[general]\nstate_dir = "{tmp_path / "state"}"\n'
        '[imap]\npassword_env = "UNUSED"\n'
        '[logging]\nformat = "json"\nlevel = "warning"\n',
        encoding="utf-8",
    )
    return path


@pytest.mark.parametrize("command", list(COMMANDS.values()), ids=list(COMMANDS))
def test_an_unmigrated_database_is_a_configuration_error(
    unmigrated_config: Path, tmp_path: Path, command: list[str]
) -> None:
    letter = tmp_path / "letter.eml"
    letter.write_bytes(b"From: a@example.test\r\nSubject: ADD_CERT\r\n\r\nhello\r\n")
    args = [part.format(letter=letter) for part in command]
    result = mailbot(*args, "--config", str(unmigrated_config))
    line = assert_one_line(result, EX_CONFIG, "run `mailbot db upgrade`")
    assert result.stderr.strip() == line  # nothing else: no log line, no traceback


def test_the_code_is_the_documented_one() -> None:
    assert f"{EX_CONFIG}  configuration error" in EXIT_CODES_HELP
    assert "database schema not migrated" in EXIT_CODES_HELP
