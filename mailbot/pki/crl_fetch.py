"""Getting CRLs: HTTP(S) with failover, and the "CRL source" the validation step asks.

Fetching uses the service's HTTP client (:mod:`mailbot.net.http_client`:
httpcore, the configured or the environment's proxy) with explicit bounds:
one deadline for the whole fetch, checked before every socket operation, a
redirect limit (HTTP(S) targets only), a size cap checked against
Content-Length and while reading, and a sniff that rejects HTML proxy pages.
Conditional GET (ETag / If-Modified-Since) avoids re-downloading a big CRL.
The body is copied in 64 KiB chunks to a file-like sink: the CRL source
streams it to a private temporary file in the cache folder and indexes that
file (:meth:`CachingCrlSource.fetch_and_ingest`), so a 40 MB CRL never sits in
the daemon's memory. Trying a CA's distribution points in turn shares one
budget of ``timeout_seconds`` (:meth:`CachingCrlSource.fresh_index`), so a
letter waits for the network at most that long. The calls block; the daemon runs letters
and the CRL refresh in worker threads, asyncio code may use
:meth:`HttpCrlFetcher.fetch_async` (a thread via ``asyncio.to_thread``).
"""

from __future__ import annotations

import asyncio
import io
import ssl
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import BinaryIO, Protocol
from urllib.parse import urljoin

import httpcore

from mailbot.log import get_logger
from mailbot.net.http_client import (
    Deadline,
    HttpSettings,
    UnusableUrl,
    open_client,
    proxy_for,
    redacted,
    request_url,
)
from mailbot.pki.certificate import Certificate
from mailbot.pki.crl import is_current, looks_like_crl
from mailbot.pki.crl_store import CrlStore
from mailbot.pki.errors import CrlError, CrlFetchError
from mailbot.pki.issuer import CaDirectory
from mailbot.pki.revocation_index import IndexMeta, RevocationEntry, RevocationIndex

log = get_logger(__name__)

_REDIRECTS = {301, 302, 303, 307, 308}
#: The body is copied this much at a time; no more of it is ever in memory.
_CHUNK_BYTES = 64 * 1024
#: How much of the body's start :func:`looks_like_crl` judges.
_SNIFF_BYTES = 64


@dataclass(frozen=True)
class FetchResult:
    """One HTTP answer: a body, or "not modified"."""

    url: str
    not_modified: bool
    #: The body from :meth:`HttpCrlFetcher.fetch`; None for "not modified", and from
    #: :meth:`HttpCrlFetcher.fetch_into` (the body went to its sink).
    body: bytes | None
    etag: str | None
    last_modified: str | None
    #: Bytes of the body (0 for "not modified").
    size: int = 0


