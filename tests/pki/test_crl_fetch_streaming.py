"""A downloaded CRL goes to a private temporary file, never whole into memory, and is indexed there.

The temporary file lies in the cache folder; whatever happens (a CRL indexed,
refused, a 304, a timeout, a worker killed) none is left behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mailbot.pki.crl_fetch import CachingCrlSource, HttpCrlFetcher
from mailbot.pki.crl_store import CrlStore
from mailbot.pki.errors import CrlError, CrlFetchError, CrlWorkerError
from testkit import pki
from testkit.crl_server import CrlServer as PlainCrlServer
from testkit.crl_server import SlowServer

from .conftest import CrlServer, Route

T = 2.0  # the fetch budget where a test waits for a deadline
REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(120)


def leftovers(cache: Path) -> list[str]:
    """Temporary files in the cache folder."""
    return (
        sorted(p.name for p in cache.iterdir() if p.name.startswith(".tmp"))
        if cache.is_dir()
        else []
    )


def source_for(
    cache: Path, *, max_bytes: int = 10_000_000, store_max: int = 10_000_000, timeout: float = 10
) -> CachingCrlSource:
    """A CRL source over a fresh cache, fetching with these limits."""
    fetcher = HttpCrlFetcher(timeout_seconds=timeout, max_bytes=max_bytes)
    return CachingCrlSource(CrlStore(cache, store_max), fetcher)


@pytest.fixture
def slow() -> Iterator[Callable[..., SlowServer]]:
    servers: list[SlowServer] = []

    def start(pieces: list[bytes], pause: float = 1.0) -> SlowServer:
        servers.append(SlowServer(pieces, pause))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


def _head(length: int | None) -> bytes:
    size = b"" if length is None else b"Content-Length: %d\r\n" % length
    return b"HTTP/1.1 200 OK\r\nContent-Type: application/pkix-crl\r\n" + size + b"\r\n"


# --------------------------------------------------------------------------- memory


def test_a_30_mb_crl_is_fetched_and_indexed_without_its_body_in_memory(
    gost_ca: pki.Issued, tmp_path: Path
) -> None:
    """A fresh process fetches and indexes a 32 MB CRL; its peak RSS hardly moves.

    Holding the body (as the fetcher used to) costs its size once, twice while
    the chunks are joined: ~60 MB here. Streamed to a file and indexed by a
    worker, the fetching process grows by its 64 KiB buffer and little more.
    """
    crl = pki.make_crl(gost_ca, raw_entries=pki.bulk_entries(800_000), number=7)
    assert len(crl) > 30_000_000
    ca_file = tmp_path / "ca.cer"
    ca_file.write_bytes(gost_ca.cert.der)
    cache = tmp_path / "cache"
    server = PlainCrlServer()
    server.crl = crl
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    try:
        child = subprocess.run(
            [
                sys.executable,
                "-m",
                "tests.pki.fetch_rss_child",
                str(ca_file),
                server.url,
                str(cache),
            ],
            capture_output=True,
            text=True,
            cwd=REPO,
            env=env,
            timeout=100,
            check=False,
        )
    finally:
        server.stop()
    assert child.returncode == 0, child.stderr[-2000:]
    report = json.loads(child.stdout.strip().splitlines()[-1])
    assert report["entries"] == 800_000
    growth = (report["peak_kib"] - report["rss_before_kib"]) * 1024
    assert growth < len(crl) / 4, f"peak RSS grew by {growth / 1e6:.1f} MB"
    assert server.requests == 1
    assert leftovers(cache) == []


# --------------------------------------------------------------------------- the file


def test_the_body_lies_in_a_private_file_while_it_downloads_and_goes_at_the_timeout(
    slow: Callable[..., SlowServer], gost_ca: pki.Issued, tmp_path: Path
) -> None:
    crl = pki.make_crl(gost_ca)
    server = slow([_head(len(crl)) + crl[:100], crl[100:200]], pause=10 * T)
    cache = tmp_path / "cache"
    source = source_for(cache, timeout=T)
    failure: list[Exception] = []

    def fetch() -> None:
        try:
            source.fetch_and_ingest(server.url(), gost_ca.cert)
        except CrlFetchError as exc:
            failure.append(exc)

    worker = threading.Thread(target=fetch)
    worker.start()
    modes: set[int] = set()
    while worker.is_alive():
        for name in leftovers(cache):
            with contextlib.suppress(FileNotFoundError):  # gone since it was listed
                modes.add(stat.S_IMODE((cache / name).stat().st_mode))
        time.sleep(0.02)
    worker.join()
    assert modes == {0o600}  # seen, and never readable by anyone else
    assert [str(e) for e in failure] == [f"{server.url()}: timed out reading the body"]
    assert leftovers(cache) == []


def test_a_crl_indexed_from_the_file_keeps_its_validators_for_a_conditional_get(
    crl_server: CrlServer, gost_ca: pki.Issued, tmp_path: Path
) -> None:
    crl_server.routes["/c.crl"] = Route(
        body=pki.make_crl(gost_ca, number=3),
        etag='"v3"',
        headers={"Last-Modified": "Wed, 01 Jan 2025 00:00:00 GMT"},
    )
    cache = tmp_path / "cache"
    source = source_for(cache)
    url = crl_server.url("/c.crl")
    index = source.fetch_and_ingest(url, gost_ca.cert)
    assert index is not None and index.meta.crl_number == 3
    assert (index.meta.source_url, index.meta.etag, index.meta.last_modified) == (
        url,
        '"v3"',
        "Wed, 01 Jan 2025 00:00:00 GMT",
    )
    assert source.fetch_and_ingest(url, gost_ca.cert, index.meta) is None  # 304
    sent = crl_server.requests[-1][1]
    assert sent.get("If-None-Match") == '"v3"'
    assert sent.get("If-Modified-Since") == "Wed, 01 Jan 2025 00:00:00 GMT"
    assert leftovers(cache) == []


def test_a_chunked_body_is_streamed_too(
    slow: Callable[..., SlowServer], gost_ca: pki.Issued, tmp_path: Path
) -> None:
    crl = pki.make_crl(gost_ca, raw_entries=pki.bulk_entries(30_000), number=4)  # ~1.2 MB: worker
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    step = 100_000
    chunks = [
        b"%x\r\n%s\r\n" % (len(crl[i : i + step]), crl[i : i + step])
        for i in range(0, len(crl), step)
    ]
    server = slow([head, *chunks, b"0\r\n\r\n"], pause=0)
    cache = tmp_path / "cache"
    index = source_for(cache).fetch_and_ingest(server.url(), gost_ca.cert)
    assert index is not None and (index.meta.crl_number, len(index)) == (4, 30_000)
    assert leftovers(cache) == []


# --------------------------------------------------------------------------- refusals


def refusal(action: Callable[[], object]) -> str:
    """The error an action raised, as text."""
    try:
        action()
    except (CrlError, CrlFetchError) as exc:
        return f"{type(exc).__name__}: {exc}"
    raise AssertionError("not refused")


@pytest.mark.parametrize("entries", [1, 30_000], ids=["in-process", "worker"])
def test_a_refused_crl_says_what_the_in_memory_ingest_said_and_leaves_no_file(
    entries: int, crl_server: CrlServer, gost_ca: pki.Issued, tmp_path: Path
) -> None:
    forged = pki.make_crl(gost_ca, raw_entries=pki.bulk_entries(entries), bad_signature=True)
    crl_server.routes["/forged.crl"] = Route(body=forged)
    cache = tmp_path / "cache"
    url = crl_server.url("/forged.crl")
    fetched = refusal(lambda: source_for(cache).fetch_and_ingest(url, gost_ca.cert))
    in_memory = refusal(lambda: CrlStore(tmp_path / "other").ingest(forged, gost_ca.cert))
    assert fetched == in_memory
    assert fetched.startswith("CrlError: CRL signature does not verify")
    assert leftovers(cache) == []


def test_refusals_before_the_ingest_leave_no_file(
    crl_server: CrlServer,
    slow: Callable[..., SlowServer],
    gost_ca: pki.Issued,
    tmp_path: Path,
) -> None:
    crl = pki.make_crl(gost_ca, raw_entries=pki.bulk_entries(200))
    crl_server.routes["/c.crl"] = Route(body=crl)
    crl_server.routes["/html.crl"] = Route(body=b"<html>proxy login</html>")
    no_length = slow([_head(None) + crl], pause=0)  # only the streaming bound stops it
    cache = tmp_path / "cache"
    url = crl_server.url("/c.crl")

    def fetch(source: CachingCrlSource, where: str) -> str:
        return refusal(lambda: source.fetch_and_ingest(where, gost_ca.cert))

    small = len(crl) - 1
    assert fetch(source_for(cache), crl_server.url("/html.crl")) == (
        f"CrlFetchError: {crl_server.url('/html.crl')}: the response is not a CRL"
        " (HTML or proxy page?)"
    )
    assert fetch(source_for(cache, max_bytes=small), url) == (
        f"CrlFetchError: {url}: {len(crl)} bytes exceeds the {small} limit"
    )
    assert fetch(source_for(cache, max_bytes=small), no_length.url()) == (
        f"CrlFetchError: {no_length.url()}: response exceeds the {small} byte limit"
    )
    # the cache's own limit, smaller than the fetcher's: as the in-memory ingest says it
    assert fetch(source_for(cache, store_max=small), url) == (
        f"CrlError: CRL of {len(crl)} bytes exceeds the {small} limit"
    )
    assert leftovers(cache) == []


def test_an_html_page_is_refused_at_its_first_bytes_not_downloaded(
    slow: Callable[..., SlowServer], gost_ca: pki.Issued, tmp_path: Path
) -> None:
    page = b"<!DOCTYPE html><html><head><title>Proxy login</title></head><body>" + b"." * 200
    server = slow([_head(50_000_000) + page, b"." * 1000], pause=10 * T)
    cache = tmp_path / "cache"
    started = time.monotonic()
    with pytest.raises(CrlFetchError, match="the response is not a CRL"):
        source_for(cache, max_bytes=100_000_000, timeout=T).fetch_and_ingest(
            server.url(), gost_ca.cert
        )
    assert time.monotonic() - started < T / 2  # not waiting for the rest of 50 MB
    assert leftovers(cache) == []


@pytest.mark.timeout(60)
def test_a_worker_killed_at_its_deadline_leaves_no_file(
    crl_server: CrlServer, gost_ca: pki.Issued, tmp_path: Path
) -> None:
    crl = pki.make_crl(gost_ca, raw_entries=pki.bulk_entries(30_000))  # over 1 MiB: a worker
    crl_server.routes["/c.crl"] = Route(body=crl)
    cache = tmp_path / "cache"
    # the worker cannot even start in that time
    source = CachingCrlSource(CrlStore(cache, ingest_timeout=0.01), HttpCrlFetcher())
    with pytest.raises(CrlWorkerError, match="did not finish"):
        source.fetch_and_ingest(crl_server.url("/c.crl"), gost_ca.cert)
    assert leftovers(cache) == []


def test_a_body_without_content_length_that_stalls_times_out_reading_the_body(
    slow: Callable[..., SlowServer], gost_ca: pki.Issued, tmp_path: Path
) -> None:
    # http.client lets go of the connection of such a response once its headers are
    # read; the message still names the step that timed out, not "connecting".
    crl = pki.make_crl(gost_ca)
    server = slow([_head(None) + crl[:100]], pause=0)  # then silent, the connection open
    cache = tmp_path / "cache"
    started = time.monotonic()
    with pytest.raises(CrlFetchError) as failure:
        source_for(cache, timeout=T).fetch_and_ingest(server.url(), gost_ca.cert)
    assert str(failure.value) == f"{server.url()}: timed out reading the body"
    assert time.monotonic() - started <= T + 1
    assert leftovers(cache) == []
