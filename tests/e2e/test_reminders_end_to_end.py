"""Expiry reminders end to end: registered by letter, reminded by the daemon's job, read back
from the participant's IMAP INBOX; exactly once across restarts (daemon and ``--once``)."""

from __future__ import annotations

import asyncio
import datetime as dt
import email.message

import pytest
from sqlalchemy import select

from mailbot.config import load_config
from mailbot.daemon.runner import Daemon
from mailbot.directory.engine import engine_from_config
from mailbot.directory.models import ExpiryReminder
from mailbot.directory.session import session_factory
from testkit import pki as factory
from testkit.running import running
from testkit.scenario import PARTICIPANT, PARTICIPANT_SNILS, Scenario, now

from .test_end_to_end import inbox, scenario, scenario_factory, wait_for

__all__ = ["scenario", "scenario_factory"]  # fixtures, used by name

pytestmark = pytest.mark.timeout(180)
SUBJECT = "Срок действия сертификата"


def expiring_letter(scenario: Scenario, days: int) -> bytes:
    """An ADD_CERT letter with a real certificate that expires in *days* days."""
    moment = now()
    certificate = factory.make_end_entity(
        scenario.ca, snils=PARTICIPANT_SNILS, crl_urls=(),
        not_before=moment - dt.timedelta(days=300), not_after=moment + dt.timedelta(days=days),
    )  # fmt: skip
    return scenario.add_cert_letter(certificate)


async def run_once(scenario: Scenario) -> None:
    """``mailbot run --once``, in-process."""
    daemon = Daemon(load_config(scenario.config_path), once=True)
    assert await asyncio.wait_for(daemon.run(), 60) == 0


def reminders_in_inbox(scenario: Scenario) -> list[email.message.EmailMessage]:
    return [m for m in inbox(scenario, PARTICIPANT) if str(m["Subject"]).startswith(SUBJECT)]


def recorded(scenario: Scenario) -> list[tuple[int, str]]:
    engine = engine_from_config(scenario.config)
    try:
        with session_factory(engine)() as session:
            rows = session.execute(
                select(ExpiryReminder.threshold_days, ExpiryReminder.status).order_by(
                    ExpiryReminder.id
                )
            )
            return [(t, s) for t, s in rows]
    finally:
        engine.dispose()


async def test_the_daemon_job_reminds_once_across_restarts(scenario: Scenario) -> None:
    scenario.deliver(expiring_letter(scenario, days=20))
    async with running(scenario.config_path):
        # The registration reply first, then the scheduled job (first run 5 s after start).
        await wait_for(lambda: len(inbox(scenario, PARTICIPANT)) == 1)
        await wait_for(lambda: len(reminders_in_inbox(scenario)) == 1, timeout=30)
    (reminder,) = reminders_in_inbox(scenario)
    assert reminder["Auto-Submitted"] == "auto-generated"
    assert reminder["To"] == scenario.address(PARTICIPANT)
    assert "Осталось дней: 19." in reminder.get_content()
    assert recorded(scenario) == [(30, "sent")]

    # Restart as the systemd timer runs it: one pass, reminders included.
    await run_once(scenario)
    # And the daemon again: past its scheduled first run (5 s), then the job once more by hand.
    async with running(scenario.config_path) as daemon:
        await wait_for(lambda: daemon.processor is not None)
        await asyncio.sleep(7)
        await daemon.send_reminders()
        await daemon.flush_outbox()
    assert len(reminders_in_inbox(scenario)) == 1
    assert len(inbox(scenario, PARTICIPANT)) == 2
    assert recorded(scenario) == [(30, "sent")]


async def test_run_once_registers_and_reminds_the_nearest_threshold(scenario: Scenario) -> None:
    scenario.deliver(expiring_letter(scenario, days=5))
    await run_once(scenario)
    (reminder,) = reminders_in_inbox(scenario)
    assert "Осталось дней: 4." in reminder.get_content()
    assert sorted(recorded(scenario)) == [(7, "sent"), (30, "skipped")]
    await run_once(scenario)
    assert len(reminders_in_inbox(scenario)) == 1
    assert len(inbox(scenario, PARTICIPANT)) == 2


async def test_disabled_reminders_send_nothing(scenario_factory) -> None:  # type: ignore[no-untyped-def]
    scenario = scenario_factory(extra_config="\n[reminders]\nenabled = false\n")
    scenario.deliver(expiring_letter(scenario, days=5))
    await run_once(scenario)
    assert len(inbox(scenario, PARTICIPANT)) == 1
    assert reminders_in_inbox(scenario) == []
    assert recorded(scenario) == []
