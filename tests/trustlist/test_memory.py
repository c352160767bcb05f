"""Memory stays flat: reading a 100 MB list costs a child process no more than a 25 MB one."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from testkit import trust_list as tl

REPO = Path(__file__).resolve().parents[2]
MB = 1024 * 1024


def read_in_child(path: Path) -> dict[str, Any]:
    return in_child("tests.trustlist.read_rss_child", str(path))


def in_child(module: str, *arguments: str) -> dict[str, Any]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    child = subprocess.run(
        [sys.executable, "-m", module, *arguments],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=240,
        check=False,
    )
    assert child.returncode == 0, child.stderr[-2000:]
    report: dict[str, Any] = json.loads(child.stdout.strip().splitlines()[-1])
    return report


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while chunk := source.read(MB):
            digest.update(chunk)
    return digest.hexdigest()


@pytest.mark.slow
def test_reading_a_100_mb_list_keeps_memory_flat(tmp_path: Path) -> None:
    """Peak RSS is far below the file size and does not grow from 25 MB to 100 MB.

    Fat certificates (30 KB of padding each) keep the certificate count, hence the
    parsing time, low; the XML, base64 and per-authority work are the real ones.
    """
    reports = {}
    for size_mb in (25, 100):
        path = tmp_path / f"tsl-{size_mb}.xml"
        written = tl.write_large_trust_list(path, size_mb * MB, padding=30_000)
        assert path.stat().st_size == written.size >= size_mb * MB
        report = read_in_child(path)
        assert report["authorities"] == written.authorities
        assert report["certificates"] == written.certificates
        assert report["problems"] == 0
        assert report["size"] == written.size
        assert report["sha256"] == sha256_of(path)
        reports[size_mb] = report
        path.unlink()

    small, large = reports[25], reports[100]
    growth = (large["peak_kib"] - large["rss_before_kib"]) * 1024
    assert growth < 20 * MB, f"reading 100 MB grew the process by {growth / MB:.1f} MB"
    assert large["peak_kib"] * 1024 < 100 * MB
    # Not growing with the file: four times the data, (almost) the same peak.
    assert large["peak_kib"] - small["peak_kib"] < 8 * 1024, (small, large)


@pytest.mark.slow
def test_importing_a_100_mb_list_keeps_memory_flat(tmp_path: Path) -> None:
    """The import (SQLite, policy ``accredited``) holds one authority at a time too.

    Its peak grows by less than a fifth of the file from 25 MB to 100 MB: the
    certificates go to the database, not into a session or a report that
    keeps them.
    """
    reports = {}
    for size_mb in (25, 100):
        path = tmp_path / f"tsl-{size_mb}.xml"
        written = tl.write_large_trust_list(path, size_mb * MB, padding=30_000)
        state = tmp_path / f"state-{size_mb}"
        state.mkdir()
        report = in_child("tests.trustlist.import_rss_child", str(path), str(state))
        assert report["authorities"] == written.authorities
        assert report["certificates"] == written.certificates
        assert report["cas_added"] == written.authorities
        assert report["registered"] > 0
        reports[size_mb] = report
        path.unlink()

    small, large = reports[25], reports[100]
    growth = large["peak_kib"] - small["peak_kib"]
    assert growth * 1024 < 15 * MB, f"75 MB more of list cost {growth / 1024:.1f} MB more"
    assert large["peak_kib"] * 1024 < 150 * MB, large
