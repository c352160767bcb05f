"""The console in a real headless Chromium: an operator approves a quarantined certificate's CA
by uploading its .cer, and the participant's follow-up arrives in the test Dovecot's INBOX with
the text ``mailbot ca add`` sends.

Two letters with certificates of two unknown CAs go through the daemon and Dovecot into the
quarantine; one CA is registered in the browser, the other by ``mailbot ca add``; the daemon
then sends both follow-ups, which must read alike. Screenshots of the dashboard and of a
letter's page are kept as test artefacts.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path

import pytest
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy import select

from mailbot.cli.main import main
from mailbot.directory.engine import engine_from_config
from mailbot.directory.models import QuarantinedCertificate
from mailbot.directory.session import session_factory
from testkit import pki as factory
from testkit.browser import browser_missing, headless_chromium, save_screenshot
from testkit.running import running
from testkit.scenario import ADMIN, PARTICIPANT, Scenario, publish_crl
from testkit.web import PASSWORD, add_web_user, web_server
from tests.e2e import test_end_to_end as e2e
from tests.e2e.test_end_to_end import inbox, wait_for
from tests.e2e.test_quarantine_end_to_end import SUCCESS_PREFIX, message_id_of, run_once, text

scenario_factory = e2e.scenario_factory

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(browser_missing() is not None, reason=str(browser_missing())),
]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MOMENT = re.compile(r"\d\d\.\d\d\.\d{4} \d\d:\d\d:\d\d")


def pending_rows(scenario: Scenario) -> dict[int, QuarantinedCertificate]:
    """The pending quarantine rows by letter id."""
    engine = engine_from_config(scenario.config)
    try:
        with session_factory(engine)() as session:
            query = select(QuarantinedCertificate).where(QuarantinedCertificate.status == "pending")
            return {row.letter_id or 0: row for row in session.scalars(query)}
    finally:
        engine.dispose()


def settled(driver: WebDriver, seconds: float = 10) -> WebDriverWait[WebDriver]:
    """A wait that looks again when the page changes under it (a form's answer loading)."""
    return WebDriverWait(
        driver, seconds, ignored_exceptions=(StaleElementReferenceException, NoSuchElementException)
    )


def element(driver: WebDriver, by: str, value: str) -> WebElement:
    """The element once the page shows it."""
    return settled(driver).until(lambda d: d.find_element(by, value))


def log_in(driver: WebDriver, base_url: str, name: str) -> None:
    driver.get(f"{base_url}/login")
    driver.find_element(By.NAME, "name").send_keys(name)
    driver.find_element(By.NAME, "password").send_keys(PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "form.login button[type=submit]").click()
    settled(driver).until(lambda d: d.find_elements(By.CSS_SELECTOR, "form.logout"))


def assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE), path
    assert len(data) > 10_000, f"{path} is only {len(data)} bytes"


def followup_text(message: EmailMessage, serial: str) -> str:
    """The text without what differs between two certificates: serial, validity's moments."""
    return MOMENT.sub("MOMENT", text(message).replace(serial, "SERIAL"))


async def test_an_operator_approves_a_quarantined_ca_in_the_browser(
    scenario_factory: Callable[..., Scenario],
) -> None:
    scenario = scenario_factory()
    web_ca, cli_ca = (
        factory.make_ca("Чужой УЦ Браузер", slot=4),
        factory.make_ca("Чужой УЦ", slot=5),
    )
    web_cert = scenario.participant_certificate(ca=web_ca)
    cli_cert = scenario.participant_certificate(ca=cli_ca)
    web_letter, cli_letter = scenario.add_cert_letter(web_cert), scenario.add_cert_letter(cli_cert)
    for raw in (web_letter, cli_letter):
        scenario.deliver(raw)
    async with running(scenario.config_path):  # the unknown_ca replies and the two alerts
        await wait_for(lambda: len(inbox(scenario, PARTICIPANT)) == 2)
        await wait_for(lambda: len(inbox(scenario, ADMIN)) == 2)
    waiting = {row.serial: row for row in pending_rows(scenario).values()}
    web_row = waiting[web_cert.cert.serial_hex]
    assert cli_cert.cert.serial_hex in waiting
    for ca in (web_ca, cli_ca):
        publish_crl(scenario, ca)
    ca_file = scenario.directory / "browser-ca.cer"
    ca_file.write_bytes(web_ca.der)

    with web_server(scenario.config_path) as server:
        add_web_user(server, "operator", "operator")
        shots = await asyncio.to_thread(approve_in_browser, server.base_url, web_row.id, ca_file)
    for shot in shots:
        assert_png(shot)
    assert pending_rows(scenario).keys() == {waiting[cli_cert.cert.serial_hex].letter_id}

    # The other CA the command line's way, for comparison.
    cli_file = scenario.directory / "cli-ca.cer"
    cli_file.write_bytes(cli_ca.der)
    assert main(["ca", "add", str(cli_file), "--config", str(scenario.config_path)]) == 0
    assert pending_rows(scenario) == {}

    await run_once(scenario)  # the daemon sends both follow-ups
    await wait_for(lambda: len(inbox(scenario, PARTICIPANT)) == 4)
    by_original = {str(m["In-Reply-To"]): m for m in inbox(scenario, PARTICIPANT)[2:]}
    web_followup = by_original[message_id_of(web_letter)]
    cli_followup = by_original[message_id_of(cli_letter)]
    assert text(web_followup).startswith(SUCCESS_PREFIX)
    assert "Сертификат выдан: Иванов Иван Иванович." in text(web_followup)
    assert web_followup["Subject"] == cli_followup["Subject"] == "Re: ADD_CERT"
    assert followup_text(web_followup, web_cert.cert.serial_hex) == followup_text(
        cli_followup, cli_cert.cert.serial_hex
    )
    assert len(inbox(scenario, ADMIN)) == 2  # registering raises no further alert


def approve_in_browser(base_url: str, quarantine_id: int, ca_file: Path) -> list[Path]:
    """Log in, open the quarantine, upload the CA's .cer; screenshots of the dashboard and letter."""
    with headless_chromium() as driver:
        log_in(driver, base_url, "operator")
        settled(driver).until(lambda d: "Сводка" in d.title)
        shots = [save_screenshot(driver, "console-dashboard")]
        element(driver, By.LINK_TEXT, "Карантин").click()
        element(driver, By.CSS_SELECTOR, f'a[href="/quarantine/{quarantine_id}"]').click()
        upload = element(driver, By.ID, "ca_file")
        shots.append(save_screenshot(driver, "console-quarantine"))
        upload.send_keys(str(ca_file))  # the file input, as a person picks the file
        element(driver, By.ID, "register-ca").click()
        registered = f"Карантин № {quarantine_id}: registered"
        settled(driver, 30).until(lambda d: registered in d.find_element(By.TAG_NAME, "h1").text)
        element(driver, By.CSS_SELECTOR, 'a[href^="/letters/"]').click()
        settled(driver).until(lambda d: "Письмо" in d.find_element(By.TAG_NAME, "h1").text)
        shots.append(save_screenshot(driver, "console-letter"))
    return shots
