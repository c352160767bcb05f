"""``mailbot run`` when something it needs is missing: one line on stderr, a sysexits code.

Real processes against a real Dovecot (testkit.scenario); the broken pieces are
a closed port, a wrong password, an unset variable and an unreachable PostgreSQL.
"""

from __future__ import annotations

import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailbot.cli.exit_codes import EX_CONFIG, EX_UNAVAILABLE
from testkit.scenario import Scenario, build_scenario
from tests.cli.processes import UNSET_VARIABLE, assert_one_line, mailbot

pytestmark = [pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def scenario() -> Iterator[Scenario]:
    built = build_scenario(Path(tempfile.mkdtemp(prefix="mailbot-run-errors-")))
    yield built
    built.close()


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def broken_config(scenario: Scenario, old: str, new: str, name: str) -> Path:
    """The scenario's configuration with one piece replaced."""
    text = scenario.config_path.read_text(encoding="utf-8")
    assert old in text, old
    path = scenario.config_path.with_name(name)
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


def test_imap_server_down(scenario: Scenario) -> None:
    port = f"port = {scenario.dovecot.imap_port}\n"
    config = broken_config(scenario, port, f"port = {closed_port()}\n", "imap-down.toml")
    result = mailbot("run", "--once", "--config", str(config))
    assert_one_line(result, EX_UNAVAILABLE, "IMAP")


def test_wrong_imap_password(scenario: Scenario) -> None:
    wrong = scenario.directory / "wrong-password"
    wrong.write_text("not-the-password\n", encoding="utf-8")
    config = broken_config(
        scenario, "password_file = ", f'password_file = "{wrong}"\n# was: ', "wrong-pw.toml"
    )
    result = mailbot("run", "--once", "--config", str(config))
    assert_one_line(result, EX_UNAVAILABLE, "IMAP", "LOGIN")


@pytest.mark.parametrize("once", [True, False], ids=["once", "daemon"])
def test_missing_password_is_a_configuration_error(scenario: Scenario, once: bool) -> None:
    # Without --once the daemon used to retry this for ever.
    config = broken_config(
        scenario, "password_file = ", f'password_env = "{UNSET_VARIABLE}"\n# was: ', "no-pw.toml"
    )
    result = mailbot("run", *(["--once"] if once else []), "--config", str(config))
    assert_one_line(result, EX_CONFIG, "imap.password", UNSET_VARIABLE)


@pytest.mark.parametrize("once", [True, False], ids=["once", "daemon"])
def test_database_down(scenario: Scenario, once: bool) -> None:
    url = f'url = "postgresql://nobody@127.0.0.1:{closed_port()}/none"\n'
    config = broken_config(scenario, "[database]\n", f"[database]\n{url}", "db-down.toml")
    result = mailbot("run", *(["--once"] if once else []), "--config", str(config))
    assert_one_line(result, EX_UNAVAILABLE, "database")


@pytest.mark.parametrize("where", ["before", "after"])
def test_debug_shows_the_traceback(scenario: Scenario, where: str) -> None:
    config = broken_config(
        scenario, "password_file = ", f'password_env = "{UNSET_VARIABLE}"\n# was: ', "debug.toml"
    )
    command = ["run", "--once", "--config", str(config)]
    result = mailbot(*(["--debug", *command] if where == "before" else [*command, "--debug"]))
    assert "Traceback" in result.stderr
    assert result.returncode == EX_CONFIG
