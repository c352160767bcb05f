"""The daemon schedules the refresh of the list of accredited CAs only when a URL is set,
every ``trust_list.refresh_hours``."""

from __future__ import annotations

import asyncio
from pathlib import Path

from mailbot.config import config_from_mapping
from mailbot.daemon.runner import Daemon


def jobs(tmp_path: Path, trust_list: dict[str, object]) -> dict[str, float]:
    document = {
        "general": {"state_dir": str(tmp_path / "state")},
        "imap": {"password_env": "X"},
        "trust_list": trust_list,
    }
    daemon = Daemon(config_from_mapping(document))

    async def scheduled() -> dict[str, float]:
        scheduler = daemon._start_scheduler()
        try:
            return {job.id: job.trigger.interval.total_seconds() for job in scheduler.get_jobs()}
        finally:
            scheduler.shutdown(wait=False)

    return asyncio.run(scheduled())


def test_no_url_no_job(tmp_path: Path) -> None:
    assert "trust-list" not in jobs(tmp_path, {})


def test_a_url_refreshes_every_refresh_hours(tmp_path: Path) -> None:
    found = jobs(tmp_path, {"url": "https://tsl.example/list.xml", "refresh_hours": 12})
    assert found["trust-list"] == 12 * 3600
