"""The administrators' daily report end to end: letters processed by the daemon, the report
read back from the admin's IMAP INBOX with its CSV journal; once per period across ``--once``
runs and the daemon's scheduled job, again for the next period. The clock is pinned to the
next morning, so the report covers today's letters."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import email.message
import io
from collections.abc import Callable
from zoneinfo import ZoneInfo

import pytest

from mailbot.config import load_config
from mailbot.daemon.runner import Daemon
from testkit.scenario import ADMIN, PARTICIPANT, STRANGER, Scenario, now

from .test_end_to_end import inbox, scenario_factory, wait_for

__all__ = ["scenario_factory"]  # a fixture, used by name

pytestmark = pytest.mark.timeout(180)
REPORT = '\n[report]\nenabled = true\nperiod = "daily"\nhour = 8\n'
ZONE = ZoneInfo("Europe/Moscow")


@pytest.fixture(params=["sqlite", "postgresql"])
def scenario(request: pytest.FixtureRequest, scenario_factory: Callable[..., Scenario]) -> Scenario:
    if request.param == "postgresql":
        from testkit import postgres

        url = postgres.create_database()
        request.addfinalizer(lambda: postgres.drop_database(url))
        return scenario_factory(url, extra_config=REPORT)
    return scenario_factory(extra_config=REPORT)


def morning_after(day: dt.date, days: int = 1) -> dt.datetime:
    """09:00 in Moscow *days* after local *day*: that day's daily report is due."""
    return dt.datetime.combine(day + dt.timedelta(days=days), dt.time(9), tzinfo=ZONE)


async def run_once(scenario: Scenario, clock: dt.datetime) -> None:
    """``mailbot run --once``, in-process, at *clock*."""
    daemon = Daemon(load_config(scenario.config_path), once=True, clock=lambda: clock)
    assert await asyncio.wait_for(daemon.run(), 60) == 0


def reports(scenario: Scenario) -> list[email.message.EmailMessage]:
    return [m for m in inbox(scenario, ADMIN) if "Ежедневный отчёт" in str(m["Subject"])]


def text_of(message: email.message.EmailMessage) -> str:
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    return body.get_content().replace("\r\n", "\n")


def journal_rows(message: email.message.EmailMessage) -> list[list[str]]:
    (attachment,) = list(message.iter_attachments())
    data = attachment.get_payload(decode=True)
    assert isinstance(data, bytes) and data.startswith(b"\xef\xbb\xbf")
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline=""), delimiter=";"))


async def test_the_daily_report_reaches_the_admin_once_a_day(scenario: Scenario) -> None:
    today = now().astimezone(ZONE).date()
    scenario.deliver(scenario.add_cert_letter(scenario.participant_certificate()))
    scenario.deliver(scenario.add_cert_letter(None))  # no_cer
    scenario.deliver(scenario.add_cert_letter(None, sender=scenario.address(STRANGER)))

    await run_once(scenario, morning_after(today))

    await wait_for(lambda: len(reports(scenario)) == 1)
    (letter,) = reports(scenario)
    assert letter["To"] == scenario.address(ADMIN)
    assert letter["Subject"].endswith(f"Ежедневный отчёт за {today:%d.%m.%Y}: писем 3")
    text = text_of(letter)
    assert "(всего 3):\n" in text
    assert "  сертификат зарегистрирован: 1\n" in text
    assert "  нет файла сертификата: 1\n" in text
    assert "  без ответа (чужой отправитель, автоответ, петля): 1\n" in text
    senders = text.split("отклонённых писем:\n")[1].split("\n\n")[0].splitlines()
    assert sorted(senders) == sorted(
        f"  {scenario.address(user)}: 1" for user in (PARTICIPANT, STRANGER)
    )
    rows = journal_rows(letter)
    assert len(rows) == 4
    assert [row[2] for row in rows[1:]] == [
        scenario.address(PARTICIPANT), scenario.address(PARTICIPANT), scenario.address(STRANGER),
    ]  # fmt: skip
    assert [row[4] for row in rows[1:]] == [
        "сертификат зарегистрирован",
        "нет файла сертификата",
        "без ответа (чужой отправитель, автоответ, петля)",
    ]
    assert all(row[5].startswith("<scenario-") for row in rows[1:])
    assert all(row[1].startswith(f"{today:%d.%m.%Y} ") for row in rows[1:])

    # The timer's next run the same morning: nothing new.
    await run_once(scenario, morning_after(today) + dt.timedelta(hours=1))
    # The daemon a day later: its scheduled job (first run 10 s after start) sends the next
    # day's report; the job again by hand sends nothing more.
    daemon = Daemon(load_config(scenario.config_path), clock=lambda: morning_after(today, 2))
    task = asyncio.create_task(daemon.run())
    try:
        await wait_for(lambda: len(reports(scenario)) == 2, timeout=40)
        await daemon.send_report()
        await daemon.flush_outbox()
    finally:
        daemon.stop.set()
        assert await asyncio.wait_for(task, 30) == 0
    await asyncio.sleep(1)  # anything sent by mistake would have been delivered by now
    first, second = reports(scenario)
    assert first["Message-ID"] == letter["Message-ID"]
    tomorrow = today + dt.timedelta(days=1)
    assert second["Subject"].endswith(f"Ежедневный отчёт за {tomorrow:%d.%m.%Y}: писем 0")
    assert journal_rows(second)[1:] == []
