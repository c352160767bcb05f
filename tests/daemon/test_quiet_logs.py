"""APScheduler's line for every scheduled run stays out of the log at the default level;
at debug it comes back, naming the job."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailbot.config import config_from_mapping
from mailbot.daemon.runner import Daemon
from mailbot.log import configure_logging
from tests.logs import _reset_logging  # noqa: F401  (autouse)


@pytest.fixture
def daemon(tmp_path: Path) -> Daemon:
    document = {
        "general": {"state_dir": str(tmp_path / "state")},
        "imap": {"password_env": "X"},
        "daemon": {"outbox_interval_seconds": 1},
    }
    return Daemon(config_from_mapping(document))


def scheduler_output(daemon: Daemon, level: str) -> str:
    """What the daemon's scheduler logs at *level* while the outbox job runs once or twice."""
    buffer = io.StringIO()
    configure_logging("console", level, stream=buffer)

    async def run() -> None:
        # No lease is held (the daemon never started), so the guarded jobs return at once.
        scheduler = daemon._start_scheduler()
        try:
            await asyncio.sleep(1.5)
        finally:
            scheduler.shutdown(wait=False)

    asyncio.run(run())
    return buffer.getvalue()


def test_scheduled_runs_are_not_logged_at_info(daemon: Daemon) -> None:
    assert "Running job" not in scheduler_output(daemon, "info")


def test_at_debug_a_scheduled_run_names_its_job(daemon: Daemon) -> None:
    output = scheduler_output(daemon, "debug")
    assert 'Running job "outbox' in output
    assert "_guarded" not in output


@pytest.fixture(autouse=True)
def _quiet_afterwards() -> Iterator[None]:
    yield
    configure_logging("console", "warning")
