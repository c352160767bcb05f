"""``mailbot report send [--period] [--dry-run]`` against a real SMTP server, and the [report] keys."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from mailbot.cli.main import main
from mailbot.config import ConfigError, config_from_mapping
from mailbot.directory.models import LetterRecord, OutboxMessage, SentReport
from testkit.smtpd import SmtpServer
from tests.app import reminders_world
from tests.app.reminders_world import World
from tests.cli.world_config import write_world_config
from tests.logs import _default_logging  # noqa: F401  (autouse)

make_world = reminders_world.make_world
world = reminders_world.world

ADMIN = "admin@example.test"


def write_config(tmp_path: Path, world: World, smtp: SmtpServer, admins: str) -> Path:
    return write_world_config(tmp_path, world, smtp, f"[admin]\nalert_addresses = [{admins}]")


def test_dry_run_prints_then_send_sends_once(
    world: World, smtp: SmtpServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The CLI reads the real clock: a letter of yesterday (Moscow) is in the daily report.
    yesterday = dt.datetime.now(ZoneInfo("Europe/Moscow")).date() - dt.timedelta(days=1)
    noon = dt.datetime.combine(yesterday, dt.time(12), tzinfo=ZoneInfo("Europe/Moscow"))
    with world.sessions() as session:
        session.add(
            LetterRecord(
                mailbox="INBOX", sha256="0" * 64, sender="petrov@clinic.example",
                subject="ADD_CERT", received_at=noon, state="done", outcome="no_cer",
            )
        )  # fmt: skip
        session.commit()
    config = write_config(tmp_path, world, smtp, f'"{ADMIN}"')
    command = ["report", "send", "--period", "daily", "--config", str(config)]

    assert main([*command, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert f"Subject: Ежедневный отчёт за {yesterday:%d.%m.%Y}: писем 1" in out
    assert f"To: {ADMIN}" in out
    assert "  нет файла сертификата: 1" in out and "  petrov@clinic.example: 1" in out
    assert f"[attachment mailbot-journal-{yesterday.isoformat()}.csv:" in out
    assert smtp.messages == []

    assert main(command) == 0
    assert f"report daily:{yesterday.isoformat()} queued" in capsys.readouterr().out
    (received,) = smtp.handler.wait_for(1)
    assert received.recipients == (ADMIN,)
    assert received.message["Subject"].endswith(f"за {yesterday:%d.%m.%Y}: писем 1")
    with world.sessions() as session:
        (row,) = session.scalars(select(OutboxMessage)).all()
        assert (row.kind, row.status) == ("report", "sent")
        (sent,) = session.scalars(select(SentReport)).all()
        assert (sent.period_key, sent.outbox_id) == (f"daily:{yesterday.isoformat()}", row.id)

    assert main(command) == 0
    assert "was sent already" in capsys.readouterr().out
    assert len(smtp.messages) == 1


def test_send_needs_admin_addresses(
    world: World, smtp: SmtpServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, world, smtp, "")
    assert main(["report", "send", "--config", str(config)]) == 1
    assert "admin.alert_addresses is empty" in capsys.readouterr().err
    assert main(["report", "send", "--dry-run", "--config", str(config)]) == 0
    assert "Еженедельный отчёт за" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        ({"hour": 24}, "report.hour: must be 0-23"),
        ({"weekday": "понедельник"}, "report.weekday: must be one of 'monday'"),
        ({"period": "monthly"}, "report.period: must be one of 'weekly', 'daily'"),
        ({"expiring_days": 0}, "report.expiring_days: must be positive"),
        ({"interval_minutes": 0}, "report.interval_minutes: must be positive"),
        ({"enabled": True}, "report.enabled: the report goes to admin.alert_addresses"),
    ],
)
def test_bad_report_settings_are_reported(values: dict[str, object], problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        config_from_mapping({"report": values})
    assert any(p.startswith(problem) for p in info.value.problems), info.value.problems


def test_report_defaults() -> None:
    report = config_from_mapping({}).report
    assert (report.enabled, report.period, report.weekday, report.hour) == (
        False, "weekly", "monday", 8,
    )  # fmt: skip
    assert (report.expiring_days, report.interval_minutes) == (30, 15)
    enabled = config_from_mapping(
        {"report": {"enabled": True, "hour": 0}, "admin": {"alert_addresses": [ADMIN]}}
    )
    assert enabled.report.enabled and enabled.report.hour == 0
