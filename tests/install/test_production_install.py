"""scripts/install-production.sh, run for real into a temporary root.

Everything is real except apt-get (a script that records what it was asked for:
the test must not install Debian packages on the machine running it). The
service user is really created, under a random name, and removed afterwards;
the installed unit's commands are run as that user against the test Dovecot and
SMTP server.
"""

from __future__ import annotations

import grp
import json
import os
import pwd
import secrets
import shlex
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from testkit import letters as L  # noqa: N812
from testkit.dovecot import DovecotServer
from testkit.scenario import FUND, write_config
from testkit.smtpd import SmtpServer
from tests.daemon.test_systemd_units import one, parse_unit

REPO = Path(__file__).resolve().parents[2]
INSTALLER = REPO / "scripts" / "install-production.sh"
#: What the service may need from Debian, and nothing else.
PACKAGES = {"python3-venv", "openssl", "libengine-gost-openssl"}

pytestmark = pytest.mark.slow


@dataclass
class Installation:
    """A finished run of the installer."""

    root: Path
    user: str
    apt_log: Path
    output: str

    @property
    def venv(self) -> Path:
        return self.root / "opt/mailbot/venv"

    @property
    def etc(self) -> Path:
        return self.root / "etc/mailbot"

    @property
    def state(self) -> Path:
        return self.root / "var/lib/mailbot"

    def unit(self, name: str) -> dict[str, dict[str, list[str]]]:
        return parse_unit(self.root / "etc/systemd/system" / name)

    def run_installer(self) -> str:
        env = {k: v for k, v in os.environ.items() if k != "MAILBOT_CONFIG"}
        env |= {
            "MAILBOT_ROOT": str(self.root),
            "MAILBOT_USER": self.user,
            "APT_GET": str(self.apt_log.with_suffix(".sh")),
        }
        result = subprocess.run(
            [str(INSTALLER)], capture_output=True, text=True, timeout=300, env=env, check=False
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    def as_user(self, command: list[str], **env: str) -> subprocess.CompletedProcess[str]:
        """*command* as the service user, in its state folder, with a bare environment."""
        return subprocess.run(
            ["setpriv", f"--reuid={self.user}", f"--regid={self.user}", "--init-groups", "--",
             *command],
            capture_output=True, text=True, timeout=120, check=False, cwd=self.state,
            env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", **env},
        )  # fmt: skip


def _prerequisites() -> str | None:
    """Why this machine cannot run the test, or None."""
    if os.geteuid() != 0:
        return "the installer creates a system user: run as root"
    for tool in ("setpriv", "useradd", "userdel"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    venv_module = subprocess.run(
        ["/usr/bin/python3", "-c", "import ensurepip, venv"], capture_output=True, check=False
    )
    if venv_module.returncode != 0:
        return "/usr/bin/python3 has no venv module (Debian package python3-venv)"
    return None


@pytest.fixture(scope="module")
def installation() -> Iterator[Installation]:
    """The installer run once into a fresh root, with a fresh user, both removed after."""
    reason = _prerequisites()
    if reason:
        pytest.skip(reason)
    # In /tmp, traversable by the service user (pytest's own folders are 0700).
    root = Path(tempfile.mkdtemp(prefix="mailbot-install-", dir="/tmp"))
    root.chmod(0o755)
    apt_log = root / "apt-get.log"
    fake_apt = apt_log.with_suffix(".sh")
    fake_apt.write_text(f'#!/bin/sh\necho "$*" >> {shlex.quote(str(apt_log))}\n')
    fake_apt.chmod(0o755)
    user = f"mbt{secrets.token_hex(4)}"
    installed = Installation(root / "root", user, apt_log, "")
    try:
        installed.output = installed.run_installer()
        yield installed
    finally:
        subprocess.run(["userdel", user], capture_output=True, check=False)
        subprocess.run(["groupdel", user], capture_output=True, check=False)
        shutil.rmtree(root)


def test_only_the_packages_mailbot_needs_are_asked_for(installation: Installation) -> None:
    calls = installation.apt_log.read_text().splitlines()
    install = [c.split() for c in calls if " install " in f" {c} "]
    assert len(install) == 1, calls
    arguments = install[0][install[0].index("install") + 1 :]
    assert {word for word in arguments if not word.startswith("-")} == PACKAGES
    for call in calls:
        assert "dovecot" not in call and "postgres" not in call, call


#: Run by the venv's Python: where mailbot is, how it was installed, what else is there.
_INSPECT = """
import importlib.metadata as m, json
mailbot = m.distribution("mailbot")
print(json.dumps({
    "location": str(mailbot.locate_file("")),
    "direct_url": mailbot.read_text("direct_url.json") or "",
    "names": sorted(d.metadata["Name"].lower() for d in m.distributions()),
}))
"""


def test_the_venv_holds_an_installed_wheel_without_test_tools(installation: Installation) -> None:
    python = str(installation.venv / "bin/python")
    found = json.loads(
        subprocess.run(
            [python, "-c", _INSPECT], capture_output=True, text=True, check=True, cwd="/"
        ).stdout
    )
    site = Path(found["location"])
    assert site.is_relative_to(installation.venv)
    direct_url = json.loads(found["direct_url"] or "{}")
    assert not direct_url.get("dir_info", {}).get("editable"), direct_url
    assert not list(site.glob("__editable__*"))
    for pth in site.glob("*.pth"):
        assert str(REPO) not in pth.read_text(), f"{pth} points at the checkout"
    assert (site / "mailbot" / "cli" / "main.py").is_file()
    assert "mailbot" in found["names"]
    for tool in ("pytest", "hypothesis", "mypy", "ruff", "aiosmtpd"):
        assert tool not in found["names"], f"{tool} is installed in production"
    helped = subprocess.run(
        [str(installation.venv / "bin/mailbot"), "--help"], capture_output=True, text=True,
        check=False, cwd=installation.root,
    )  # fmt: skip
    assert helped.returncode == 0 and "check-config" in helped.stdout


def test_user_folders_and_modes(installation: Installation) -> None:
    account = pwd.getpwnam(installation.user)
    assert account.pw_shell == "/usr/sbin/nologin"
    assert account.pw_dir == str(installation.state)
    assert grp.getgrgid(account.pw_gid).gr_name == installation.user

    def owner_and_mode(path: Path) -> tuple[str, str, int]:
        info = path.stat()
        mode = stat.S_IMODE(info.st_mode)
        return pwd.getpwuid(info.st_uid).pw_name, grp.getgrgid(info.st_gid).gr_name, mode

    user = installation.user
    assert owner_and_mode(installation.etc) == ("root", user, 0o750)
    assert owner_and_mode(installation.etc / "config.toml") == ("root", user, 0o640)
    assert owner_and_mode(installation.state) == (user, user, 0o700)
    assert (installation.etc / "config.toml").read_bytes() == (
        REPO / "config.example.toml"
    ).read_bytes()


def test_units_point_at_the_installation(installation: Installation) -> None:
    mailbot = installation.venv / "bin/mailbot"
    config = installation.etc / "config.toml"
    daemon = installation.unit("mailbot.service")
    assert one(daemon, "Service", "ExecStart") == f"{mailbot} run --config {config}"
    assert one(daemon, "Service", "User") == installation.user
    once = installation.unit("mailbot-once.service")
    assert one(once, "Service", "ExecStartPre") == (
        f"{mailbot} check-config --check-secrets {config}"
    )
    assert (installation.root / "etc/systemd/system/mailbot-once.timer").is_file()
    web = installation.unit("mailbot-web.service")
    assert one(web, "Service", "ExecStart") == f"{mailbot} web --config {config}"
    assert one(web, "Service", "User") == installation.user
    # The console's templates and stylesheet ship with the wheel, beside the reply templates.
    shipped = installation.venv / "share/mailbot/templates/web"
    assert (shipped / "base.html").is_file()
    assert (shipped / "static/mailbot.css").is_file()
    documentation = one(daemon, "Unit", "Documentation").removeprefix("file://")
    assert Path(documentation).is_file()


def test_the_installed_program_runs_one_pass_as_the_service_user(
    installation: Installation, dovecot: DovecotServer, smtp_server: SmtpServer
) -> None:
    """The timer's unit, as systemd would run it: its check, then one pass over the mailbox."""
    etc, user = installation.etc, installation.user
    # What an administrator does after the installer: point the configuration at the
    # mail server (here the test's) and give the service its password.
    write_config(etc, dovecot, smtp_server, state_dir=installation.state)
    (etc / "mailbot.toml").replace(etc / "config.toml")
    for name in ("config.toml", "imap-password"):
        os.chown(etc / name, 0, grp.getgrnam(user).gr_gid)
        (etc / name).chmod(0o640)
    unit = installation.unit("mailbot-once.service")
    check = shlex.split(one(unit, "Service", "ExecStartPre"))
    checked = installation.as_user(check)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"{etc / 'config.toml'}: OK" in checked.stdout
    assert f"templates: {installation.venv / 'share/mailbot/templates'}" in checked.stdout

    mailbot = str(installation.venv / "bin/mailbot")
    migrated = installation.as_user(
        [mailbot, "db", "upgrade", "--config", str(etc / "config.toml")]
    )
    assert migrated.returncode == 0, migrated.stderr
    dovecot.expunge_all(FUND)
    dovecot.deliver(FUND, L.no_attachment_letter(sender="stranger@example.test"))
    ran = installation.as_user(shlex.split(one(unit, "Service", "ExecStart")))
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert dovecot.message_count(FUND) == 0, "the letter was not taken from the INBOX"
    database = installation.state / "mailbot.sqlite3"
    assert database.stat().st_uid == pwd.getpwnam(user).pw_uid
    journal = installation.as_user(
        [mailbot, "letter", "list", "--format", "json", "--config", str(etc / "config.toml")]
    )
    assert journal.returncode == 0, journal.stderr
    assert "stranger@example.test" in journal.stdout
    doctor = installation.as_user([mailbot, "doctor", "--config", str(etc / "config.toml")])
    shipped = installation.venv / "share/mailbot"
    assert f"[ok] rules and templates: rules {shipped / 'rules'}" in doctor.stdout, doctor.stdout


def test_the_installed_program_refuses_without_a_configuration(
    installation: Installation,
) -> None:
    """No --config, no $MAILBOT_CONFIG: /etc/mailbot/config.toml or exit 78, nothing else."""
    if Path("/etc/mailbot/config.toml").exists():
        pytest.skip("/etc/mailbot/config.toml exists on this machine")
    result = installation.as_user([str(installation.venv / "bin/mailbot"), "db", "upgrade"])
    assert result.returncode == 78, result.stdout + result.stderr
    assert "/etc/mailbot/config.toml does not exist" in result.stderr
    # The old built-in default: a "state" folder wherever the command started.
    assert not (installation.state / "state").exists()


def test_a_second_run_keeps_the_configuration(installation: Installation) -> None:
    config = installation.etc / "config.toml"
    config.write_text(config.read_text() + "\n# edited by the administrator\n")
    before = config.stat()
    output = installation.run_installer()
    assert "writing" not in output
    assert config.read_text().endswith("# edited by the administrator\n")
    assert stat.S_IMODE(config.stat().st_mode) == stat.S_IMODE(before.st_mode)
    assert (installation.venv / "bin/mailbot").is_file()
