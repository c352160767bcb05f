"""The command-line tests' worlds: the registration world (:mod:`tests.app.world`) and a
configuration file on a migrated database (SQLite and PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine

from mailbot.directory import migrate
from tests.app.world import make_world, world  # noqa: F401


@pytest.fixture
def config_file(engine: Engine, database_url: str, tmp_path: Path) -> Path:
    """A configuration file for the CLI, on a migrated database."""
    migrate.upgrade(engine)
    path = tmp_path / "config.toml"
    path.write_text(
        f'[general]\nstate_dir = "{tmp_path / "state"}"\n'
        f'[imap]\npassword_env = "UNUSED"\n'
        f'[database]\nurl = "{database_url}"\n'
        f'[logging]\nformat = "console"\nlevel = "warning"\n',
        encoding="utf-8",
    )
    return path
