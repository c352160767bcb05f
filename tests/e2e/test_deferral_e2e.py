"""Deferred letters, CRL policies and the revocation watch through the running daemon.

Real Dovecot, SMTP bridge, SQLite/PostgreSQL and a loopback CRL server. The
retry job's interval is shortened through ``Daemon.deferred_retry_every``
(the configuration counts in minutes); everything else runs as in production.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import select

from mailbot.directory.engine import engine_from_config
from mailbot.directory.models import CertificateRecord, LetterRecord
from mailbot.directory.session import session_factory
from testkit import pki as factory
from testkit.crl_server import CrlServer
from testkit.running import running
from testkit.scenario import (
    ADMIN,
    FUND,
    PARTICIPANT,
    PARTICIPANT_SNILS,
    Scenario,
    publish_crl,
)
from tests.e2e.test_end_to_end import (  # noqa: F401  (fixtures)
    inbox,
    replies,
    scenario_factory,
    wait_for,
)

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(params=["sqlite", "postgresql"])
def make(
    request: pytest.FixtureRequest,
    scenario_factory: Callable[..., Scenario],  # noqa: F811
) -> Callable[[str], Scenario]:
    """A scenario with extra configuration, on each database."""

    def build(extra_config: str) -> Scenario:
        url = None
        if request.param == "postgresql":
            from testkit import postgres

            url = postgres.create_database()
            request.addfinalizer(lambda: postgres.drop_database(url))
        return scenario_factory(url, extra_config)

    return build


@pytest.fixture
def crl_server() -> Iterator[CrlServer]:
    server = CrlServer()
    yield server
    server.stop()


def without_crls(scenario: Scenario) -> None:
    for path in scenario.config.crl_drop_dir.iterdir():
        path.unlink()


def certificate(
    scenario: Scenario, urls: tuple[str, ...], serial: int | None = None
) -> factory.Issued:
    now = dt.datetime.now(dt.UTC)
    return factory.make_end_entity(
        scenario.ca, snils=PARTICIPANT_SNILS, crl_urls=urls, serial=serial,
        not_before=now - dt.timedelta(days=1), not_after=now + dt.timedelta(days=365),
    )  # fmt: skip


def letters(scenario: Scenario) -> list[LetterRecord]:
    engine = engine_from_config(scenario.config)
    try:
        with session_factory(engine)() as session:
            return list(session.scalars(select(LetterRecord).order_by(LetterRecord.id)))
    finally:
        engine.dispose()


def current_crl(scenario: Scenario, number: int) -> bytes:
    now = dt.datetime.now(dt.UTC)
    return factory.make_crl(
        scenario.ca, this_update=now - dt.timedelta(hours=1),
        next_update=now + dt.timedelta(days=7), number=number,
    )  # fmt: skip


async def test_a_deferred_letter_is_answered_once_when_the_crl_server_is_back(
    make: Callable[[str], Scenario], crl_server: CrlServer
) -> None:
    scenario = make('[crl]\nunavailable_policy = "defer"\nalert_after_minutes = 0\n')
    without_crls(scenario)
    scenario.deliver(scenario.add_cert_letter(certificate(scenario, (crl_server.url,))))
    async with running(scenario.config_path, retry_every=1.0):
        # Several retry rounds with the server answering 404: no reply, the letter stays.
        await wait_for(
            lambda: any(
                x.detail.get("deferral", {}).get("retries", 0) >= 2 for x in letters(scenario)
            )
        )
        (row,) = letters(scenario)
        assert (row.state, row.outcome) == ("deferred", "deferred")
        assert inbox(scenario, PARTICIPANT) == []
        assert scenario.dovecot.message_count(FUND) == 1
        # Waiting past alert_after_minutes (0): one alert, however many rounds follow.
        await wait_for(lambda: len(inbox(scenario, ADMIN)) == 1)
        requests = crl_server.requests
        await wait_for(lambda: crl_server.requests >= requests + 2)
        (alert,) = inbox(scenario, ADMIN)
        body = alert.get_content()
        assert crl_server.url in body and "HTTP 404" in body
        assert "Демонстрационный УЦ" in alert["Subject"] or "Демонстрационный УЦ" in body

        crl_server.crl = current_crl(scenario, 1)
        await wait_for(lambda: len(inbox(scenario, PARTICIPANT)) == 1)
        await wait_for(lambda: scenario.dovecot.message_count(FUND) == 0)
        await asyncio.sleep(2.5)  # more retry rounds and passes: nothing more is sent
    assert scenario.dovecot.message_count(FUND, "Processed") == 1
    (text,) = replies(scenario)
    assert text.startswith("Установка сертификата ключа проверки электронной подписи выполнена")
    assert len(inbox(scenario, ADMIN)) == 1
    (row,) = letters(scenario)
    assert (row.state, row.outcome, row.filed_to) == ("done", "success", "Processed")
    # A restart finds nothing to answer again.
    async with running(scenario.config_path, retry_every=1.0):
        await asyncio.sleep(2.0)
    assert len(inbox(scenario, PARTICIPANT)) == 1


@pytest.mark.parametrize(
    ("policy", "expected", "folder"),
    [
        ("reject", "список отзыва недоступен", "Rejected"),
        ("accept", "выполнена успешно", "Processed"),
    ],
)
async def test_reject_and_accept_policies_through_the_daemon(
    make: Callable[[str], Scenario], policy: str, expected: str, folder: str
) -> None:
    scenario = make(f'[crl]\nunavailable_policy = "{policy}"\n')
    without_crls(scenario)
    scenario.deliver(
        scenario.add_cert_letter(certificate(scenario, ("http://127.0.0.1:9/ca.crl",)))
    )
    async with running(scenario.config_path, retry_every=1.0):
        await wait_for(lambda: len(inbox(scenario, PARTICIPANT)) == 1)
        await wait_for(lambda: scenario.dovecot.message_count(FUND) == 0)
    (text,) = replies(scenario)
    assert expected in text
    assert scenario.dovecot.message_count(FUND, folder) == 1
    (row,) = letters(scenario)
    assert row.state == "done"


async def test_a_crl_revoking_a_registered_certificate_notifies_once(
    make: Callable[[str], Scenario],
) -> None:
    scenario = make("")
    serial = 0x5A5A01
    scenario.deliver(scenario.add_cert_letter(certificate(scenario, (), serial=serial)))
    revoked = (factory.Revoked(serial, dt.datetime.now(dt.UTC) - dt.timedelta(hours=1), 1),)
    async with running(scenario.config_path, retry_every=60) as daemon:
        await wait_for(lambda: len(inbox(scenario, PARTICIPANT)) == 1)  # registered
        publish_crl(scenario, scenario.ca, number=2, revoked=revoked)
        await daemon.refresh_crls()
        await wait_for(lambda: len(inbox(scenario, PARTICIPANT)) == 2)
        await wait_for(lambda: len(inbox(scenario, ADMIN)) == 1)
    notices = [m for m in inbox(scenario, PARTICIPANT) if m["Auto-Submitted"] == "auto-generated"]
    (notice,) = notices
    assert notice["Subject"] == f"Сертификат {serial:X} отозван удостоверяющим центром"
    assert "Причина отзыва: компрометация ключа" in notice.get_content()
    (alert,) = inbox(scenario, ADMIN)
    assert f"{serial:X}" in alert.get_content()
    engine = engine_from_config(scenario.config)
    with session_factory(engine)() as session:
        assert session.scalars(select(CertificateRecord.status)).one() == "revoked"
    engine.dispose()

    # A restart, and a newer CRL still listing it: no second notice, no second alert.
    publish_crl(scenario, scenario.ca, number=3, revoked=revoked)
    async with running(scenario.config_path, retry_every=60) as daemon:
        await wait_for(lambda: daemon.watch is not None)  # started up
        await daemon.refresh_crls()
        await daemon.flush_outbox()
        await asyncio.sleep(1.0)
    assert len(inbox(scenario, PARTICIPANT)) == 2
    assert len(inbox(scenario, ADMIN)) == 1
