"""Migrations from empty to head on both databases, and back; the result equals the models."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect

from mailbot.directory import migrate
from mailbot.directory.models import Base

TABLES = {
    "organisations",
    "subscribers",
    "trusted_addresses",
    "certification_authorities",
    "certificates",
    "letters",
    "outbox",
    "quarantine",
    "alerts",
    "expiry_reminders",
}


def test_upgrade_from_empty_to_head_matches_the_models(engine: Engine) -> None:
    assert migrate.current_revision(engine) is None
    migrate.upgrade(engine)
    assert migrate.current_revision(engine) == migrate.head_revision()
    assert set(inspect(engine).get_table_names()) >= TABLES
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, Base.metadata)
    assert differences == []


def test_upgrade_is_idempotent_and_downgrade_empties(engine: Engine) -> None:
    migrate.upgrade(engine)
    migrate.upgrade(engine)
    migrate.downgrade(engine, "base")
    assert migrate.current_revision(engine) is None
    assert not TABLES & set(inspect(engine).get_table_names())


def test_db_upgrade_command(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    from mailbot.cli.main import main

    config = tmp_path / "c.toml"
    config.write_text(f'[general]\nstate_dir = "{tmp_path}"\n[imap]\npassword_env = "X"\n')
    assert main(["db", "current", "--config", str(config)]) == 1
    assert "none (empty)" in capsys.readouterr().out
    assert main(["db", "upgrade", "--config", str(config)]) == 0
    assert f"at revision {migrate.head_revision()}" in capsys.readouterr().out
    assert main(["db", "current", "--config", str(config)]) == 0
    assert "up to date" in capsys.readouterr().out


def test_0002_adds_and_removes_expiry_reminders_keeping_data(engine: Engine) -> None:
    """0001 -> 0002 on a database with data, and back: only the new table comes and goes."""
    from sqlalchemy import text

    migrate.upgrade(engine, "0001")
    assert "expiry_reminders" not in inspect(engine).get_table_names()
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO organisations (name, active, created_at, updated_at) "
                "VALUES ('Больница', true, '2026-01-01 00:00:00+00', '2026-01-01 00:00:00+00')"
            )
        )
    migrate.upgrade(engine, "0002")
    assert migrate.current_revision(engine) == "0002"
    unique = inspect(engine).get_unique_constraints("expiry_reminders")
    assert [u["column_names"] for u in unique] == [["certificate_id", "threshold_days"]]
    migrate.downgrade(engine, "0001")
    assert migrate.current_revision(engine) == "0001"
    assert "expiry_reminders" not in inspect(engine).get_table_names()
    with engine.connect() as connection:
        assert connection.scalar(text("SELECT name FROM organisations")) == "Больница"
