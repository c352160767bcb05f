"""The database check: reachable, and its schema at this mailbot's newest revision."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from mailbot.config import Config, SecretError
from mailbot.directory import migrate
from mailbot.directory.engine import database_url, make_engine
from mailbot.doctor.finding import Finding, failed, passed, reason

#: PostgreSQL: give up connecting after this many seconds (a dropped SYN waits minutes).
CONNECT_SECONDS = 10

UPGRADE = "run `mailbot db upgrade`"


def sqlite_file_missing(config: Config) -> Path | None:
    """The SQLite file when the database is SQLite and the file does not exist yet.

    Opening it would create an empty file (and its folder): the doctor must not.
    """
    url = make_url(config.database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    path = Path(url.database)
    return None if path.exists() else path


def doctor_engine(config: Config) -> Engine:
    """An engine for the configured database with a bounded connect (raises SecretError)."""
    url = database_url(config)
    if url.get_backend_name() == "postgresql":
        return make_engine(url, connect_args={"connect_timeout": CONNECT_SECONDS})
    return make_engine(url)


def check_database(config: Config) -> Finding:
    """The database answers and its schema is at head; "missing" and "behind" name the fix."""
    shown = config.database_url  # never holds the password
    missing = sqlite_file_missing(config)
    if missing is not None:
        return failed(f"{shown}: schema missing (no database file {missing})", UPGRADE)
    try:
        engine = doctor_engine(config)
    except SecretError as exc:
        return failed(f"cannot read the password: {exc}", "fix database.password_env/_file")
    try:
        current = migrate.current_revision(engine)
    except SQLAlchemyError as exc:
        return failed(
            f"{shown}: cannot connect: {reason(getattr(exc, 'orig', None) or exc)}",
            "check [database] url and password, and that the server runs and admits mailbot",
        )
    finally:
        engine.dispose()
    head = migrate.head_revision()
    if current is None:
        return failed(f"{shown}: schema missing (empty database)", UPGRADE)
    if current != head:
        if migrate.is_known_revision(current):
            return failed(
                f"{shown}: schema behind: at {current}, this mailbot needs {head}", UPGRADE
            )
        return failed(
            f"{shown}: schema at {current}, unknown to this mailbot (migrated by a newer one?)",
            "run the mailbot version that migrated it",
        )
    return passed(f"{shown}, schema at head {head}")
