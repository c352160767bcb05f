"""CRLs fetched through a real (recording) HTTP proxy: from the environment or ``[crl] proxy``.

The distribution points name ``crl.invalid``, a host no resolver knows: only
the test proxy maps it to the loopback CRL server, so a fetch that succeeds
went through the proxy, and the proxy's record says so.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from mailbot.app.assembly import crl_fetcher
from mailbot.config.loader import config_from_mapping
from mailbot.pki.crl_fetch import HttpCrlFetcher
from mailbot.pki.errors import CrlFetchError
from testkit import pki
from testkit.crl_server import SlowServer, one_byte_at_a_time
from testkit.http_proxy import RecordingProxy
from testkit.tls import make_self_signed

from .conftest import CrlServer, Route

T = 2.0  # the fetch budget where a test waits for the deadline
pytestmark = pytest.mark.timeout(60)

HIDDEN = "crl.invalid"


@pytest.fixture
def proxy() -> Iterator[RecordingProxy]:
    server = RecordingProxy(aliases={HIDDEN: "127.0.0.1"})
    yield server
    server.stop()


@pytest.fixture
def crl(crl_server: CrlServer, gost_ca: pki.Issued) -> bytes:
    """A CRL served at ``/ca.crl`` of the loopback CRL server."""
    body = pki.make_crl(gost_ca)
    crl_server.routes["/ca.crl"] = Route(body=body)
    return body


def hidden(url: str) -> str:
    """``url`` with its loopback address replaced by the name only the proxy resolves."""
    return url.replace("127.0.0.1", HIDDEN)


def _head(length: int) -> bytes:
    return (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/pkix-crl\r\nContent-Length: %d\r\n\r\n"
        % length
    )


# --------------------------------------------------------------------------- the environment


@pytest.mark.parametrize("variable", ["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"])
def test_the_environments_proxy_fetches_a_crl_only_it_can_reach(
    variable: str,
    proxy: RecordingProxy,
    crl_server: CrlServer,
    crl: bytes,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(variable, proxy.url)
    url = hidden(crl_server.url("/ca.crl"))
    assert HttpCrlFetcher(timeout_seconds=5).fetch(url).body == crl
    assert proxy.lines == [f"GET {url}"]  # absolute URI: a forward proxy
    assert [path for path, _ in crl_server.requests] == ["/ca.crl"]


def test_https_goes_through_a_connect_tunnel_to_the_named_host(
    proxy: RecordingProxy,
    slow: Callable[..., SlowServer],
    gost_ca: pki.Issued,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    make_self_signed(cert, key, names=(HIDDEN,))
    server_side = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_side.load_cert_chain(cert, key)
    body = pki.make_crl(gost_ca)
    server = slow([_head(len(body)) + body], pause=0, tls=server_side)
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # closed: https must not use it
    client = ssl.create_default_context(cafile=str(cert))
    url = hidden(server.url())
    assert HttpCrlFetcher(timeout_seconds=5, ssl_context=client).fetch(url).body == body
    assert proxy.lines == [f"CONNECT {urlsplit(url).netloc}"]  # the name, checked against the cert


def test_no_proxy_sends_its_hosts_past_the_proxy(
    proxy: RecordingProxy,
    crl_server: CrlServer,
    crl: bytes,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("http_proxy", proxy.url)
    direct = crl_server.url("/ca.crl")  # 127.0.0.1: reachable without the proxy too
    assert HttpCrlFetcher().fetch(direct).body == crl
    assert proxy.lines == [f"GET {direct}"]  # no_proxy unset: even loopback goes through it
    monkeypatch.setenv("NO_PROXY", f"example.org, {urlsplit(direct).netloc}")  # host:port
    assert HttpCrlFetcher().fetch(direct).body == crl
    monkeypatch.setenv("NO_PROXY", "")
    monkeypatch.setenv("no_proxy", ".invalid,127.0.0.1")
    assert HttpCrlFetcher().fetch(direct).body == crl
    assert len(proxy.requests) == 1  # the last two went directly
    assert len(crl_server.requests) == 3


def test_an_unsupported_proxy_in_the_environment_is_a_fetch_error_that_says_so(
    crl_server: CrlServer, crl: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALL_PROXY", "socks5://user:secret@127.0.0.1:1080")
    url = crl_server.url("/ca.crl")
    with pytest.raises(CrlFetchError) as failure:
        HttpCrlFetcher().fetch(url)
    assert str(failure.value) == (
        f"{url}: proxy socks5://127.0.0.1:1080 scheme 'socks5' is not supported"
        " (only http:// and https:// proxies)"
    )
    assert crl_server.requests == []


# --------------------------------------------------------------------------- [crl] proxy


def test_the_configured_proxy_reaches_the_fetcher_and_is_used_without_environment(
    proxy: RecordingProxy, crl_server: CrlServer, crl: bytes
) -> None:
    config = config_from_mapping(
        {"imap": {"host": "127.0.0.1"}, "crl": {"proxy": proxy.url, "fetch_timeout_seconds": 5}}
    )
    url = hidden(crl_server.url("/ca.crl"))
    assert crl_fetcher(config).fetch(url).body == crl
    assert proxy.lines == [f"GET {url}"]


def test_the_configured_proxy_wins_over_the_environment_and_no_proxy_still_holds(
    proxy: RecordingProxy,
    crl_server: CrlServer,
    crl: bytes,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # closed: a fetch through it fails
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    fetcher = HttpCrlFetcher(timeout_seconds=5, proxy=proxy.url)
    url = hidden(crl_server.url("/ca.crl"))
    assert fetcher.fetch(url).body == crl
    assert fetcher.fetch(crl_server.url("/ca.crl")).body == crl  # no_proxy: directly
    assert proxy.lines == [f"GET {url}"]


def test_the_proxy_password_comes_from_its_secret_source_and_is_never_shown(
    crl_server: CrlServer, crl: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy = RecordingProxy(aliases={HIDDEN: "127.0.0.1"}, credentials=("fund", "s3cr%t"))
    address = urlsplit(proxy.url).netloc

    def fetch(password: str) -> bytes | None:
        monkeypatch.setenv("TEST_PROXY_PW", password)
        crl_config = {"proxy": f"http://fund@{address}", "proxy_password_env": "TEST_PROXY_PW"}
        config = config_from_mapping({"imap": {"host": "127.0.0.1"}, "crl": crl_config})
        return crl_fetcher(config).fetch(url).body

    url = hidden(crl_server.url("/ca.crl"))
    try:
        assert fetch("s3cr%t") == crl
        with pytest.raises(CrlFetchError) as failure:
            fetch("wrong")
    finally:
        proxy.stop()
    assert str(failure.value) == (
        f"{url}: HTTP 407 Proxy Authentication Required (via proxy http://{address})"
    )
    sent = [r.headers.get("Proxy-Authorization") for r in proxy.requests]
    assert sent == ["Basic ZnVuZDpzM2NyJXQ=", "Basic ZnVuZDp3cm9uZw=="]  # fund:s3cr%t, fund:wrong


# --------------------------------------------------------------------------- limits via a proxy


def test_a_body_trickling_through_the_proxy_ends_at_the_deadline(
    proxy: RecordingProxy,
    slow: Callable[..., SlowServer],
    gost_ca: pki.Issued,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = slow([_head(20), *one_byte_at_a_time(pki.make_crl(gost_ca)[:20])])
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    url = hidden(server.url())
    started = time.monotonic()
    with pytest.raises(CrlFetchError) as failure:
        HttpCrlFetcher(timeout_seconds=T).fetch(url)
    assert time.monotonic() - started <= T + 1
    assert str(failure.value) == f"{url}: timed out reading the body (via proxy {proxy.url})"
    assert proxy.lines == [f"GET {url}"]


def test_a_proxy_that_trickles_its_connect_answer_ends_at_the_deadline(
    slow: Callable[..., SlowServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    trickling_proxy = slow(one_byte_at_a_time(b"HTTP/1.1 200 Connection established\r\n\r\n"))
    monkeypatch.setenv("https_proxy", trickling_proxy.url(""))
    url = f"https://{HIDDEN}/ca.crl"
    started = time.monotonic()
    with pytest.raises(CrlFetchError, match="timed out waiting for the response"):
        HttpCrlFetcher(timeout_seconds=T).fetch(url)
    assert time.monotonic() - started <= T + 1
    assert trickling_proxy.connections == 1


def test_the_redirect_limit_counts_through_the_proxy(
    proxy: RecordingProxy,
    crl_server: CrlServer,
    crl: bytes,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for i in range(3):
        crl_server.routes[f"/r{i}"] = Route(status=302, headers={"Location": f"/r{i + 1}"})
    crl_server.routes["/r3"] = Route(status=302, headers={"Location": "/ca.crl"})
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    url = hidden(crl_server.url("/r0"))
    with pytest.raises(CrlFetchError, match="more than 3 redirects"):
        HttpCrlFetcher(max_redirects=3).fetch(url)
    assert HttpCrlFetcher(max_redirects=4).fetch(url).body == crl
    assert proxy.lines[-1] == f"GET {hidden(crl_server.url('/ca.crl'))}"


# --------------------------------------------------------------------------- refused redirects


@pytest.mark.parametrize(
    ("location", "scheme"),
    [
        ("file:///etc/passwd", "file"),
        ("ldap://ldap.example.ru/cn=CA,o=Fund?certificateRevocationList", "ldap"),
        ("ftp://127.0.0.1/ca.crl", "ftp"),
    ],
)
def test_a_redirect_away_from_http_is_refused_not_followed(
    location: str, scheme: str, crl_server: CrlServer, proxy: RecordingProxy, crl: bytes
) -> None:
    # Design guard (the old fetcher refused these too): a CRL server, or a proxy
    # answering for it, cannot make the service read a local file or another protocol.
    crl_server.routes["/moved.crl"] = Route(status=302, headers={"Location": location})
    for fetcher, url in [
        (HttpCrlFetcher(), crl_server.url("/moved.crl")),
        (HttpCrlFetcher(proxy=proxy.url), hidden(crl_server.url("/moved.crl"))),
    ]:
        with pytest.raises(CrlFetchError) as failure:
            fetcher.fetch(url)
        assert str(failure.value) == f"{location}: unsupported URL scheme {scheme!r}"
    assert len(proxy.requests) == 1  # the first hop only