class HttpCrlFetcher:
    """Bounded HTTP/HTTPS GET for CRLs: one deadline for the whole fetch, proxies honoured.

    A subclass may fetch another kind of file through the same client: it sets
    :attr:`user_agent` and :attr:`accept` and overrides :meth:`check_start`.
    """

    user_agent = b"mailbot-crl/1"
    accept = b"application/pkix-crl, */*"

    def __init__(
        self,
        timeout_seconds: float = 20,
        max_bytes: int = 100 * 1024 * 1024,
        max_redirects: int = 3,
        ssl_context: ssl.SSLContext | None = None,
        proxy: str = "",
        proxy_password: str = "",
    ) -> None:
        self.timeout = timeout_seconds
        self.max_bytes = max_bytes
        self.max_redirects = max_redirects
        #: ``proxy`` "" = the environment's (``https_proxy``, ``no_proxy``, ...).
        self.http = HttpSettings(proxy, proxy_password, ssl_context)

    async def fetch_async(
        self, url: str, etag: str | None = None, last_modified: str | None = None
    ) -> FetchResult:
        """:meth:`fetch` in a worker thread, so the event loop never blocks."""
        return await asyncio.to_thread(self.fetch, url, etag, last_modified)

    def fetch(
        self,
        url: str,
        etag: str | None = None,
        last_modified: str | None = None,
        *,
        deadline: float | None = None,
        answer_by: float | None = None,
    ) -> FetchResult:
        """GET a CRL into memory; raises CrlFetchError. See :meth:`fetch_into`.

        The body is held whole (twice while it is handed over): for small CRLs
        and tools. The daemon streams to a file (:meth:`CachingCrlSource.fetch_and_ingest`).
        """
        body = io.BytesIO()
        result = self.fetch_into(
            body, url, etag, last_modified, deadline=deadline, answer_by=answer_by
        )
        return result if result.not_modified else replace(result, body=body.getvalue())

    def fetch_into(
        self,
        sink: BinaryIO,
        url: str,
        etag: str | None = None,
        last_modified: str | None = None,
        *,
        deadline: float | None = None,
        answer_by: float | None = None,
    ) -> FetchResult:
        """GET a CRL, its body written to ``sink`` as it arrives; raises CrlFetchError.

        At most ``max_redirects`` redirects are followed, each to an HTTP(S)
        URL only; at most ``max_bytes`` are written; a body whose first bytes
        are no CRL (an HTML page) is refused there. On an error ``sink`` may
        hold part of a body. The result's ``body`` is None.

        Everything (name resolution, connecting, a proxy's CONNECT, TLS,
        request, headers, body, every redirect) ends by ``deadline`` (a
        ``time.monotonic()`` value; at most ``timeout_seconds`` from now).
        ``answer_by``, if earlier, is when the final response's headers must
        have arrived; the body may then use the time up to ``deadline`` (see
        :meth:`CachingCrlSource.fresh_index`).
        """
        end = time.monotonic() + self.timeout
        if deadline is not None:
            end = min(end, deadline)
        clock = Deadline(end if answer_by is None else min(answer_by, end))
        current = url
        for _ in range(self.max_redirects + 1):
            result, location = self._once(current, etag, last_modified, clock, end, sink)
            if result is not None:
                return result
            assert location is not None
            try:
                current = urljoin(current, location)
            except ValueError:
                raise CrlFetchError(f"{current}: malformed redirect Location") from None
        raise CrlFetchError(f"{url}: more than {self.max_redirects} redirects")

    def _once(
        self,
        url: str,
        etag: str | None,
        last_modified: str | None,
        clock: Deadline,
        end: float,
        sink: BinaryIO,
    ) -> tuple[FetchResult | None, str | None]:
        """One GET of ``url``: a result, or the Location of a redirect."""
        try:
            target, authority = request_url(url)
            proxy = proxy_for(url, self.http)
        except UnusableUrl as exc:
            raise CrlFetchError(f"{url}: {exc}") from None
        via = "" if proxy is None else f" (via proxy {redacted(proxy)})"
        headers = [
            (b"Host", authority),
            (b"User-Agent", self.user_agent),
            (b"Accept", self.accept),
        ]
        # Validators come from a server's earlier answer: sent back as they came.
        if etag:
            headers.append((b"If-None-Match", etag.encode("latin-1", "replace")))
        if last_modified:
            headers.append((b"If-Modified-Since", last_modified.encode("latin-1", "replace")))
        doing = "waiting for the response"
        try:
            clock.left(doing)  # the budget may be spent by earlier redirects
            with (
                open_client(proxy, self.http, clock) as client,
                client.stream("GET", target, headers=headers) as resp,
            ):
                if resp.status in _REDIRECTS:
                    location = _header(resp, b"location")
                    if not location:
                        raise CrlFetchError(f"{url}: redirect without Location")
                    return None, location
                if resp.status == 304:
                    return FetchResult(
                        url,
                        True,
                        None,
                        _header(resp, b"etag") or etag,
                        _header(resp, b"last-modified") or last_modified,
                    ), None
                if resp.status != 200:
                    reason = resp.extensions.get("reason_phrase", b"").decode("latin-1")
                    raise CrlFetchError(f"{url}: HTTP {resp.status} {reason}{via}".rstrip())
                length = _header(resp, b"content-length")
                if length and length.isdigit() and int(length) > self.max_bytes:
                    raise CrlFetchError(f"{url}: {length} bytes exceeds the {self.max_bytes} limit")
                doing = "reading the body"
                clock.at = end  # the server answered in time: the body may use the whole budget
                size = self._copy_body(resp.iter_stream(), url, sink)
                return FetchResult(
                    url,
                    False,
                    None,
                    _header(resp, b"etag"),
                    _header(resp, b"last-modified"),
                    size,
                ), None
        except (TimeoutError, httpcore.TimeoutException) as exc:
            # Resolving the name, the TCP handshake, TLS: "connecting".
            if isinstance(exc, httpcore.ConnectTimeout) and doing != "reading the body":
                doing = "connecting"
            raise CrlFetchError(f"{url}: timed out {doing}{via}") from None
        except UnusableUrl as exc:  # the proxy's URL (from the environment)
            raise CrlFetchError(f"{url}: {exc}") from None
        except (
            OSError,
            httpcore.NetworkError,
            httpcore.ProtocolError,
            httpcore.ProxyError,
            httpcore.UnsupportedProtocol,
        ) as exc:
            raise CrlFetchError(f"{url}: {type(exc).__name__}: {exc}{via}") from None

    def _copy_body(self, chunks: Iterator[bytes], url: str, sink: BinaryIO) -> int:
        """Copy the body to ``sink`` as it arrives, sniffing its start; its size.

        Each chunk is what one socket read brings (at most 64 KiB), so the
        sniff and the size cap act on the bytes as they come, even from a
        server that then stalls or sends no Content-Length.
        """
        head = b""
        total = 0
        for chunk in chunks:  # each socket read is bounded by the deadline
            total += len(chunk)
            if total > self.max_bytes:
                raise CrlFetchError(f"{url}: response exceeds the {self.max_bytes} byte limit")
            if len(head) < _SNIFF_BYTES:
                head += chunk[: _SNIFF_BYTES - len(head)]
                if len(head) == _SNIFF_BYTES:  # judged now: an HTML page is not downloaded
                    self.check_start(head, url)
            sink.write(chunk)
        if len(head) < _SNIFF_BYTES:
            self.check_start(head, url)
        return total

    def check_start(self, head: bytes, url: str) -> None:
        """CrlFetchError unless a body starting with ``head`` (64 bytes or all) is wanted."""
        _refuse_unless_crl(head, url)


