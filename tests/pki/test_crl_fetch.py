"""CRL fetching against a real local HTTP server."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest

from mailbot.pki.crl_fetch import CachingCrlSource, HttpCrlFetcher
from mailbot.pki.crl_store import CrlStore
from mailbot.pki.errors import CrlFetchError
from mailbot.pki.issuer import InMemoryCaDirectory
from mailbot.pki.validation import Reason, ValidationVerdict, validate
from testkit import pki
from testkit.pki import NOW, Revoked

from .conftest import CrlServer, Route


def _setup(
    gost_ca: pki.Issued,
    tmp_path: Path,
    urls: tuple[str, ...],
    dir_urls: tuple[str, ...] = (),
    **fetch_args: float,
) -> tuple[pki.Issued, InMemoryCaDirectory, CachingCrlSource]:
    ee = pki.make_end_entity(gost_ca, serial=0x4004, crl_urls=urls)
    directory = InMemoryCaDirectory()
    directory.add(gost_ca.cert, crl_urls=dir_urls)
    fetcher = HttpCrlFetcher(
        timeout_seconds=fetch_args.get("timeout", 2),
        max_bytes=int(fetch_args.get("max_bytes", 10_000_000)),
        max_redirects=int(fetch_args.get("max_redirects", 3)),
    )
    source = CachingCrlSource(CrlStore(tmp_path / "cache"), fetcher, directory)
    return ee, directory, source


def test_failover_from_dead_mirror_to_directory_url(
    gost_ca: pki.Issued, tmp_path: Path, crl_server: CrlServer
) -> None:
    crl_server.routes["/html.crl"] = Route(
        body=b"<html>proxy login</html>", headers={"Content-Type": "text/html"}
    )
    crl_server.routes["/good.crl"] = Route(body=pki.make_crl(gost_ca, [Revoked(0x4004)]))
    ee, directory, source = _setup(
        gost_ca,
        tmp_path,
        (
            "ldap://ldap.example.ru/cn=crl",
            crl_server.url("/missing.crl"),
            crl_server.url("/html.crl"),
        ),
        dir_urls=(crl_server.url("/good.crl"),),
    )
    r = validate(ee.cert, directory, source, NOW)
    assert (r.verdict, r.reason) == (ValidationVerdict.INVALID, Reason.REVOKED)
    assert r.evidence.crl_url == crl_server.url("/good.crl")
    assert [p for p, _ in crl_server.requests] == ["/missing.crl", "/html.crl", "/good.crl"]
    # cached: a second validation does not touch the network
    validate(ee.cert, directory, source, NOW)
    assert len(crl_server.requests) == 3


def test_all_unreachable_is_indeterminate(
    gost_ca: pki.Issued, tmp_path: Path, crl_server: CrlServer
) -> None:
    ee, directory, source = _setup(
        gost_ca, tmp_path, (crl_server.url("/nope.crl"), "http://127.0.0.1:9/closed.crl")
    )
    r = validate(ee.cert, directory, source, NOW)
    assert (r.verdict, r.reason) == (ValidationVerdict.INDETERMINATE, Reason.CRL_UNREACHABLE)
    assert "404" in r.detail


def test_timeout(crl_server: CrlServer, gost_ca: pki.Issued) -> None:
    crl_server.routes["/slow.crl"] = Route(body=pki.make_crl(gost_ca), delay=2.0)
    with pytest.raises(CrlFetchError, match=r"timed out|TimeoutError|timeout"):
        HttpCrlFetcher(timeout_seconds=0.5).fetch(crl_server.url("/slow.crl"))


def test_size_cap(crl_server: CrlServer) -> None:
    crl_server.routes["/big.crl"] = Route(body=b"\x30" + b"\x00" * 5000)
    with pytest.raises(CrlFetchError, match="limit"):
        HttpCrlFetcher(max_bytes=1000).fetch(crl_server.url("/big.crl"))


def test_redirect_limit(crl_server: CrlServer, gost_ca: pki.Issued) -> None:
    for i in range(5):
        crl_server.routes[f"/r{i}"] = Route(status=302, headers={"Location": f"/r{i + 1}"})
    crl_server.routes["/r5"] = Route(body=pki.make_crl(gost_ca))
    with pytest.raises(CrlFetchError, match="redirects"):
        HttpCrlFetcher(max_redirects=3).fetch(crl_server.url("/r0"))
    assert HttpCrlFetcher(max_redirects=5).fetch(crl_server.url("/r0")).body is not None


def test_conditional_get_304_keeps_the_cached_crl(
    gost_ca: pki.Issued, tmp_path: Path, crl_server: CrlServer
) -> None:
    stale = pki.make_crl(gost_ca, number=1)
    crl_server.routes["/c.crl"] = Route(body=stale, etag='"v1"')
    ee, directory, source = _setup(gost_ca, tmp_path, (crl_server.url("/c.crl"),))
    assert validate(ee.cert, directory, source, NOW).verdict is ValidationVerdict.VALID
    later = NOW + timedelta(days=8)  # past nextUpdate: must re-fetch, server says 304
    r = validate(ee.cert, directory, source, later)
    assert (r.verdict, r.reason) == (ValidationVerdict.INDETERMINATE, Reason.CRL_STALE)
    assert crl_server.requests[-1][1].get("If-None-Match") == '"v1"'
    # a new CRL appears: fetched, verified, used
    crl_server.routes["/c.crl"] = Route(
        body=pki.make_crl(
            gost_ca,
            number=2,
            this_update=later - timedelta(hours=1),
            next_update=later + timedelta(days=7),
        ),
        etag='"v2"',
    )
    assert validate(ee.cert, directory, source, later).verdict is ValidationVerdict.VALID


def test_async_wrapper_does_not_block_the_loop(crl_server: CrlServer, gost_ca: pki.Issued) -> None:
    crl_server.routes["/slowish.crl"] = Route(body=pki.make_crl(gost_ca), delay=0.3)
    fetcher = HttpCrlFetcher()

    async def main() -> tuple[int, bool]:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.02)
                ticks += 1

        task = asyncio.create_task(ticker())
        result = await fetcher.fetch_async(crl_server.url("/slowish.crl"))
        task.cancel()
        return ticks, result.body is not None

    ticks, ok = asyncio.run(main())
    assert ok and ticks >= 5
