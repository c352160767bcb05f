"""The systemd units: they pass ``systemd-analyze verify`` and keep the settings we rely on."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from mailbot.cli.exit_codes import EX_CONFIG
from tests.logs import _captured_logs  # noqa: F401  (autouse, as in its old folder)

UNITS = Path(__file__).resolve().parents[2] / "systemd"
EXEC = "/opt/mailbot/venv/bin/mailbot"

Unit = dict[str, dict[str, list[str]]]


def parse_unit(path: Path) -> Unit:
    """Sections → key → every value (systemd allows repeated keys)."""
    sections: Unit = {}
    current: dict[str, list[str]] | None = None
    pending = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = pending + raw.strip()
        pending = ""
        if not line or line[0] in "#;":
            continue
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None, f"{path.name}: {line!r} outside a section"
        key, separator, value = line.partition("=")
        assert separator, f"{path.name}: {line!r} is not key=value"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def one(unit: Unit, section: str, key: str) -> str:
    values = unit[section].get(key)
    assert values, f"[{section}] {key}= is missing"
    return values[-1]


HARDENING = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes",
    "ProtectKernelLogs": "yes",
    "ProtectControlGroups": "yes",
    "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
    "ReadWritePaths": "/var/lib/mailbot",
    "StateDirectory": "mailbot",
    # Letters and certificates are personal data: the installer makes it 0700 too.
    "StateDirectoryMode": "0700",
    "User": "mailbot",
    "Group": "mailbot",
    "EnvironmentFile": "-/etc/mailbot/env",
    "KillSignal": "SIGTERM",
    "CapabilityBoundingSet": "",
}


@pytest.mark.parametrize("name", ["mailbot.service", "mailbot-once.service"])
def test_both_services_are_hardened_alike(name: str) -> None:
    service = parse_unit(UNITS / name)["Service"]
    for key, value in HARDENING.items():
        assert service.get(key, [None])[-1] == value, f"{name}: {key}"
    assert "TimeoutStopSec" in service
    # ProtectSystem=strict makes everything else read-only: nothing else may be writable.
    assert service["ReadWritePaths"] == ["/var/lib/mailbot"]


def test_daemon_unit() -> None:
    unit = parse_unit(UNITS / "mailbot.service")
    assert one(unit, "Service", "Type") == "notify"
    assert one(unit, "Service", "ExecStart") == f"{EXEC} run --config /etc/mailbot/config.toml"
    assert one(unit, "Service", "ExecReload") == "/bin/kill -HUP $MAINPID"
    assert one(unit, "Service", "Restart") == "on-failure"
    # A broken configuration stops at start-up and is not restarted (mailbot.cli.exit_codes).
    assert (
        one(unit, "Service", "ExecStartPre")
        == f"{EXEC} check-config --check-secrets /etc/mailbot/config.toml"
    )
    assert one(unit, "Service", "RestartPreventExitStatus") == str(EX_CONFIG)
    assert one(unit, "Service", "WatchdogSec")
    assert one(unit, "Service", "NotifyAccess") == "main"
    assert one(unit, "Install", "WantedBy") == "multi-user.target"
    assert "network-online.target" in one(unit, "Unit", "After")


def test_cron_style_units() -> None:
    service = parse_unit(UNITS / "mailbot-once.service")
    assert one(service, "Service", "Type") == "oneshot"
    assert (
        one(service, "Service", "ExecStart")
        == f"{EXEC} run --once --config /etc/mailbot/config.toml"
    )
    # The same start-up check as the daemon: a broken configuration fails before the pass.
    assert (
        one(service, "Service", "ExecStartPre")
        == f"{EXEC} check-config --check-secrets /etc/mailbot/config.toml"
    )
    assert "Install" not in service, "the timer starts it; it is not enabled itself"
    timer = parse_unit(UNITS / "mailbot-once.timer")
    assert one(timer, "Timer", "OnCalendar") == "*:0/5"
    assert one(timer, "Timer", "Persistent") == "true"
    assert one(timer, "Unit", "Conflicts") == "mailbot.service"
    assert one(timer, "Install", "WantedBy") == "timers.target"


def test_readme_names_every_unit() -> None:
    readme = (UNITS / "README.md").read_text(encoding="utf-8")
    for unit in UNITS.glob("mailbot*"):
        assert unit.name in readme


def test_systemd_analyze_verify(tmp_path: Path) -> None:
    """``systemd-analyze verify`` of the shipped units (see :func:`analyze_verify`)."""
    units = {p.name: p.read_text(encoding="utf-8") for p in UNITS.glob("mailbot*")}
    analyze_verify(tmp_path, units, (EXEC, "/bin/kill"))


def test_backup_units_in_the_admin_guide_verify(tmp_path: Path) -> None:
    """The guide's daily backup service and timer are units systemd accepts as they are."""
    guide = (UNITS.parent / "docs" / "admin-guide.ru.md").read_text(encoding="utf-8")
    units = dict(
        re.findall(r"`/etc/systemd/system/(mailbot-[\w.-]+)`:\n\n```ini\n(.*?)```", guide, re.S)
    )
    assert sorted(units) == ["mailbot-backup.service", "mailbot-backup.timer"]
    service = units["mailbot-backup.service"]
    assert f"exec {EXEC} backup --config /etc/mailbot/config.toml" in service
    analyze_verify(tmp_path, units, (EXEC, "/bin/sh", "/usr/bin/find"))


def analyze_verify(tmp_path: Path, units: dict[str, str], programs: tuple[str, ...]) -> None:
    """``systemd-analyze verify`` in a scratch root holding the programs the units run.

    A scratch root, because verify insists that ExecStart's program exists and
    /opt/mailbot is not installed on development machines; the root gets the
    system's unit directory (for multi-user.target and friends) and stubs.
    """
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze is not installed (Debian package 'systemd')")
    system_units = Path("/usr/lib/systemd/system")
    if not (system_units / "multi-user.target").exists():
        pytest.skip(f"{system_units} lacks multi-user.target; cannot build a scratch root")
    root = tmp_path / "root"
    shutil.copytree(system_units, root / "usr/lib/systemd/system", symlinks=True)
    for program in programs:
        stub = root / program.lstrip("/")
        stub.parent.mkdir(parents=True, exist_ok=True)
        stub.write_text("#!/bin/sh\nexit 0\n")
        stub.chmod(0o755)
    target = root / "etc/systemd/system"
    target.mkdir(parents=True)
    names = sorted(units)
    for name in names:
        (target / name).write_text(units[name], encoding="utf-8")
    result = subprocess.run(
        [tool, "verify", f"--root={root}", *(f"/etc/systemd/system/{n}" for n in names)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    output = (result.stdout + result.stderr).strip()
    assert result.returncode == 0, output
    # Unknown keys and bad values are only warnings (exit code 0): none is allowed.
    assert output == "", output
