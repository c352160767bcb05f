"""``mailbot doctor`` against real parts: each broken piece is one FAIL line naming it.

Real processes against a real Dovecot and SMTP server (testkit.scenario), a CRL
served over HTTP on loopback; the broken pieces are closed ports, a wrong
password, an empty or old database and a folder path taken by a file.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailbot.cli.exit_codes import EX_FAILURE, EX_IOERR, EX_OK
from mailbot.directory import migrate
from mailbot.directory.authorities import register_ca
from mailbot.directory.engine import make_engine
from mailbot.directory.session import session_factory
from mailbot.doctor import CHECKS
from testkit import pki
from testkit.crl_server import CrlServer
from testkit.scenario import Scenario, build_scenario
from tests.cli.test_run_errors import assert_one_line, broken_config, closed_port, mailbot

pytestmark = [pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def crl_server() -> Iterator[CrlServer]:
    server = CrlServer()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def scenario(crl_server: CrlServer) -> Iterator[Scenario]:
    """A healthy installation, with a CA whose distribution point serves its CRL."""
    built = build_scenario(Path(tempfile.mkdtemp(prefix="mailbot-doctor-")))
    ca = pki.make_ca("УЦ с точкой распространения", slot=3, crl_urls=(crl_server.url,))
    crl_server.crl = pki.make_crl(ca)
    register(built.database_url, ca)
    yield built
    built.close()


def register(database_url: str, ca: pki.Issued) -> None:
    engine = make_engine(database_url)
    with session_factory(engine)() as session:
        register_ca(session, ca.cert)
        session.commit()
    engine.dispose()


def doctor(config: Path) -> subprocess.CompletedProcess[str]:
    return mailbot("doctor", "--config", str(config))


def line_of(result: subprocess.CompletedProcess[str], name: str) -> str:
    """The report line of check *name*."""
    found = [line.strip() for line in result.stdout.splitlines() if f"] {name}:" in line]
    assert len(found) == 1, result.stdout + result.stderr
    return found[0]


def assert_fails(result: subprocess.CompletedProcess[str], name: str, *words: str) -> str:
    """Exit 1 and the FAIL line of *name* holds every one of *words* and a remedy."""
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == EX_FAILURE, result.stdout + result.stderr
    line = line_of(result, name)
    assert line.startswith(f"[FAIL] {name}: "), result.stdout
    assert " — " in line, line
    for word in words:
        assert word in line, result.stdout
    return line


def test_healthy_installation_is_all_ok(scenario: Scenario) -> None:
    result = doctor(scenario.config_path)
    assert result.returncode == EX_OK, result.stdout + result.stderr
    assert "[FAIL]" not in result.stdout
    for name, _check in CHECKS:
        assert line_of(result, name).startswith(f"[ok] {name}: ")
    assert "LOGIN as 'reestrin'" in line_of(result, "imap")
    assert "EHLO" in line_of(result, "smtp")
    assert "1 of 1 URL(s) answer with a CRL" in line_of(result, "crl urls")
    assert "schema at head" in line_of(result, "database")
    assert "valid signatures verify, tampered ones do not" in line_of(result, "gost self-test")


def test_imap_server_down(scenario: Scenario) -> None:
    port = f"port = {scenario.dovecot.imap_port}\n"
    config = broken_config(scenario, port, f"port = {closed_port()}\n", "doctor-imap-down.toml")
    assert_fails(doctor(config), "imap", "connect", "check [imap] host, port and tls")


def test_wrong_imap_password(scenario: Scenario) -> None:
    wrong = scenario.directory / "doctor-wrong-password"
    wrong.write_text("not-the-password\n", encoding="utf-8")
    config = broken_config(
        scenario, "password_file = ", f'password_file = "{wrong}"\n# was: ', "doctor-pw.toml"
    )
    line = assert_fails(doctor(config), "imap", "LOGIN as 'reestrin' refused", "password")
    assert "not-the-password" not in line


def test_smtp_server_down(scenario: Scenario) -> None:
    port = f"port = {scenario.smtp.port}\n"
    config = broken_config(scenario, port, f"port = {closed_port()}\n", "doctor-smtp-down.toml")
    assert_fails(doctor(config), "smtp", "cannot connect", "check [smtp] host, port and tls")


def database_config(scenario: Scenario, url: str, name: str) -> Path:
    return broken_config(scenario, "[database]\n", f'[database]\nurl = "{url}"\n', name)


def test_schema_missing(scenario: Scenario) -> None:
    empty = scenario.directory / "empty.sqlite3"
    make_engine(f"sqlite:///{empty}").connect().close()  # a database file, no tables
    config = database_config(scenario, f"sqlite:///{empty}", "doctor-empty-db.toml")
    result = doctor(config)
    assert_fails(result, "database", "schema missing", "mailbot db upgrade")
    # The CA list lives in the database too: said so, with the same fix.
    assert_fails(result, "crl urls", "cannot read the registered CAs", "mailbot db upgrade")


def test_no_database_file_is_not_created(scenario: Scenario) -> None:
    absent = scenario.directory / "absent" / "mailbot.sqlite3"
    config = database_config(scenario, f"sqlite:///{absent}", "doctor-no-db.toml")
    assert_fails(doctor(config), "database", "schema missing", "mailbot db upgrade")
    assert not absent.parent.exists()


def test_schema_behind(scenario: Scenario) -> None:
    old = scenario.directory / "old.sqlite3"
    engine = make_engine(f"sqlite:///{old}")
    migrate.upgrade(engine, "0001")
    engine.dispose()
    config = database_config(scenario, f"sqlite:///{old}", "doctor-old-db.toml")
    assert_fails(doctor(config), "database", "schema behind", "0001", "mailbot db upgrade")


def test_store_not_writable(scenario: Scenario) -> None:
    # Root writes anywhere it may enter: a file where the folder should be stops even root.
    taken = scenario.directory / "store-is-a-file"
    taken.write_bytes(b"")
    config = broken_config(
        scenario, "[logging]\n", f'[paths]\ncertificate_store = "{taken}"\n\n[logging]\n',
        "doctor-store.toml",
    )  # fmt: skip
    assert_fails(
        doctor(config), "folder paths.certificate_store", "is not a folder", "certificate_store"
    )


def test_crl_url_unreachable(scenario: Scenario) -> None:
    copy = scenario.directory / "dead-cdp.sqlite3"
    shutil.copyfile(scenario.config.general.state_dir / "mailbot.sqlite3", copy)
    dead = f"http://127.0.0.1:{closed_port()}/dead.crl"
    register(f"sqlite:///{copy}", pki.make_ca("УЦ с мёртвой точкой", slot=4, crl_urls=(dead,)))
    config = database_config(scenario, f"sqlite:///{copy}", "doctor-dead-cdp.toml")
    result = doctor(config)
    assert_fails(result, "crl urls", "УЦ с мёртвой точкой", dead, "crl_drop_dir")
    # Only that check failed.
    assert result.stdout.count("[FAIL]") == 1, result.stdout


def test_run_once_creates_missing_folders_private(scenario: Scenario) -> None:
    copy = scenario.directory / "run-once.sqlite3"
    shutil.copyfile(scenario.config.general.state_dir / "mailbot.sqlite3", copy)
    state = scenario.directory / "fresh" / "state"
    kept = scenario.directory / "kept-quarantine"
    kept.mkdir()
    kept.chmod(0o755)  # the administrator's choice: left alone
    text = scenario.config_path.read_text(encoding="utf-8")
    old_state = f'state_dir = "{scenario.config.general.state_dir}"'
    assert old_state in text
    config = scenario.directory / "run-once.toml"
    config.write_text(
        text.replace(old_state, f'state_dir = "{state}"')
        .replace("[database]\n", f'[database]\nurl = "sqlite:///{copy}"\n')
        .replace("[logging]\n", f'[paths]\nquarantine_dir = "{kept}"\n\n[logging]\n'),
        encoding="utf-8",
    )
    result = mailbot("run", "--once", "--config", str(config))
    assert result.returncode == EX_OK, result.stderr
    assert state.stat().st_mode & 0o777 == 0o700
    modes = {p.name: p.stat().st_mode & 0o777 for p in state.iterdir() if p.is_dir()}
    assert modes == {"archive": 0o700, "crl": 0o700, "crl-drop": 0o700, "store": 0o750}
    assert kept.stat().st_mode & 0o777 == 0o755


def test_run_refuses_a_folder_path_taken_by_a_file(scenario: Scenario) -> None:
    taken = scenario.directory / "archive-is-a-file"
    taken.write_bytes(b"")
    config = broken_config(
        scenario, "[logging]\n", f'[paths]\narchive_dir = "{taken}"\n\n[logging]\n',
        "run-archive-file.toml",
    )  # fmt: skip
    result = mailbot("run", "--once", "--config", str(config))
    assert_one_line(result, EX_IOERR, "paths.archive_dir", "not a folder")
