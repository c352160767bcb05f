"""Which configuration a command reads: --config, else $MAILBOT_CONFIG, else
/etc/mailbot/config.toml, else a refusal (exit 78), never a database in the current folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mailbot.cli import common
from mailbot.cli.exit_codes import EX_CONFIG
from mailbot.cli.main import main
from mailbot.config import load_config


def write_config(path: Path, state: Path) -> Path:
    path.write_text(
        f'[general]\nstate_dir = "{state}"\n[imap]\npassword_env = "UNUSED"\n'
        '[logging]\nformat = "console"\nlevel = "warning"\n',
        encoding="utf-8",
    )
    return path


@pytest.fixture
def no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(common.CONFIG_ENV, raising=False)


def test_without_any_configuration_a_command_refuses(tmp_path: Path) -> None:
    """The real program, the real default path: one line, exit 78, nothing written here."""
    if common.DEFAULT_CONFIG.exists():
        pytest.skip(f"{common.DEFAULT_CONFIG} exists on this machine")
    env = {k: v for k, v in os.environ.items() if k != common.CONFIG_ENV}
    for command in (["db", "upgrade"], ["check-config"], ["doctor"]):
        result = subprocess.run(
            [sys.executable, "-m", "mailbot", *command],
            capture_output=True, text=True, timeout=60, cwd=tmp_path, env=env, check=False,
        )  # fmt: skip
        assert result.returncode == EX_CONFIG, (command, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert "--config" in lines[0]
        assert common.CONFIG_ENV in lines[0]
        assert str(common.DEFAULT_CONFIG) in lines[0]
        assert list(tmp_path.iterdir()) == [], "a command without configuration wrote here"


def test_the_default_file_is_read_when_nothing_names_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_env: None,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    default = write_config(tmp_path / "etc-config.toml", tmp_path / "state")
    monkeypatch.setattr(common, "DEFAULT_CONFIG", default)
    monkeypatch.chdir(tmp_path)
    assert main(["check-config"]) == 0
    assert f"{default}: OK" in capsys.readouterr().out
    assert main(["db", "upgrade"]) == 0
    assert (tmp_path / "state" / "mailbot.sqlite3").is_file()


def test_the_environment_comes_before_the_default_and_the_option_before_both(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    default = write_config(tmp_path / "default.toml", tmp_path / "d")
    from_env = write_config(tmp_path / "env.toml", tmp_path / "e")
    option = write_config(tmp_path / "option.toml", tmp_path / "o")
    monkeypatch.setattr(common, "DEFAULT_CONFIG", default)
    monkeypatch.setenv(common.CONFIG_ENV, str(from_env))
    assert main(["check-config"]) == 0
    assert f"{from_env}: OK" in capsys.readouterr().out
    assert main(["check-config", str(option)]) == 0
    assert f"{option}: OK" in capsys.readouterr().out
    assert main(["db", "upgrade"]) == 0
    assert main(["db", "upgrade", "--config", str(option)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == ["e", "o"]


def test_a_named_file_that_is_missing_is_not_replaced_by_the_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(
        common, "DEFAULT_CONFIG", write_config(tmp_path / "default.toml", tmp_path / "d")
    )
    monkeypatch.setenv(common.CONFIG_ENV, str(tmp_path / "missing.toml"))
    assert main(["db", "upgrade"]) == EX_CONFIG
    assert "missing.toml: cannot read the file" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()


def test_check_config_finds_the_rules_and_templates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """What the daemon loads at start is loaded by the ExecStartPre check too."""
    config = write_config(tmp_path / "c.toml", tmp_path / "state")
    with config.open("a", encoding="utf-8") as file:
        file.write(f'[paths]\ntemplates_dir = "{tmp_path / "none"}"\n')
    assert main(["check-config", str(config)]) == EX_CONFIG
    assert f"templates folder {tmp_path / 'none'} does not exist" in capsys.readouterr().err
    (tmp_path / "none").mkdir()  # a folder without the templates
    assert main(["check-config", str(config)]) == EX_CONFIG
    err = capsys.readouterr().err
    assert "templates are invalid" in err
    assert "success.txt: missing" in err


def test_a_file_without_state_dir_keeps_state_in_var_lib(tmp_path: Path) -> None:
    """Not in a "state" folder next to /etc/mailbot/config.toml (the old default)."""
    bare = tmp_path / "bare.toml"
    bare.write_text('[imap]\npassword_env = "UNUSED"\n', encoding="utf-8")
    config = load_config(bare)
    assert config.general.state_dir == Path("/var/lib/mailbot")
    assert config.database_url == "sqlite:////var/lib/mailbot/mailbot.sqlite3"
