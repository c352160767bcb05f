"""A throw-away PostgreSQL database on the local server, for the tests.

The server is expected on 127.0.0.1:5432 with trust authentication (as on
the development machines). When no cluster runs, it is started with the
Debian cluster tools; each test session creates its own database and drops
it at the end.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import time
from pathlib import Path

import psycopg
from psycopg import sql

DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server could be reached or started."""


def admin_url() -> str:
    """The maintenance-database URL (override with $MAILBOT_TEST_PG_ADMIN_URL)."""
    return os.environ.get("MAILBOT_TEST_PG_ADMIN_URL", DEFAULT_ADMIN_URL)


def _reachable(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=3):
            return True
    except psycopg.Error:
        return False


def ensure_server(url: str | None = None, timeout: float = 60.0) -> None:
    """Make sure a server answers at *url*; start the Debian cluster if it does not."""
    url = url or admin_url()
    if _reachable(url):
        return
    if shutil.which("pg_lsclusters") is None or shutil.which("pg_ctlcluster") is None:
        raise PostgresUnavailable(f"no server at {url} and no Debian cluster tools to start one")
    clusters = subprocess.run(
        ["pg_lsclusters", "--no-header"], capture_output=True, text=True, check=False
    ).stdout.split()
    if len(clusters) < 2:
        raise PostgresUnavailable("no PostgreSQL cluster exists (scripts/install-system-deps.sh)")
    version, name = clusters[0], clusters[1]
    started = subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, name, "start"],
        capture_output=True,
        text=True,
        check=False,
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _reachable(url):
            return
        time.sleep(0.5)
    raise PostgresUnavailable(f"cluster {version}/{name} did not come up: {started.stderr.strip()}")


def create_database(prefix: str = "mailbot_test") -> str:
    """Create a new database and return its SQLAlchemy URL."""
    ensure_server()
    name = f"{prefix}_{os.getpid()}_{secrets.token_hex(4)}"
    with psycopg.connect(admin_url(), autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    base = admin_url().rsplit("/", 1)[0]
    return f"{base.replace('postgresql://', 'postgresql+psycopg://', 1)}/{name}"


def drop_database(url: str) -> None:
    """Drop the database named in *url*, disconnecting anyone still using it."""
    name = Path(url.rsplit("/", 1)[-1]).name
    with psycopg.connect(admin_url(), autocommit=True) as connection:
        connection.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def recreate_database(url: str) -> None:
    """Drop the database named in *url* and create it again, empty (a lost server, restored)."""
    drop_database(url)
    name = Path(url.rsplit("/", 1)[-1]).name
    with psycopg.connect(admin_url(), autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
