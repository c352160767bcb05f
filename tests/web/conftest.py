"""The web console's tests: a configuration on a migrated database (SQLite and PostgreSQL),
a pinned clock, the console running under uvicorn with accounts of every role, and the
registration world (:mod:`tests.app.world`) for pages about real letters."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from mailbot.directory import migrate
from testkit.web import PinnedClock, WebServer, add_web_user, web_server
from tests.app.world import make_world, world  # noqa: F401

#: The test accounts: one per role, named after it.
ROLES = ("viewer", "operator", "admin")


def write_web_config(tmp_path: Path, database_url: str, web: str = "") -> Path:
    """A configuration file for the console: short limits, so tests reach them quickly."""
    path = tmp_path / "config.toml"
    path.write_text(
        f'[general]\nstate_dir = "{tmp_path / "state"}"\n'
        f'[imap]\npassword_env = "UNUSED"\n'
        f'[database]\nurl = "{database_url}"\n'
        f'[logging]\nformat = "console"\nlevel = "warning"\n'
        f"[web]\nsession_idle_minutes = 10\nsession_absolute_hours = 1\n"
        f"login_max_failures = 3\nlogin_window_minutes = 5\n{web}",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def web_config(engine: Engine, database_url: str, tmp_path: Path) -> Path:
    """The console's configuration file on a migrated database."""
    migrate.upgrade(engine)
    return write_web_config(tmp_path, database_url)


@pytest.fixture
def clock() -> PinnedClock:
    """The console's clock, pinned (move it with ``clock.advance(minutes=...)``)."""
    return PinnedClock()


@pytest.fixture
def server(web_config: Path, clock: PinnedClock) -> Iterator[WebServer]:
    """The console running, with the accounts ``viewer``, ``operator`` and ``admin``."""
    with web_server(web_config, clock=clock) as running:
        for role in ROLES:
            add_web_user(running, role, role)
        yield running
