"""Processes seen through ``/proc``: a daemon's children, and whether one is gone."""

from __future__ import annotations

import time
from pathlib import Path

#: What the daemon's decision process has on its command line.
DECIDE_WORKER = "mailbot.daemon.decide_worker"


def _stat(pid: int) -> list[str] | None:
    """``/proc/PID/stat`` after the command name: state, ppid, ... (None when gone)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return text[text.rindex(")") + 2 :].split()


def alive(pid: int) -> bool:
    """True while *pid* exists and is not a zombie (killed, waiting to be reaped)."""
    fields = _stat(pid)
    return fields is not None and fields[0] not in ("Z", "X")


def children(parent: int, marker: str = DECIDE_WORKER) -> list[int]:
    """Live processes whose parent is *parent* and whose command line contains *marker*."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        fields = _stat(pid)
        if fields is None or int(fields[1]) != parent or not alive(pid):
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if marker in command:
            found.append(pid)
    return found


def wait_for_child(parent: int, marker: str = DECIDE_WORKER, timeout: float = 30) -> int:
    """The one child of *parent* with *marker* on its command line, once it runs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = children(parent, marker)
        if len(found) == 1:
            return found[0]
        time.sleep(0.05)
    raise AssertionError(f"no single {marker} child of {parent} within {timeout} s")


def wait_gone(pid: int, timeout: float) -> None:
    """Wait until *pid* is gone (or a zombie); AssertionError after *timeout* seconds."""
    deadline = time.monotonic() + timeout
    while alive(pid):
        if time.monotonic() > deadline:
            raise AssertionError(f"process {pid} still runs after {timeout} s")
        time.sleep(0.05)
