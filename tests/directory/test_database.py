"""The engine factory on both databases: a row survives a round trip, SQLite runs in WAL."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    insert,
    select,
    text,
)

from mailbot.config import config_from_mapping
from mailbot.directory.engine import database_url, make_engine

metadata = MetaData()
sample = Table(
    "roundtrip_sample",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(200), nullable=False),
    Column("der", LargeBinary, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
)


def test_row_round_trip(engine: Engine) -> None:
    metadata.create_all(engine)
    moment = dt.datetime(2026, 11, 22, 9, 30, tzinfo=dt.UTC)
    with engine.begin() as connection:
        connection.execute(
            insert(sample).values(name="Иванов Иван Иванович", der=b"\x30\x82\x00\xff", at=moment)
        )
    with engine.connect() as connection:
        row = connection.execute(select(sample)).one()
    assert row.name == "Иванов Иван Иванович"
    assert row.der == b"\x30\x82\x00\xff"
    assert row.at.replace(tzinfo=row.at.tzinfo or dt.UTC) == moment


def test_sqlite_is_in_wal_mode_with_foreign_keys(tmp_path) -> None:  # type: ignore[no-untyped-def]
    engine = make_engine(f"sqlite:///{tmp_path / 'sub' / 'db.sqlite3'}")
    with engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
    engine.dispose()
    assert (tmp_path / "sub" / "db.sqlite3").exists()


def test_password_comes_from_its_source(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("TEST_DB_PW", "pa:ss@word")
    config = config_from_mapping(
        {
            "database": {
                "url": "postgresql://bot@db.example.org/mailbot",
                "password_env": "TEST_DB_PW",
            }
        }
    )
    url = database_url(config)
    assert url.password == "pa:ss@word"
    assert "pa:ss@word" not in config.database_url
    assert "pa:ss@word" not in str(url)  # SQLAlchemy masks it when printed
