"""``mailbot doctor``'s checks: one table of named checks, run at once, each under a deadline.

Every check is a function of the configuration returning a
:class:`~mailbot.doctor.finding.Finding`. They run in parallel threads (so
a dead IMAP server and a dead CRL mirror cost one wait, not two) and the report
keeps the table's order. A check that does not finish in :data:`CHECK_SECONDS`
is a failure; its thread is a daemon thread and cannot keep the process alive.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable

from mailbot.config import Config
from mailbot.doctor.database import check_database
from mailbot.doctor.finding import Finding, failed, reason
from mailbot.doctor.local_checks import (
    check_folder,
    check_gost_backend,
    check_gost_selftest,
    check_metrics,
    check_python,
    check_rules_and_templates,
    check_system_tools,
)
from mailbot.doctor.network_checks import check_crl_urls, check_imap, check_smtp
from mailbot.folders import FOLDERS

__all__ = ["CHECKS", "CHECK_SECONDS", "Check", "Finding", "run_checks"]

Check = Callable[[Config], Finding]

#: The hard limit of every check (the network ones stop themselves a little earlier).
CHECK_SECONDS = 30.0

#: The checks, in report order: a name and a function.
CHECKS: tuple[tuple[str, Check], ...] = (
    ("python", check_python),
    ("database", check_database),
    *((f"folder {folder.key}", functools.partial(check_folder, folder)) for folder in FOLDERS),
    ("rules and templates", check_rules_and_templates),
    ("imap", check_imap),
    ("smtp", check_smtp),
    ("crl urls", check_crl_urls),
    ("gost hashing", check_gost_backend),
    ("gost self-test", check_gost_selftest),
    ("openssl", check_system_tools),
    ("metrics", check_metrics),
)


def _guarded(check: Check, config: Config) -> Finding:
    """*check*'s finding; a crash of the check is a failed finding, not a crashed doctor."""
    try:
        return check(config)
    except Exception as exc:
        return failed(f"the check crashed: {reason(exc)}", "report this line to the developers")


def run_checks(
    config: Config,
    checks: tuple[tuple[str, Check], ...] = CHECKS,
    seconds: float = CHECK_SECONDS,
) -> list[tuple[str, Finding]]:
    """Run *checks* in parallel; each name with its finding, in table order."""
    found: dict[int, Finding] = {}

    def work(position: int, check: Check) -> None:
        found[position] = _guarded(check, config)

    threads = [
        threading.Thread(target=work, args=(position, check), name=f"doctor-{name}", daemon=True)
        for position, (name, check) in enumerate(checks)
    ]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + seconds
    report = []
    for position, ((name, _check), thread) in enumerate(zip(checks, threads, strict=True)):
        thread.join(max(0.0, deadline - time.monotonic()))
        finding = found.get(position)
        if finding is None:
            finding = failed(
                f"no result within {seconds:g} s",
                "the machine or a server is too slow; run the doctor again",
            )
        report.append((name, finding))
    return report
