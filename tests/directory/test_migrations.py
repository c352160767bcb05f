"""Migrations from empty to head on both databases, and back; the result equals the models."""

from __future__ import annotations

import pytest
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
    "reports",
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


def test_0003_fills_the_address_keys_of_existing_rows(engine: Engine) -> None:
    """Rows written before 0003 (Unicode and punycode domains) are found by the new lookups."""
    import datetime as dt

    from sqlalchemy import text

    from mailbot.app.adapters import DbReplyCounter
    from mailbot.directory.session import session_factory
    from mailbot.directory.subscribers import subscribers_trusting

    migrate.upgrade(engine, "0002")
    stamp = "2026-11-30 09:00:00+00"
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO organisations (id, name, active, created_at, updated_at) "
                "VALUES (1, 'Больница', true, :t, :t)"
            ),
            {"t": stamp},
        )
        connection.execute(
            text(
                "INSERT INTO subscribers (id, organisation_id, surname, active, "
                "certificate_fields, created_at, updated_at) VALUES (:id, 1, :surname, true, "
                "'{}', :t, :t)"
            ),
            [{"id": n, "surname": f"Абонент {n}", "t": stamp} for n in (1, 2, 3)],
        )
        # More rows than one fill batch, so the batches are seen to continue.
        addresses = [(1, "иван@пример.рф"), (2, "petrov@xn--e1afmkfd.xn--p1ai")]
        addresses += [(3, f"user{n}@clinic.example") for n in range(1500)]
        connection.execute(
            text(
                "INSERT INTO trusted_addresses (subscriber_id, address, active, created_at) "
                "VALUES (:s, :a, true, :t)"
            ),
            [{"s": s, "a": a, "t": stamp} for s, a in addresses],
        )
        connection.execute(
            text(
                "INSERT INTO outbox (kind, recipients, message_id, raw, status, attempts, "
                "next_attempt_at, created_at) VALUES (:kind, :recipients, :id, :raw, 'sent', "
                "1, :t, :t)"
            ),
            [
                {"kind": kind, "recipients": recipients, "id": f"<{n}@x>", "raw": b"", "t": stamp}
                for n, (kind, recipients) in enumerate(
                    [
                        ("reply", '["Иван@Пример.РФ"]'),
                        ("reply", '["иван@xn--e1afmkfd.xn--p1ai"]'),
                        ("alert", '["иван@пример.рф"]'),
                        ("reply", '["petrov@xn--e1afmkfd.xn--p1ai"]'),
                    ]
                )
            ],
        )

    migrate.upgrade(engine, "0003")

    assert migrate.current_revision(engine) == "0003"
    columns = {c["name"]: c for c in inspect(engine).get_columns("trusted_addresses")}
    assert columns["address_key"]["nullable"] is False
    with session_factory(engine)() as session:
        for sender, subscriber_id in [
            ("ИВАН@xn--e1afmkfd.xn--p1ai", 1),
            ("Petrov@Пример.РФ", 2),
            ("USER1499@clinic.example", 3),
        ]:
            assert [s.id for s in subscribers_trusting(session, sender)] == [subscriber_id]
        counter = DbReplyCounter(session, "Europe/Moscow")
        assert counter.replies_on("иван@ПРИМЕР.рф", dt.date(2026, 11, 30)) == 2
        assert counter.replies_on("petrov@пример.рф", dt.date(2026, 11, 30)) == 1
        assert counter.replies_on("иван@пример.рф", dt.date(2026, 11, 29)) == 0

    migrate.downgrade(engine, "0002")
    assert "address_key" not in {
        c["name"] for c in inspect(engine).get_columns("trusted_addresses")
    }
    assert "recipient_key" not in {c["name"] for c in inspect(engine).get_columns("outbox")}


def test_0004_adds_reports_with_a_unique_period_key_keeping_data(engine: Engine) -> None:
    """0003 -> 0004 on a database with an outbox row, and back: only ``reports`` comes and goes."""
    from sqlalchemy import text
    from sqlalchemy.exc import IntegrityError

    migrate.upgrade(engine, "0003")
    assert "reports" not in inspect(engine).get_table_names()
    stamp = "2026-11-30 09:00:00+00"
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO outbox (id, kind, recipients, message_id, raw, status, attempts, "
                "next_attempt_at, created_at) VALUES (1, 'report', '[]', '<1@x>', :raw, "
                "'pending', 0, :t, :t)"
            ),
            {"raw": b"", "t": stamp},
        )
    migrate.upgrade(engine, "0004")
    assert migrate.current_revision(engine) == "0004"
    unique = inspect(engine).get_unique_constraints("reports")
    assert [u["column_names"] for u in unique] == [["period_key"]]
    insert = text(
        "INSERT INTO reports (period_key, period, period_start, period_end, outbox_id, "
        "created_at) VALUES ('weekly:2026-11-23', 'weekly', :t, :t, 1, :t)"
    )
    with engine.begin() as connection:
        connection.execute(insert, {"t": stamp})
    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(insert, {"t": stamp})
    migrate.downgrade(engine, "0003")
    assert "reports" not in inspect(engine).get_table_names()
    with engine.connect() as connection:
        assert connection.scalar(text("SELECT message_id FROM outbox")) == "<1@x>"


def test_0005_adds_the_trust_list_and_the_ca_directory_link_keeping_data(engine: Engine) -> None:
    """0004 -> 0005 on a database with a CA, and back: the CA row and its data survive."""
    from sqlalchemy import text

    migrate.upgrade(engine, "0004")
    stamp = "2026-12-01 09:00:00+00"
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO certification_authorities (id, name, subject_dn, subject_der_hex, "
                "ski, certificate_der, thumbprint_sha1, not_before, not_after, crl_urls, "
                "aia_urls, active, source, created_at, updated_at) VALUES (1, 'УЦ', 'CN=УЦ', "
                "'30', 'AB', :der, 'AA', :t, :t, '[]', '[]', true, 'manual', :t, :t)"
            ),
            {"der": b"\x30\x00", "t": stamp},
        )
    migrate.upgrade(engine, "0005")
    assert migrate.current_revision(engine) == "0005"
    tables = set(inspect(engine).get_table_names())
    assert {"trust_list_editions", "accredited_cas", "accredited_keys"} <= tables
    assert "accredited_certificates" in tables
    with engine.connect() as connection:
        row = connection.execute(
            text("SELECT name, source, list_version, list_flag FROM certification_authorities")
        ).one()
    assert tuple(row) == ("УЦ", "manual", None, None)
    migrate.downgrade(engine, "0004")
    assert "accredited_cas" not in inspect(engine).get_table_names()
    columns = {c["name"] for c in inspect(engine).get_columns("certification_authorities")}
    assert "list_flag" not in columns
    with engine.connect() as connection:
        assert connection.scalar(text("SELECT name FROM certification_authorities")) == "УЦ"


def test_0006_adds_the_web_accounts_and_the_audit_log_and_takes_them_away(engine: Engine) -> None:
    """0005 -> 0006 and back: only ``web_users`` and ``audit_log`` come and go."""
    migrate.upgrade(engine, "0005")
    before = set(inspect(engine).get_table_names())
    migrate.upgrade(engine, "0006")
    assert set(inspect(engine).get_table_names()) == before | {"web_users", "audit_log"}
    migrate.downgrade(engine, "0005")
    assert set(inspect(engine).get_table_names()) == before
