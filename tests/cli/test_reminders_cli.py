"""``mailbot reminders run [--dry-run]`` against a real SMTP server, and the [reminders] keys."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import select

from mailbot.cli.main import main
from mailbot.config import ConfigError, config_from_mapping
from mailbot.directory.models import OutboxMessage
from testkit.smtpd import SmtpServer
from tests.app import reminders_world
from tests.app.reminders_world import ADDRESS, World
from tests.cli.world_config import write_world_config
from tests.logs import _default_logging  # noqa: F401  (autouse)

# The reminders world, not the registration world of this folder's conftest.
make_world = reminders_world.make_world
world = reminders_world.world


def write_config(tmp_path: Path, world: World, smtp: SmtpServer, extra: str = "") -> Path:
    return write_world_config(tmp_path, world, smtp, f"[reminders]\n{extra}")


def test_dry_run_lists_then_run_sends_once(
    world: World, smtp: SmtpServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The CLI reads the real clock: five days and an hour left, so the 7-day threshold.
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    certificate = world.register(now + dt.timedelta(days=5, hours=1))
    config = write_config(tmp_path, world, smtp)

    assert main(["reminders", "run", "--dry-run", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert f"{certificate}" in out and "sent" in out and "skipped" in out
    assert "would be marked expired: 0" in out
    assert world.reminders() == [] and smtp.messages == []

    assert main(["reminders", "run", "--config", str(config), "--format", "json"]) == 0
    assert '"status": "sent"' in capsys.readouterr().out
    (received,) = smtp.handler.wait_for(1)
    assert received.recipients == (ADDRESS,)
    assert "Осталось дней: 5." in received.message.get_content()
    with world.sessions() as session:
        (row,) = session.scalars(select(OutboxMessage)).all()
        assert (row.kind, row.status) == ("reminder", "sent")

    assert main(["reminders", "run", "--config", str(config)]) == 0
    assert "sent: 0, skipped: 0" in capsys.readouterr().out
    assert len(smtp.messages) == 1


def test_disabled_reminders_refuse_a_real_run(
    world: World, smtp: SmtpServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, world, smtp, "enabled = false")
    assert main(["reminders", "run", "--config", str(config)]) == 1
    assert "reminders are disabled" in capsys.readouterr().err
    assert main(["reminders", "run", "--dry-run", "--config", str(config)]) == 0


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        ({"expiry_days": [30, 0]}, "reminders.expiry_days: every threshold must be a positive"),
        ({"expiry_days": [7, 7]}, "reminders.expiry_days: a threshold is listed twice"),
        ({"expiry_days": []}, "reminders.expiry_days: empty"),
        ({"interval_minutes": 0}, "reminders.interval_minutes: must be positive"),
        ({"expiry_days": "30"}, "reminders.expiry_days: must be a list"),
    ],
)
def test_bad_reminder_settings_are_reported(values: dict[str, object], problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        config_from_mapping({"reminders": values})
    assert any(p.startswith(problem) for p in info.value.problems), info.value.problems


def test_reminder_defaults() -> None:
    config = config_from_mapping({})
    assert config.reminders.enabled is True
    assert config.reminders.expiry_days == (30, 7)
    assert config.reminders.interval_minutes == 60
    assert config_from_mapping({"reminders": {"enabled": False, "expiry_days": []}})
