"""The daemon end to end: letters in over LMTP, replies read back from the participant's INBOX.

Real Dovecot, real SMTP bridge, real SQLite/PostgreSQL, real GOST certificates.
The daemon runs in-process (``Daemon.run``) in the test's event loop.
"""

from __future__ import annotations

import asyncio
import email
import imaplib
import tempfile
import time
from collections.abc import Callable, Iterator
from email import policy
from pathlib import Path

import pytest
from sqlalchemy import func, select

from mailbot.config import load_config
from mailbot.daemon.runner import Daemon
from mailbot.directory.engine import engine_from_config
from mailbot.directory.models import LetterRecord, OutboxMessage
from mailbot.directory.session import session_factory
from testkit import pki as factory
from testkit.running import running
from testkit.scenario import (
    FUND,
    MAIL_USERS,
    PARTICIPANT,
    STRANGER,
    Scenario,
    build_scenario,
)

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def scenario_factory(request: pytest.FixtureRequest) -> Iterator[Callable[..., Scenario]]:
    made: list[Scenario] = []

    def make(database_url: str | None = None, extra_config: str = "") -> Scenario:
        directory = Path(tempfile.mkdtemp(prefix="mailbot-e2e-"))
        scenario = build_scenario(directory, database_url=database_url, extra_config=extra_config)
        made.append(scenario)
        return scenario

    yield make
    for scenario in made:
        scenario.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def scenario(request: pytest.FixtureRequest, scenario_factory: Callable[..., Scenario]) -> Scenario:
    if request.param == "postgresql":
        from testkit import postgres

        url = postgres.create_database()
        request.addfinalizer(lambda: postgres.drop_database(url))
        return scenario_factory(url)
    return scenario_factory()


def inbox(scenario: Scenario, user: str) -> list[email.message.EmailMessage]:
    """Every letter in *user*'s INBOX, read over IMAP."""
    with imaplib.IMAP4("127.0.0.1", scenario.dovecot.imap_port) as client:
        client.login(user, MAIL_USERS[user])
        client.select("INBOX", readonly=True)
        _status, data = client.uid("SEARCH", "ALL")
        found = []
        for uid in (data[0] or b"").split():
            _status, parts = client.uid("FETCH", uid, "(BODY.PEEK[])")
            raw = next(p[1] for p in parts if isinstance(p, tuple))
            message = email.message_from_bytes(raw, policy=policy.default)
            assert isinstance(message, email.message.EmailMessage)
            found.append(message)
        return found


async def wait_for(predicate: Callable[[], bool], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await asyncio.to_thread(predicate):
            return
        await asyncio.sleep(0.1)
    raise AssertionError("condition not met in time")


def replies(scenario: Scenario, user: str = PARTICIPANT) -> list[str]:
    return [m.get_content().strip() for m in inbox(scenario, user)]


async def test_every_outcome_lands_in_the_participants_inbox(scenario: Scenario) -> None:
    stranger_ca = factory.make_ca("Чужой УЦ", slot=4)
    letters = {
        "success": scenario.add_cert_letter(scenario.participant_certificate()),
        "snils_mismatch": scenario.add_cert_letter(scenario.participant_certificate("12345678964")),
        "unknown_ca": scenario.add_cert_letter(scenario.participant_certificate(ca=stranger_ca)),
        "no_cer": scenario.add_cert_letter(None),
        "stranger": scenario.add_cert_letter(
            scenario.participant_certificate(), sender=scenario.address(STRANGER)
        ),
    }
    for raw in letters.values():
        scenario.deliver(raw)
    async with running(scenario.config_path):
        await wait_for(lambda: len(inbox(scenario, PARTICIPANT)) == 4)
        await wait_for(lambda: scenario.dovecot.message_count(FUND) == 0)
    texts = replies(scenario)
    assert any(
        t.startswith("Установка сертификата ключа проверки электронной подписи выполнена успешно.")
        for t in texts
    )
    assert any("СНИЛС, указанный в сертификате отличается" in t for t in texts)
    assert any("выдан неизвестным системе удостоверяющим центром" in t for t in texts)
    assert any(
        t.startswith("В полученном от Вас письме отсутствует файл сертификата") for t in texts
    )
    assert inbox(scenario, STRANGER) == []
    for message in inbox(scenario, PARTICIPANT):
        assert message["Auto-Submitted"] == "auto-replied"
        assert message["Subject"] == "Re: ADD_CERT"
        assert message["In-Reply-To"] is not None
    assert scenario.dovecot.message_count(FUND, "Processed") == 1
    assert scenario.dovecot.message_count(FUND, "Rejected") == 4


async def test_idle_pickup_is_fast_and_replies_are_not_repeated(scenario: Scenario) -> None:
    async with running(scenario.config_path):
        await asyncio.sleep(1.5)  # the daemon is connected and idling
        started = time.monotonic()
        scenario.deliver(scenario.add_cert_letter(scenario.participant_certificate()))
        await wait_for(lambda: len(inbox(scenario, PARTICIPANT)) == 1, timeout=10)
        latency = time.monotonic() - started
        assert latency < 2.0, f"letter -> reply took {latency:.2f} s"
        await asyncio.sleep(1.0)
    # A restart finds nothing new to answer.
    async with running(scenario.config_path, once=True):
        pass
    assert len(inbox(scenario, PARTICIPANT)) == 1


async def test_run_once_processes_and_exits(scenario: Scenario) -> None:
    for _ in range(3):
        scenario.deliver(scenario.add_cert_letter(None))
    daemon = Daemon(load_config(scenario.config_path), once=True)
    assert await asyncio.wait_for(daemon.run(), 60) == 0
    assert len(inbox(scenario, PARTICIPANT)) == 3
    engine = engine_from_config(scenario.config)
    with session_factory(engine)() as session:
        assert session.scalar(select(func.count(LetterRecord.id))) == 3
        assert (
            session.scalar(
                select(func.count(OutboxMessage.id)).where(OutboxMessage.status == "sent")
            )
            == 3
        )
    engine.dispose()


async def test_imap_connection_killed_and_smtp_down(scenario: Scenario) -> None:
    async with running(scenario.config_path):
        await asyncio.sleep(1.0)
        scenario.dovecot.kick(FUND)
        scenario.smtp.handler.fail_with = "451 4.3.0 try again later"
        scenario.deliver(scenario.add_cert_letter(None))
        await wait_for(lambda: scenario.dovecot.message_count(FUND) == 0)
        assert inbox(scenario, PARTICIPANT) == []
        scenario.smtp.handler.fail_with = None
        await wait_for(lambda: len(inbox(scenario, PARTICIPANT)) == 1, timeout=60)
    assert len(inbox(scenario, PARTICIPANT)) == 1
