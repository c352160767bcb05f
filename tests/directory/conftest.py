"""A migrated database (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator

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