def _header(resp: httpcore.Response, name: bytes) -> str | None:
    """The first ``name`` header of a response (lower-case name), or None."""
    for key, value in resp.headers:
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def _refuse_unless_crl(head: bytes, url: str) -> None:
    """CrlFetchError unless a body starting with ``head`` looks like a CRL."""
    if not looks_like_crl(head):
        raise CrlFetchError(f"{url}: the response is not a CRL (HTML or proxy page?)")


# --------------------------------------------------------------------------- CRL source


@dataclass(frozen=True)
class RevocationCheck:
    """What a CRL source knows about one certificate at one time."""

    status: str  # "good", "revoked" or "unavailable"
    entry: RevocationEntry | None
    crl: IndexMeta | None  # the CRL used (or the stale one we had)
    reason: str | None  # for "unavailable": no_usable_crl / crl_unreachable / crl_stale
    detail: str


class CrlSource(Protocol):
    """Answers "is this certificate on its CA's current CRL at time t?"."""

    def revocation_status(
        self, cert: Certificate, ca: Certificate, at: datetime
    ) -> RevocationCheck:
        """Look the certificate up in a current, verified CRL of ``ca``."""
        ...


def _is_http(url: str) -> bool:
    return url.lower().startswith(("http://", "https://"))


class _Budget:
    """One time budget for trying a CA's distribution points in turn.

    A letter waits for the network at most ``seconds`` in all, not that long
    per URL. Each URL must start answering (final response headers) within
    its fair share of what is left, so dead or silent servers early in the
    list cannot starve a working mirror after them; a URL that answered may
    use all that is left for the body (a big CRL on a slow link).
    """

    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def share(self, untried: int) -> float | None:
        """When the next of ``untried`` URLs must have answered; None if the budget is spent."""
        now = time.monotonic()
        if now >= self.end:
            return None
        return now + (self.end - now) / max(untried, 1)


def _dedupe(urls: Sequence[str]) -> list[str]:
    out: list[str] = []
    for url in urls:
        if url not in out:
            out.append(url)
    return out


