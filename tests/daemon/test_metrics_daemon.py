"""Metrics of a real daemon: its HTTP endpoint scraped, and the timer's textfile.

Real Dovecot, SMTP bridge, SQLite and GOST certificates (testkit.scenario); the
daemon runs in-process for the endpoint and as ``python -m mailbot run --once``
for the textfile. A second CA is registered without any CRL: it must show as
``mailbot_crl_age_seconds{ca=...} +Inf`` so the CRL alert fires for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import math
import os
import re
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailbot.config import load_config
from mailbot.directory.authorities import register_ca
from mailbot.directory.engine import engine_from_config
from mailbot.directory.lease import Lease, lease_for
from mailbot.directory.session import session_factory
from testkit import pki as factory
from testkit.ports import free_port
from testkit.running import running
from testkit.scenario import PARTICIPANT, PARTICIPANT_SNILS, Scenario, build_scenario
from tests.daemon.test_metrics import sample_lines

pytestmark = [pytest.mark.dovecot, pytest.mark.slow, pytest.mark.timeout(180)]

DEMO_CA = "Демонстрационный УЦ"
NO_CRL_CA = "УЦ без списка отзыва"
RETIRED_CA = "Выведенный УЦ"


def add_cas_without_crl(scenario: Scenario) -> None:
    """One active CA that never had a CRL, one deactivated CA (no series at all)."""
    engine = engine_from_config(scenario.config)
    try:
        with session_factory(engine)() as session:
            register_ca(session, factory.make_ca(NO_CRL_CA, slot=7).cert)
            retired, _created = register_ca(session, factory.make_ca(RETIRED_CA, slot=8).cert)
            retired.active = False
            session.commit()
    finally:
        engine.dispose()


def make(extra_config: str) -> Scenario:
    directory = Path(tempfile.mkdtemp(prefix="mailbot-metrics-"))
    scenario = build_scenario(directory, extra_config=extra_config)
    add_cas_without_crl(scenario)
    return scenario


@pytest.fixture
def served() -> Iterator[tuple[Scenario, int]]:
    port = free_port()
    scenario = make(f'[metrics]\nenabled = true\nlisten = "127.0.0.1:{port}"\n')
    yield scenario, port
    scenario.close()


@pytest.fixture
def timer(tmp_path: Path) -> Iterator[tuple[Scenario, Path]]:
    folder = tmp_path / "node-exporter"
    folder.mkdir()
    textfile = folder / "mailbot.prom"
    scenario = make(f'[metrics]\ntextfile = "{textfile}"\n')
    yield scenario, textfile
    scenario.close()


async def scrape(port: int) -> str:
    def get() -> str:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            connection.request("GET", "/metrics")
            response = connection.getresponse()
            assert response.status == 200
            return response.read().decode("utf-8")
        finally:
            connection.close()

    return await asyncio.to_thread(get)


async def eventually(check: object, timeout: float = 30) -> None:
    """Wait until the awaitable factory *check* returns true."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        if await check():  # type: ignore[operator]
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.2)


def assert_no_personal_data(text: str, scenario: Scenario) -> None:
    """No label value carries an address or a SNILS."""
    values = re.findall(r'="((?:[^"\\]|\\.)*)"', text)
    assert values
    for value in values:
        assert "@" not in value
        assert not re.search(r"\d{11}", value.replace("-", "").replace(" ", ""))
    assert PARTICIPANT_SNILS not in text
    assert scenario.address(PARTICIPANT) not in text


async def test_scrape_a_running_daemon(served: tuple[Scenario, int]) -> None:
    scenario, port = served
    scenario.deliver(scenario.add_cert_letter(scenario.participant_certificate()))
    async with running(scenario.config_path):

        async def replied() -> bool:
            try:
                samples = sample_lines(await scrape(port))
            except OSError:  # not listening yet
                return False
            return samples.get('mailbot_letters_total{outcome="success"}') == 1 and (
                samples.get("mailbot_outbox_backlog") == 0
            )

        await eventually(replied)
        text = await scrape(port)
    samples = sample_lines(text)
    assert samples["mailbot_up"] == 1
    assert samples["mailbot_imap_connected"] == 1
    assert samples['mailbot_letters_total{outcome="crashed"}'] == 0
    assert samples["mailbot_outbox_failed_total"] == 0
    # The library's process and platform metrics come with ours.
    assert samples["process_resident_memory_bytes"] > 10_000_000
    assert samples["process_cpu_seconds_total"] > 0
    assert samples["process_open_fds"] > 0
    assert any(name.startswith("python_info{") for name in samples)
    # Every active CA has a CRL age: the demo CA's CRL (thisUpdate an hour ago) was
    # ingested for the letter; the CA without a CRL is infinitely old; the retired one is gone.
    assert 3500 < samples[f'mailbot_crl_age_seconds{{ca="{DEMO_CA}"}}'] < 3900
    assert samples[f'mailbot_crl_age_seconds{{ca="{NO_CRL_CA}"}}'] == math.inf
    assert RETIRED_CA not in text
    assert_no_personal_data(text, scenario)


