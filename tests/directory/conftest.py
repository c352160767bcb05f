"""A migrated database (SQLite and PostgreSQL) and a config pointing at it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from mailbot.directory import migrate
from mailbot.directory.session import session_factory


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session on a freshly migrated database."""
    migrate.upgrade(engine)
    with session_factory(engine)() as session:
        yield session


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
