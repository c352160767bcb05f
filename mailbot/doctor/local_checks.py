"""The doctor's checks of this machine: versions, folders, GOST, the metrics endpoint."""

from __future__ import annotations

import http.client
import shutil
import ssl
import stat
import sys
from pathlib import Path

from mailbot.config import Config
from mailbot.doctor.finding import Finding, failed, passed
from mailbot.folders import Folder, probe_writable
from mailbot.pki.selftest import VECTORS, run_selftest


def check_python(_config: Config) -> Finding:
    """Interpreter and OpenSSL versions."""
    return passed(f"{sys.version.split()[0]}, {ssl.OPENSSL_VERSION}")


def _nearest_existing(path: Path) -> Path:
    """*path* or its nearest ancestor that exists."""
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_folder(folder: Folder, config: Config) -> Finding:
    """*folder* exists (or ``mailbot run`` can create it) and a file can be written in it."""
    path = folder.path(config)
    target = _nearest_existing(path)
    if not target.is_dir():
        return failed(
            f"{target} is not a folder",
            f"remove or rename {target}, or set {folder.key} to a folder",
        )
    try:
        probe_writable(target)
    except OSError as exc:
        return failed(
            f"{target}: cannot create a file in it ({exc.strerror or exc})",
            "make it writable by the service's user (e.g. chown mailbot:mailbot, chmod u+rwx)",
        )
    if target != path:
        return passed(f"{path} missing; `mailbot run` creates it with mode {folder.mode:04o}")
    mode = stat.S_IMODE(path.stat().st_mode)
    note = "; others may enter it: chmod o-rwx" if mode & stat.S_IRWXO else ""
    return passed(f"{path} writable (mode {mode:04o}){note}")


def check_rules_and_templates(config: Config) -> Finding:
    """The configured rules and templates folders exist."""
    missing = [str(p) for p in (config.rules_dir, config.templates_dir) if not p.is_dir()]
    if missing:
        return failed("missing: " + ", ".join(missing), "fix paths.rules_dir / paths.templates_dir")
    return passed(f"rules {config.rules_dir}, templates {config.templates_dir}")


def check_system_tools(_config: Config) -> Finding:
    """OpenSSL command line (used by administrators and benchmarks)."""
    found = shutil.which("openssl")
    if found is None:
        return failed("openssl not on PATH", "install the openssl package")
    return passed(found)


def check_gost_backend(_config: Config) -> Finding:
    """Which GOST hashing backend is active, and the signature implementation."""
    from mailbot.pki.gost import hashing

    active = hashing.backend()
    ok = active.name == "openssl-gostprov"
    algos = ", ".join(sorted(active.algorithms))
    return passed(
        f"hashing: {active.name} [{algos}] ({active.detail}); "
        "signatures: mailbot pure-Python GOST R 34.10 (Jacobian, precomputed base table)"
        + ("" if ok else "; WARNING: slow hashing, install libengine-gost-openssl")
    )


def check_gost_selftest(_config: Config) -> Finding:
    """Known answers: fixed GOST certificates verify, their tampered copies do not."""
    problems = run_selftest()
    if problems:
        return failed(
            "; ".join(problems),
            "the GOST code or a library it uses is broken: reinstall mailbot "
            "(scripts/install-system-deps.sh) and report this line",
        )
    names = ", ".join(vector.name for vector in VECTORS)
    return passed(f"{names}: valid signatures verify, tampered ones do not")


def check_metrics(config: Config) -> Finding:
    """The ``[metrics]`` endpoint: disabled, served by a running daemon, free, or taken."""
    if not config.metrics.enabled:
        return passed("disabled ([metrics] enabled = false)")
    host, port = config.metrics.address
    url = f"http://{config.metrics.listen}/metrics"
    connection = http.client.HTTPConnection(host, port, timeout=2)
    try:
        connection.request("GET", "/metrics")
        response = connection.getresponse()
        body = response.read(1 << 20)
    except ConnectionRefusedError:
        # Nothing listens: normal when the daemon is stopped or runs from the timer.
        return passed(f"{url}: not answering (daemon not running?)")
    except (OSError, http.client.HTTPException) as exc:
        return failed(f"{url}: {type(exc).__name__}: {exc}", "check [metrics] listen")
    finally:
        connection.close()
    if response.status == 200 and b"mailbot_up" in body:
        return passed(f"{url}: answering")
    # Someone else's server on our port: the daemon would fail to bind.
    return failed(
        f"{url}: another program answers (HTTP {response.status})",
        "choose a free port in [metrics] listen",
    )
