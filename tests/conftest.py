"""Session-wide real servers: Dovecot (IMAP/IMAPS/LMTP), an SMTP bridge, PostgreSQL.

Nothing here is mocked: the fixtures start real servers on loopback ports and
tear them down at the end of the session.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from mailbot.directory.engine import make_engine
from testkit import postgres
from testkit.dovecot import DovecotServer
from testkit.smtpd import SmtpServer, start_smtp_server


@pytest.fixture(autouse=True)
def _no_proxy_from_the_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests reach their loopback servers directly, whatever proxy the machine's environment names.

    Tests of the proxy set these variables themselves.
    """
    for scheme in ("http", "https", "all", "no"):
        monkeypatch.delenv(f"{scheme}_proxy", raising=False)
        monkeypatch.delenv(f"{scheme.upper()}_PROXY", raising=False)


#: Local mail users of the test Dovecot and their passwords.
MAIL_USERS = {
    "reestrin": "reestrin-pw",
    "admin": "admin-pw",
    "user1": "user1-pw",
    "user2": "user2-pw",
    "user3": "user3-pw",
}
MAIL_DOMAIN = "example.test"


@pytest.fixture(scope="session")
def dovecot() -> Iterator[DovecotServer]:
    """A private Dovecot for the whole test session."""
    server = DovecotServer.start(MAIL_USERS, domain=MAIL_DOMAIN)
    yield server
    server.remove()


@pytest.fixture(scope="session")
def smtp_server(dovecot: DovecotServer) -> Iterator[SmtpServer]:
    """A recording SMTP server that delivers mail for example.test into Dovecot."""
    server = start_smtp_server({MAIL_DOMAIN}, ("127.0.0.1", dovecot.lmtp_port))
    yield server
    server.stop()


@pytest.fixture
def smtp(smtp_server: SmtpServer) -> SmtpServer:
    """The session's SMTP server with its record emptied for this test."""
    with smtp_server.handler.lock:
        smtp_server.handler.messages.clear()
        smtp_server.handler.fail_with = None
    return smtp_server


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL database created for this test session and dropped after it."""
    url = postgres.create_database()
    yield url
    postgres.drop_database(url)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each database test runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'mailbot.sqlite3'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """An engine for :func:`database_url`, disposed after the test."""
    engine = make_engine(database_url)
    yield engine
    if engine.dialect.name == "postgresql":
        # The session database is shared: leave it empty for the next test.
        with engine.begin() as connection:
            connection.execute(text("DROP SCHEMA public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()
