"""A real subscriber directory for the intake, once per test module, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from mailbot.app.adapters import DbReplyCounter, DbSenderDirectory
from mailbot.directory import migrate
from mailbot.directory import subscribers as directory
from mailbot.directory.engine import make_engine
from mailbot.directory.session import session_factory
from testkit.letters import TRUSTED_SENDER

#: Trusted addresses of the directory's one subscriber, as an administrator typed them.
TRUSTED = (TRUSTED_SENDER, "Иван@Пример.РФ", "petrov@xn--e1afmkfd.xn--p1ai", "jdöe@mächine.example")


@dataclass
class Directory:
    """The database directory and reply counter the intake consults, and its session."""

    session: Session
    senders: DbSenderDirectory
    replies: DbReplyCounter
    subscriber_id: int


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def db_directory(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Directory]:
    """A migrated database whose one active subscriber trusts :data:`TRUSTED`."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('intake') / 'mailbot.sqlite3'}"
    else:
        url = request.getfixturevalue("postgres_url")
    engine = make_engine(url)
    migrate.upgrade(engine)
    with session_factory(engine)() as session:
        organisation = directory.add_organisation(session, "ГБУЗ МО «Больница»")
        subscriber = directory.add_subscriber(
            session, organisation.id, surname="Иванов", addresses=TRUSTED
        )
        session.commit()
        yield Directory(
            session, DbSenderDirectory(session), DbReplyCounter(session, "Europe/Moscow"),
            subscriber.id,
        )  # fmt: skip
    if engine.dialect.name == "postgresql":
        # The session database is shared: leave it empty for the next module.
        with engine.begin() as connection:
            connection.execute(text("DROP SCHEMA public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()
