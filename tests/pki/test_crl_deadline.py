"""The CRL fetch timeout is a deadline: hostile and dead servers on loopback cannot hold a letter.

Each test bounds the elapsed time by the budget T plus one second. Without a
deadline the trickling servers hold a fetch for 20 s (a 20-byte body) or
minutes (headers); the ``timeout`` mark ends such a test.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mailbot.pki.crl_fetch import CachingCrlSource, HttpCrlFetcher
from mailbot.pki.crl_store import CrlStore
from mailbot.pki.errors import CrlFetchError
from mailbot.pki.issuer import InMemoryCaDirectory
from mailbot.pki.validation import Reason, ValidationResult, ValidationVerdict, validate
from testkit import pki
from testkit.crl_server import BlackholeServer, SlowServer, one_byte_at_a_time
from testkit.pki import NOW
from testkit.tls import make_self_signed

from .conftest import CrlServer, Route

T = 2.0  # the fetch budget in these tests
pytestmark = pytest.mark.timeout(30)  # a fetch without a deadline trickles for minutes


def _head(length: int) -> bytes:
    return (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/pkix-crl\r\nContent-Length: %d\r\n\r\n"
        % length
    )


def _body_a_byte_a_second(ca: pki.Issued) -> list[bytes]:
    """Headers at once, then 20 bytes of a CRL, one a second."""
    return [_head(20), *one_byte_at_a_time(pki.make_crl(ca)[:20])]


HEADERS_SLOWLY = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/pkix-crl\r\nX-Padding: " + 200 * b"."
)


@pytest.fixture
def blackhole() -> Iterator[BlackholeServer]:
    server = BlackholeServer()
    yield server
    server.stop()


def _validate(
    gost_ca: pki.Issued, tmp_path: Path, urls: tuple[str, ...]
) -> tuple[ValidationResult, float]:
    """Validate a certificate with these distribution points and budget T; and how long it took."""
    ee = pki.make_end_entity(gost_ca, serial=0x5005, crl_urls=urls)
    directory = InMemoryCaDirectory()
    directory.add(gost_ca.cert)
    source = CachingCrlSource(
        CrlStore(tmp_path / "cache"), HttpCrlFetcher(timeout_seconds=T), directory
    )
    started = time.monotonic()
    result = validate(ee.cert, directory, source, NOW)
    return result, time.monotonic() - started


def _fetch_fails(url: str, match: str, **kwargs: str) -> float:
    """Fetch ``url`` with budget T; assert CrlFetchError matching ``match``; the time it took."""
    started = time.monotonic()
    with pytest.raises(CrlFetchError, match=match):
        HttpCrlFetcher(timeout_seconds=T).fetch(url, **kwargs)
    return time.monotonic() - started


def test_body_sent_a_byte_a_second_ends_at_the_deadline(
    slow: Callable[..., SlowServer], gost_ca: pki.Issued
) -> None:
    server = slow(_body_a_byte_a_second(gost_ca))
    assert _fetch_fails(server.url(), "timed out reading the body") <= T + 1


def test_headers_sent_a_byte_a_second_make_the_crl_unreachable(
    slow: Callable[..., SlowServer], gost_ca: pki.Issued, tmp_path: Path
) -> None:
    server = slow(one_byte_at_a_time(HEADERS_SLOWLY))
    result, elapsed = _validate(gost_ca, tmp_path, (server.url(),))
    assert (result.verdict, result.reason) == (
        ValidationVerdict.INDETERMINATE,
        Reason.CRL_UNREACHABLE,
    )
    assert "timed out waiting for the response" in result.detail
    assert elapsed <= T + 1


def test_silent_servers_share_one_budget(
    slow: Callable[..., SlowServer], gost_ca: pki.Issued, tmp_path: Path
) -> None:
    server = slow([])  # accepts, reads the request, never answers
    urls = tuple(server.url(f"/{i}.crl") for i in range(3))
    result, elapsed = _validate(gost_ca, tmp_path, urls)
    assert (result.verdict, result.reason) == (
        ValidationVerdict.INDETERMINATE,
        Reason.CRL_UNREACHABLE,
    )
    assert elapsed <= T + 1  # not 3 × T
    assert server.connections == 3  # each got its share, none was skipped


def test_servers_that_never_accept_share_one_budget(
    blackhole: BlackholeServer, gost_ca: pki.Issued, tmp_path: Path
) -> None:
    urls = (blackhole.url("/a.crl"), blackhole.url("/b.crl"))
    result, elapsed = _validate(gost_ca, tmp_path, urls)
    assert (result.verdict, result.reason) == (
        ValidationVerdict.INDETERMINATE,
        Reason.CRL_UNREACHABLE,
    )
    assert result.detail.count("timed out connecting") == 2
    assert elapsed <= T + 1


def test_a_working_mirror_after_dead_ones_is_reached_within_the_budget(
    blackhole: BlackholeServer,
    slow: Callable[..., SlowServer],
    crl_server: CrlServer,
    gost_ca: pki.Issued,
    tmp_path: Path,
) -> None:
    crl_server.routes["/good.crl"] = Route(body=pki.make_crl(gost_ca))
    urls = (blackhole.url(), slow([]).url(), crl_server.url("/good.crl"))
    result, elapsed = _validate(gost_ca, tmp_path, urls)
    assert result.verdict is ValidationVerdict.VALID
    assert result.evidence.crl_url == crl_server.url("/good.crl")
    assert elapsed <= T + 1


def test_a_server_that_answered_may_use_the_whole_budget_for_the_body(
    slow: Callable[..., SlowServer], gost_ca: pki.Issued, tmp_path: Path
) -> None:
    # Design guard (passes without the fix too): the first of two URLs has to
    # answer within half the budget; once it has, its body may take longer.
    crl = pki.make_crl(gost_ca)
    server = slow([_head(len(crl)) + crl[:100], crl[100:]], pause=0.6 * T)
    result, elapsed = _validate(gost_ca, tmp_path, (server.url(), server.url("/other.crl")))
    assert result.verdict is ValidationVerdict.VALID
    assert server.connections == 1
    assert 0.6 * T <= elapsed <= T + 1


def test_conditional_get_through_a_redirect_shares_the_deadline(
    slow: Callable[..., SlowServer], crl_server: CrlServer
) -> None:
    trickle = slow(one_byte_at_a_time(HEADERS_SLOWLY))
    crl_server.routes["/moved.crl"] = Route(
        status=302, headers={"Location": trickle.url()}, delay=0.5
    )
    elapsed = _fetch_fails(crl_server.url("/moved.crl"), "timed out", etag='"v1"')
    assert elapsed <= T + 1
    assert crl_server.requests[0][1].get("If-None-Match") == '"v1"'


def test_https_body_sent_a_byte_a_second_ends_at_the_deadline(
    slow: Callable[..., SlowServer], gost_ca: pki.Issued, tmp_path: Path
) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    make_self_signed(cert, key)
    server_side = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_side.load_cert_chain(cert, key)
    server = slow(_body_a_byte_a_second(gost_ca), tls=server_side)
    client = ssl.create_default_context(cafile=str(cert))
    started = time.monotonic()
    with pytest.raises(CrlFetchError, match="timed out reading the body"):
        HttpCrlFetcher(timeout_seconds=T, ssl_context=client).fetch(server.url())
    assert time.monotonic() - started <= T + 1


def test_fetch_async_keeps_the_loop_running_and_ends_at_the_deadline(
    slow: Callable[..., SlowServer], gost_ca: pki.Issued
) -> None:
    server = slow(_body_a_byte_a_second(gost_ca))

    async def main() -> tuple[int, float]:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.05)
                ticks += 1

        task = asyncio.create_task(ticker())
        started = time.monotonic()
        with pytest.raises(CrlFetchError, match="timed out"):
            await HttpCrlFetcher(timeout_seconds=T).fetch_async(server.url())
        elapsed = time.monotonic() - started
        task.cancel()
        return ticks, elapsed

    ticks, elapsed = asyncio.run(main())
    assert elapsed <= T + 1
    assert ticks >= 10


@pytest.mark.parametrize(
    "url",
    [
        "http://" + "a" * 64 + ".example.ru/ca.crl",  # an IDNA label over 63 characters
        "http://crl..example.ru/ca.crl",  # an empty label
        "http://[::1/ca.crl",  # an unclosed IPv6 literal
    ],
)
def test_malformed_distribution_point_is_unreachable_not_a_crash(
    url: str, gost_ca: pki.Issued, tmp_path: Path
) -> None:
    result, _ = _validate(gost_ca, tmp_path, (url,))
    assert (result.verdict, result.reason) == (
        ValidationVerdict.INDETERMINATE,
        Reason.CRL_UNREACHABLE,
    )


def test_malformed_redirect_location_is_a_fetch_error(crl_server: CrlServer) -> None:
    crl_server.routes["/r.crl"] = Route(status=302, headers={"Location": "http://[::1/x.crl"})
    _fetch_fails(crl_server.url("/r.crl"), "malformed")
