"""CRL ingest and the calling process's memory: in-process vs worker process.

Run: ``PYTHONPATH=. .venv/bin/python bench/crl_memory.py [--entries 1000000]``.
Each measurement runs in a fresh process that first imports what the daemon
would, then reports its own VmRSS before and after ingesting the same CRL
(a dropped file; the same bytes as if fetched; fetched over HTTP from a
loopback server by ``CachingCrlSource.fresh_index``, as a letter or the
refresh does), its peak (VmHWM, reset just before the ingest where the kernel
allows), the ingest's wall time, and how long a letter's ``revocation_status``
takes once the CRL is indexed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def rss_mb(field: str = "VmRSS") -> float:
    """This process's resident set size (``VmRSS``) or its peak (``VmHWM``) in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field}")


def _make(entries: int, folder: Path) -> None:
    from testkit import pki

    ca = pki.make_ca()
    (folder / "ca.cer").write_bytes(ca.der)
    (folder / "crl.crl").write_bytes(
        pki.make_crl(ca, raw_entries=pki.bulk_entries(entries), number=entries)
    )
    ee = pki.make_end_entity(ca, serial=int.from_bytes(pki.bulk_serial(entries // 2), "big"))
    (folder / "ee.cer").write_bytes(ee.der)
    (folder / "small.crl").write_bytes(pki.make_crl(ca, raw_entries=pki.bulk_entries(10), number=1))


def _start_cost(folder: Path) -> None:
    """Wall time of ingesting a 10-entry CRL in-process and in a worker (median of 5)."""
    import logging
    import statistics

    from mailbot.pki.crl_store import CrlStore
    from mailbot.pki.load import load_certificate

    logging.disable(logging.INFO)
    ca = load_certificate((folder / "ca.cer").read_bytes())
    times = {}
    for mode, below in (("in-process", 1 << 62), ("worker", 0)):
        runs = []
        for i in range(5):
            store = CrlStore(folder / f"small-{mode}-{i}", in_process_below=below)
            start = time.perf_counter()
            store.ingest_file(folder / "small.crl", ca)
            runs.append(time.perf_counter() - start)
        times[mode] = round(statistics.median(runs) * 1000, 1)
    print(json.dumps({"small_crl_ingest_ms": times}))


def _measure(folder: Path, mode: str, source: str, url: str | None = None) -> None:
    from mailbot.pki.crl_fetch import CachingCrlSource, HttpCrlFetcher
    from mailbot.pki.crl_store import CrlStore
    from mailbot.pki.load import load_certificate
    from testkit.pki import NOW

    ca = load_certificate((folder / "ca.cer").read_bytes())
    ee = load_certificate((folder / "ee.cer").read_bytes())
    cache = folder / f"cache-{mode}-{source}"
    below = 1 << 62 if mode == "in-process" else 0
    store = CrlStore(cache, in_process_below=below)
    with contextlib.suppress(OSError):  # VmHWM := VmRSS, so the peak is the ingest's
        Path("/proc/self/clear_refs").write_text("5")
    before = rss_mb()
    start = time.perf_counter()
    if source == "file":
        index = store.ingest_file(folder / "crl.crl", ca)
    elif source == "http":
        assert url is not None
        fetching = CachingCrlSource(store, HttpCrlFetcher(timeout_seconds=120))
        fetched, problem = fetching.fresh_index(ca, NOW, [url])
        assert fetched is not None and problem is None, problem
        index = fetched
    else:
        body = (folder / "crl.crl").read_bytes()  # what the fetcher hands over
        index = store.ingest(body, ca)
        del body
    wall = time.perf_counter() - start
    after, peak = rss_mb(), rss_mb("VmHWM")
    checks = CachingCrlSource(store)
    start = time.perf_counter()
    first = checks.revocation_status(ee, ca, NOW)
    first_ms = (time.perf_counter() - start) * 1000
    rounds = 1000
    start = time.perf_counter()
    for _ in range(rounds):
        checks.revocation_status(ee, ca, NOW)
    each_us = (time.perf_counter() - start) / rounds * 1e6
    assert first.status == "revoked", first
    print(
        json.dumps(
            {
                "mode": mode,
                "source": source,
                "entries": len(index),
                "ingest_s": round(wall, 3),
                "rss_before_mb": round(before, 1),
                "rss_after_mb": round(after, 1),
                "rss_peak_mb": round(peak, 1),
                "worker_peak_mb": round(
                    resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1
                ),
                "status_first_ms": round(first_ms, 3),
                "status_each_us": round(each_us, 1),
            }
        )
    )


def main() -> None:
    from testkit.crl_server import CrlServer

    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--make", type=Path)
    parser.add_argument("--measure", nargs="+", help="FOLDER MODE SOURCE [URL]")
    parser.add_argument("--start-cost", type=Path)
    args = parser.parse_args()
    if args.make:
        _make(args.entries, args.make)
        return
    if args.start_cost:
        _start_cost(args.start_cost)
        return
    if args.measure:
        _measure(Path(args.measure[0]), *args.measure[1:])
        return
    folder = Path(tempfile.mkdtemp(prefix="crl-memory-"))
    try:
        me = [sys.executable, __file__]
        subprocess.run([*me, "--entries", str(args.entries), "--make", str(folder)], check=True)
        size = (folder / "crl.crl").stat().st_size
        print(f"CRL: {args.entries} entries, {size / 1e6:.1f} MB")
        subprocess.run([*me, "--start-cost", str(folder)], check=True)
        server = CrlServer()
        server.crl = (folder / "crl.crl").read_bytes()
        try:
            for mode in ("in-process", "worker"):
                for source in ("file", "bytes", "http"):
                    url = [server.url] if source == "http" else []
                    subprocess.run([*me, "--measure", str(folder), mode, source, *url], check=True)
        finally:
            server.stop()
    finally:
        shutil.rmtree(folder)


if __name__ == "__main__":
    main()
