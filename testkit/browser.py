"""A real headless Chromium for the web console's browser tests.

Debian's ``chromium`` and ``chromium-driver`` (installed by
``scripts/install-system-deps.sh``), driven by Selenium. The driver's path is
given explicitly, so Selenium Manager never tries to download a browser.
Screenshots go to the test artefacts folder (``MAILBOT_TEST_ARTIFACTS``,
default ``.test-artifacts/`` at the top of the checkout), which CI keeps.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


def browser_missing() -> str | None:
    """Why a browser test cannot run here (``None``: it can)."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if shutil.which(path) is None:
            return f"{path} is not installed (scripts/install-system-deps.sh installs it)"
    return None


@contextmanager
def headless_chromium(width: int = 1280, height: int = 900) -> Iterator[webdriver.Chrome]:
    """A fresh headless Chromium (own profile, no cookies), quit on exit."""
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",  # the tests may run as root, where Chromium's sandbox refuses
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-extensions",
        "--no-first-run",
        f"--window-size={width},{height}",
        "--lang=ru-RU",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def artefacts_dir() -> Path:
    """Where tests leave screenshots for people to look at."""
    default = Path(__file__).resolve().parent.parent / ".test-artifacts"
    folder = Path(os.environ.get("MAILBOT_TEST_ARTIFACTS", default))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def save_screenshot(driver: webdriver.Chrome, name: str) -> Path:
    """A PNG of the current page in the artefacts folder; returns its path."""
    path = artefacts_dir() / f"{name}.png"
    if not driver.save_screenshot(str(path)):
        raise RuntimeError(f"screenshot {name} was not written")
    return path
