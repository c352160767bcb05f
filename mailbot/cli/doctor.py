"""``mailbot doctor``: what this installation can do, and what is missing.

Each check is a small function returning a :class:`Finding`; other modules add
theirs to :data:`CHECKS` (for instance the PKI's hashing backend).
"""

from __future__ import annotations

import argparse
import shutil
import ssl
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text

from mailbot import __version__
from mailbot.cli.common import add_config_option, config_from_args
from mailbot.config import Config


@dataclass(frozen=True)
class Finding:
    """One line of the report."""

    name: str
    ok: bool
    detail: str


def check_python(_config: Config) -> Finding:
    """Interpreter and OpenSSL versions."""
    return Finding("python", True, f"{sys.version.split()[0]}, {ssl.OPENSSL_VERSION}")


def check_database(config: Config) -> Finding:
    """The database answers a trivial query."""
    from mailbot.directory.engine import engine_from_config

    try:
        engine = engine_from_config(config)
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as exc:  # any driver error is a finding, not a crash
        return Finding("database", False, f"{config.database_url}: {type(exc).__name__}: {exc}")
    return Finding("database", True, config.database_url)


def check_directories(config: Config) -> Finding:
    """The configured rules and templates folders exist."""
    missing = [str(p) for p in (config.rules_dir, config.templates_dir) if not p.is_dir()]
    if missing:
        return Finding("folders", False, "missing: " + ", ".join(missing))
    return Finding("folders", True, f"rules {config.rules_dir}, templates {config.templates_dir}")


def check_system_tools(_config: Config) -> Finding:
    """OpenSSL command line (used by administrators and benchmarks)."""
    found = shutil.which("openssl")
    return Finding("openssl", found is not None, found or "openssl not on PATH")


def check_gost_backend(_config: Config) -> Finding:
    """Which GOST hashing backend is active, and the signature implementation."""
    from mailbot.pki.gost import hashing

    active = hashing.backend()
    ok = active.name == "openssl-gostprov"
    algos = ", ".join(sorted(active.algorithms))
    return Finding(
        "gost",
        True,
        f"hashing: {active.name} [{algos}] ({active.detail}); "
        "signatures: mailbot pure-Python GOST R 34.10 (Jacobian, precomputed base table)"
        + ("" if ok else "; WARNING: slow hashing, install libengine-gost-openssl"),
    )


def check_metrics(config: Config) -> Finding:
    """The ``[metrics]`` endpoint: disabled, served by a running daemon, free, or taken."""
    import http.client

    if not config.metrics.enabled:
        return Finding("metrics", True, "disabled ([metrics] enabled = false)")
    host, port = config.metrics.address
    url = f"http://{config.metrics.listen}/metrics"
    connection = http.client.HTTPConnection(host, port, timeout=2)
    try:
        connection.request("GET", "/metrics")
        response = connection.getresponse()
        body = response.read(1 << 20)
    except ConnectionRefusedError:
        # Nothing listens: normal when the daemon is stopped or runs from the timer.
        return Finding("metrics", True, f"{url}: not answering (daemon not running?)")
    except (OSError, http.client.HTTPException) as exc:
        return Finding("metrics", False, f"{url}: {type(exc).__name__}: {exc}")
    finally:
        connection.close()
    if response.status == 200 and b"mailbot_up" in body:
        return Finding("metrics", True, f"{url}: answering")
    # Someone else's server on our port: the daemon would fail to bind.
    return Finding("metrics", False, f"{url}: another program answers (HTTP {response.status})")


#: The checks, in report order. Modules may append their own.
CHECKS: list[Callable[[Config], Finding]] = [
    check_python,
    check_database,
    check_directories,
    check_system_tools,
    check_gost_backend,
    check_metrics,
]


def register(subparsers: Any) -> None:
    """Add ``doctor``."""
    parser = subparsers.add_parser(
        "doctor",
        help="report what this installation can do",
        description="Report versions, backends (e.g. GOST hashing) and reachability. "
        "Exits 1 when a check fails.",
    )
    add_config_option(parser)
    parser.set_defaults(handler=doctor)


def doctor(args: argparse.Namespace) -> int:
    """Run every check and print one line each."""
    config = config_from_args(args)
    print(f"mailbot {__version__}")
    failed = False
    for check in CHECKS:
        finding = check(config)
        failed |= not finding.ok
        print(f"  [{'ok' if finding.ok else 'FAIL'}] {finding.name}: {finding.detail}")
    return 1 if failed else 0
