"""The outbox's configuration keys: defaults and validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailbot.config import ConfigError, load_config
from tests.logs import _default_logging  # noqa: F401  (autouse, as in its old folder)


def _problems(tmp_path: Path, smtp: str) -> list[str]:
    path = tmp_path / "config.toml"
    path.write_text(f'[imap]\npassword_env = "X"\n[smtp]\n{smtp}\n', encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return info.value.problems


def test_retry_defaults() -> None:
    smtp = load_config(None).smtp
    assert (smtp.retry_base_seconds, smtp.retry_max_seconds) == (30, 3600)


def test_retry_cap_below_base_is_refused(tmp_path: Path) -> None:
    problems = _problems(tmp_path, "retry_base_seconds = 60\nretry_max_seconds = 10")
    assert any(p.startswith("smtp.retry_max_seconds") for p in problems)


@pytest.mark.parametrize("key", ["retry_base_seconds", "timeout_seconds"])
def test_non_positive_durations_are_refused(tmp_path: Path, key: str) -> None:
    problems = _problems(tmp_path, f"{key} = 0")
    assert any(p.startswith(f"smtp.{key}") for p in problems)
