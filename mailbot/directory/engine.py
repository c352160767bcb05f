"""Database engines for SQLite (the embedded default) and PostgreSQL.

SQLite is opened in WAL mode with foreign keys on and a busy timeout, so the
daemon and an administrator's CLI can use one file at the same time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url

from mailbot.config import Config
from mailbot.files import make_private_dirs

#: How long an SQLite writer waits for another writer before failing.
SQLITE_BUSY_TIMEOUT_MS = 30_000


def database_url(config: Config) -> URL:
    """The configured URL with the password (if any) filled in from its source."""
    url = make_url(config.database_url)
    if config.database.password.configured:
        url = url.set(password=config.database.password.resolve().reveal())
    return url


def make_engine(url: str | URL, **kwargs: Any) -> Engine:
    """Create an engine with mailbot's connection settings for the URL's backend."""
    parsed = make_url(url) if isinstance(url, str) else url
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            make_private_dirs(Path(parsed.database).parent)
        engine = create_engine(parsed, **kwargs)
        event.listen(engine, "connect", _sqlite_on_connect)
        return engine
    if parsed.get_backend_name() == "postgresql" and parsed.get_driver_name() in ("", "psycopg2"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(parsed, **kwargs)


def engine_from_config(config: Config) -> Engine:
    """The engine for the configured database."""
    return make_engine(database_url(config))


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=FULL")
    finally:
        cursor.close()
