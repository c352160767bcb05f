"""A tiny sd_notify(3) client: readiness, status, stopping and watchdog pings.

systemd passes ``$NOTIFY_SOCKET`` to a ``Type=notify`` service; a message is
one datagram of ``KEY=value`` lines. Outside systemd the variable is absent and
every function here does nothing, so the daemon calls them unconditionally.
No dependency (python-systemd needs libsystemd headers to build).
"""

from __future__ import annotations

import os
import socket

from mailbot.log import get_logger

log = get_logger(__name__)


def _socket_address() -> str | None:
    """Where to send notifications, or ``None`` when not run by systemd.

    ``@name`` is a socket in the abstract namespace (a leading NUL byte for
    the kernel); anything else must be an absolute path. ``vsock:`` addresses
    (for VMs) are not supported and count as absent.
    """
    value = os.environ.get("NOTIFY_SOCKET", "")
    if value.startswith("@") and len(value) > 1:
        return "\0" + value[1:]
    if value.startswith("/"):
        return value
    return None


def notify(*assignments: str) -> bool:
    """Send ``KEY=value`` lines in one datagram; ``True`` when it was sent.

    A failure is logged and swallowed: a lost notification must never stop
    mail processing (systemd will time out or restart us if it matters).
    """
    address = _socket_address()
    if address is None or not assignments:
        return False
    payload = "\n".join(assignments).encode("utf-8")
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(payload)
    except OSError as exc:
        log.warning("sd_notify_failed", socket=os.environ.get("NOTIFY_SOCKET"), error=str(exc))
        return False
    return True


def _one_line(text: str) -> str:
    # A newline would start a new assignment: a status text could forge READY=1.
    return " ".join(text.split())


def notify_ready(status: str | None = None) -> bool:
    """Tell systemd start-up is complete (``READY=1``), optionally with a status text."""
    if status is None:
        return notify("READY=1")
    return notify("READY=1", f"STATUS={_one_line(status)}")


def notify_status(text: str) -> bool:
    """Set the one-line status shown by ``systemctl status`` (``STATUS=``)."""
    return notify(f"STATUS={_one_line(text)}")


def notify_reloading() -> bool:
    """Tell systemd a SIGHUP reload started; send :func:`notify_ready` when it is done."""
    return notify("RELOADING=1")


def notify_stopping() -> bool:
    """Tell systemd shutdown has begun (``STOPPING=1``)."""
    return notify("STOPPING=1")


def notify_watchdog() -> bool:
    """Keep-alive ping for ``WatchdogSec=`` (``WATCHDOG=1``)."""
    return notify("WATCHDOG=1")


def watchdog_interval() -> float | None:
    """Seconds between watchdog pings, or ``None`` when no watchdog is armed.

    That is half of ``$WATCHDOG_USEC``, as sd_watchdog_enabled(3) recommends,
    so one late ping is not fatal. ``$WATCHDOG_PID``, when set, must be our
    PID: the variables are inherited by children, which must not ping.
    """
    usec = os.environ.get("WATCHDOG_USEC", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    pid = os.environ.get("WATCHDOG_PID", "")
    if pid and (not pid.isdigit() or int(pid) != os.getpid()):
        return None
    return int(usec) / 2 / 1_000_000