async def test_a_standby_is_down_and_reports_no_crl_age(served: tuple[Scenario, int]) -> None:
    scenario, port = served
    config = load_config(scenario.config_path)
    engine = engine_from_config(config)
    other: Lease = lease_for(engine, config.general.instance_name, config.general.state_dir)
    assert other.try_acquire()
    try:
        async with running(scenario.config_path):

            async def serving() -> bool:
                with contextlib.suppress(OSError):
                    return "mailbot_up" in await scrape(port)
                return False

            await eventually(serving)
            text = await scrape(port)
    finally:
        other.release()
        engine.dispose()
    samples = sample_lines(text)
    assert samples["mailbot_up"] == 0
    assert "mailbot_crl_age_seconds{" not in text
    assert samples["process_resident_memory_bytes"] > 0


def run_once(scenario: Scenario) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"}
    return subprocess.run(
        [sys.executable, "-m", "mailbot", "run", "--once", "--config", str(scenario.config_path)],
        capture_output=True,
        text=True,
        timeout=120,
        env=environment,
    )


def test_run_once_writes_the_textfile_and_replaces_it_atomically(
    timer: tuple[Scenario, Path],
) -> None:
    scenario, textfile = timer
    scenario.deliver(scenario.add_cert_letter(scenario.participant_certificate()))
    result = run_once(scenario)
    assert result.returncode == 0, result.stderr
    first = textfile.read_text(encoding="utf-8")
    samples = sample_lines(first)
    assert samples["mailbot_up"] == 1
    assert samples["mailbot_imap_connected"] == 1  # this run reached the mailbox
    assert samples['mailbot_letters_total{outcome="success"}'] == 1
    assert samples["mailbot_outbox_backlog"] == 0
    assert 3500 < samples[f'mailbot_crl_age_seconds{{ca="{DEMO_CA}"}}'] < 3900
    assert samples[f'mailbot_crl_age_seconds{{ca="{NO_CRL_CA}"}}'] == math.inf
    # node_exporter exports its own process_* series and refuses duplicates.
    assert not [name for name in samples if name.startswith(("process_", "python_"))]
    # Readable by node_exporter although the CLI runs with umask 027.
    assert stat.S_IMODE(textfile.stat().st_mode) == 0o644
    assert_no_personal_data(first, scenario)

    # A reader holding the old file keeps reading it whole: the new one is renamed over it.
    with textfile.open("rb") as reader:
        inode = os.fstat(reader.fileno()).st_ino
        scenario.deliver(scenario.add_cert_letter(None))
        scenario.deliver(scenario.add_cert_letter(scenario.participant_certificate()))
        result = run_once(scenario)
        assert result.returncode == 0, result.stderr
        assert reader.read().decode("utf-8") == first
    assert textfile.stat().st_ino != inode
    assert sorted(path.name for path in textfile.parent.iterdir()) == ["mailbot.prom"]
    samples = sample_lines(textfile.read_text(encoding="utf-8"))
    # Counters carry on from the previous run: rate() sees 1 + 2 letters, not 1 then 2.
    assert samples['mailbot_letters_total{outcome="success"}'] == 2
    assert samples['mailbot_letters_total{outcome="no_cer"}'] == 1


def test_a_run_that_cannot_reach_imap_says_so_in_the_textfile(
    timer: tuple[Scenario, Path],
) -> None:
    scenario, textfile = timer
    text = scenario.config_path.read_text(encoding="utf-8")
    closed = free_port()
    scenario.config_path.write_text(
        text.replace(f"port = {scenario.dovecot.imap_port}", f"port = {closed}", 1),
        encoding="utf-8",
    )
    result = run_once(scenario)
    assert result.returncode != 0
    samples = sample_lines(textfile.read_text(encoding="utf-8"))
    assert samples["mailbot_imap_connected"] == 0
    assert samples[f'mailbot_crl_age_seconds{{ca="{NO_CRL_CA}"}}'] == math.inf