class CachingCrlSource:
    """Cache first, then the admin's drop directory, then the network (CDPs, directory URLs)."""

    def __init__(
        self,
        store: CrlStore,
        fetcher: HttpCrlFetcher | None = None,
        directory: CaDirectory | None = None,
        drop_dir: Path | None = None,
        grace: timedelta = timedelta(seconds=300),
    ) -> None:
        self.store = store
        self.fetcher = fetcher
        self.directory = directory
        self.drop_dir = drop_dir
        self.grace = grace

    def _fresh(self, index: RevocationIndex | None, at: datetime) -> bool:
        if index is None:
            return False
        meta = index.meta
        next_update = meta.next_update_dt
        if next_update is None:
            return False
        return meta.this_update_dt - self.grace <= at < next_update + self.grace

    def _answer(self, cert: Certificate, index: RevocationIndex) -> RevocationCheck:
        entry = index.lookup(cert.serial_bytes)
        if entry is None:
            return RevocationCheck("good", None, index.meta, None, "not on the CRL")
        return RevocationCheck(
            "revoked",
            entry,
            index.meta,
            None,
            f"revoked at {entry.revoked_at}, reason {entry.reason}",
        )

    def revocation_status(
        self, cert: Certificate, ca: Certificate, at: datetime
    ) -> RevocationCheck:
        """See :class:`CrlSource`."""
        index, problem = self.fresh_index(ca, at, cert.crl_urls)
        if index is not None and problem is None:
            return self._answer(cert, index)
        assert problem is not None
        return problem

    def fresh_index(
        self, ca: Certificate, at: datetime, urls: Sequence[str] = ()
    ) -> tuple[RevocationIndex | None, RevocationCheck | None]:
        """A current, verified CRL index of ``ca``: cache, drop folder, then the network.

        ``urls`` (a certificate's distribution points) are tried before the
        directory's URLs for the CA. Returns ``(index, None)`` on success, else
        the best index on file (or None) and an "unavailable" check saying why.
        """
        index = self.store.current(ca)
        if self._fresh(index, at):
            return index, None
        dropped = self.store.scan_drop_dir(self.drop_dir, ca)
        if dropped is not None:
            index = dropped
            if self._fresh(index, at):
                return index, None
        urls = list(urls)
        if self.directory is not None:
            urls += self.directory.crl_urls(ca)
        problems: list[str] = []
        untried = sum(1 for url in _dedupe(urls) if _is_http(url))
        budget = _Budget(self.fetcher.timeout if self.fetcher is not None else 0)
        for url in _dedupe(urls):
            if not _is_http(url):
                log.info("crl_url_skipped", url=url, reason="only HTTP(S) is fetched")
                problems.append(f"{url}: skipped (not HTTP)")
                continue
            if self.fetcher is None:
                problems.append(f"{url}: fetching disabled")
                continue
            answer_by = budget.share(untried)
            untried -= 1
            if answer_by is None:
                problems.append(f"{url}: not tried, the {self.fetcher.timeout:g} s budget is spent")
                continue
            try:
                fetched = self.fetch_and_ingest(
                    url,
                    ca,
                    index.meta if index is not None else None,
                    deadline=budget.end,
                    answer_by=answer_by,
                )
            except CrlFetchError as exc:
                log.warning("crl_fetch_failed", url=url, error=str(exc))
                problems.append(str(exc))
                continue
            except CrlError as exc:
                log.warning("crl_rejected", url=url, error=str(exc))
                problems.append(f"{url}: {exc}")
                continue
            if fetched is None:
                problems.append(f"{url}: not modified since the cached (stale) CRL")
                continue
            index = fetched
            if self._fresh(index, at):
                return index, None
            problems.append(f"{url}: CRL not current (nextUpdate {index.meta.next_update})")
        if index is not None:
            return index, RevocationCheck(
                "unavailable",
                None,
                index.meta,
                "crl_stale",
                f"newest CRL has thisUpdate {index.meta.this_update}, nextUpdate "
                f"{index.meta.next_update}; " + "; ".join(problems),
            )
        if not urls:
            return None, RevocationCheck(
                "unavailable",
                None,
                None,
                "no_usable_crl",
                "no CRL distribution point and no current CRL on file",
            )
        return None, RevocationCheck(
            "unavailable", None, None, "crl_unreachable", "; ".join(problems) or "no CRL found"
        )

    def fetch_and_ingest(
        self,
        url: str,
        ca: Certificate,
        cached: IndexMeta | None = None,
        *,
        deadline: float | None = None,
        answer_by: float | None = None,
    ) -> RevocationIndex | None:
        """Download ``url`` and make it ``ca``'s current CRL; None if the server says 304.

        A GET conditional on ``cached``'s validators if that CRL came from
        ``url``. The body goes to a private temporary file in the cache folder,
        never into memory, and is indexed from there (a big one in a worker
        process); the file is deleted afterwards, also after an error or a
        timeout. ``deadline`` and ``answer_by`` as in :meth:`HttpCrlFetcher.fetch_into`.
        Raises CrlFetchError (download) or CrlError (the CRL refused).
        """
        if self.fetcher is None:
            raise CrlFetchError(f"{url}: fetching disabled")
        conditional = cached is not None and cached.source_url == url
        with self.store.scratch_file(".tmp-fetch-") as body:
            with body.open("wb") as sink:
                result = self.fetcher.fetch_into(
                    sink,
                    url,
                    cached.etag if conditional and cached else None,
                    cached.last_modified if conditional and cached else None,
                    deadline=deadline,
                    answer_by=answer_by,
                )
            if result.not_modified:
                return None
            self.store.check_size(result.size)
            return self.store.ingest_file(
                body, ca, source_url=url, etag=result.etag, last_modified=result.last_modified
            )


class StaticCrlSource(CachingCrlSource):
    """CRLs given up front (CLI ``--crl`` files): no network."""

    def __init__(self, store: CrlStore, grace: timedelta = timedelta(seconds=300)) -> None:
        super().__init__(store, None, None, None, grace)


def is_fresh(meta: IndexMeta, at: datetime, grace: timedelta) -> bool:
    """thisUpdate - grace ≤ at < nextUpdate + grace for a stored CRL."""
    nu = meta.next_update_dt
    return nu is not None and meta.this_update_dt - grace <= at < nu + grace


__all__ = [
    "CachingCrlSource",
    "CrlSource",
    "FetchResult",
    "HttpCrlFetcher",
    "RevocationCheck",
    "StaticCrlSource",
    "is_current",
    "is_fresh",
]
