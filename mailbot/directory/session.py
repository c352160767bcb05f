"""Sessions bound to the configured database, checked to be at the current schema."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from mailbot.config import Config
from mailbot.directory import migrate
from mailbot.directory.engine import engine_from_config


class SchemaNotCurrent(RuntimeError):
    """The database has not been migrated to this mailbot's schema."""


def ensure_current(engine: Engine) -> None:
    """Refuse to work on a database whose schema is not at head."""
    current = migrate.current_revision(engine)
    head = migrate.head_revision()
    if current != head:
        raise SchemaNotCurrent(
            f"database schema is at {current or 'nothing'}, this mailbot needs {head}: "
            "run `mailbot db upgrade`"
        )


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded objects usable after commit."""
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def database(config: Config) -> Iterator[sessionmaker[Session]]:
    """An engine for *config*, checked for schema, disposed on exit."""
    engine = engine_from_config(config)
    try:
        ensure_current(engine)
        yield session_factory(engine)
    finally:
        engine.dispose()
