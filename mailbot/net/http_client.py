"""The HTTP client for the service's downloads: its proxy, and one hard deadline.

Built on httpcore (the transport under httpx, HTTP/1.1 over h11): it forwards
``http://`` requests to an HTTP proxy by absolute URI and tunnels ``https://``
ones with CONNECT. Two things are added here:

* Which proxy: the configured one (``[crl] proxy``) if set, else the
  environment's ``http_proxy`` / ``https_proxy`` / ``all_proxy`` (upper case
  too), read by the standard library as curl and httpx read them. A host that
  ``no_proxy`` covers is reached directly, also with a configured proxy.
* One deadline (:class:`Deadline`, a point in monotonic time) for everything a
  request does: name resolution (in a thread: the C resolver takes no
  timeout), connecting (all addresses together), TLS, the proxy's CONNECT,
  and each single read and write, bounded by the time left just before it.
  httpcore's own timeouts are per socket operation, which a peer that trickles
  a byte a second never trips; it takes the network layer as a plug-in
  (``network_backend``), and this module's layer enforces the deadline there.

A client (:func:`open_client`) serves one origin's request and is closed after
it: downloads are rare, and a redirect to another host may need another proxy.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import httpcore

#: Proxy URL schemes the client speaks (SOCKS would need another package).
PROXY_SCHEMES = ("http", "https")

_AddrInfo = list[tuple[Any, Any, int, str, Any]]


@dataclass(frozen=True)
class HttpSettings:
    """How downloads reach the network."""

    #: Proxy URL, e.g. ``http://proxy.example:3128``; "" = the environment's.
    proxy: str = ""
    #: Password of the user named in ``proxy`` (it is kept out of the URL in the config).
    proxy_password: str = ""
    #: Verifies HTTPS servers (and an ``https://`` proxy); None = the system's CAs.
    ssl_context: ssl.SSLContext | None = None


class UnusableUrl(ValueError):
    """A URL the client will not request (scheme, host or port); the message says why."""


def proxy_problem(url: str) -> str | None:
    """Why ``url`` cannot serve as a proxy, or None. Never repeats credentials."""
    if "://" not in url:
        return "has no scheme (write http://host:port)"
    try:
        parts = urlsplit(url)
    except ValueError:
        return "is not a URL"
    try:
        port = parts.port
    except ValueError:
        return "has a bad port"
    if parts.scheme not in PROXY_SCHEMES:
        return (
            f"scheme {parts.scheme!r} is not supported (only "
            + " and ".join(f"{s}://" for s in PROXY_SCHEMES)
            + " proxies)"
        )
    if not parts.hostname:
        return "has no host"
    if port == 0:
        return "has port 0"
    return None


def redacted(proxy: str) -> str:
    """``scheme://host:port`` of a proxy URL: no user name or password, for logs and alerts."""
    if "://" not in proxy:  # host:port, perhaps user:password@host:port
        return proxy.rpartition("@")[2]
    try:
        parts = urlsplit(proxy)
    except ValueError:
        return "(unparsable URL)"
    netloc = parts.netloc.rpartition("@")[2]
    return f"{parts.scheme}://{netloc}"


def proxy_for(url: str, settings: HttpSettings) -> str | None:
    """The proxy a request to ``url`` goes through, or None for a direct connection.

    ``no_proxy`` covering the host wins; then the configured proxy; then the
    environment's proxy for the URL's scheme, then ``all_proxy``. A proxy
    given as ``host:port`` means ``http://host:port``.
    """
    environment = urllib.request.getproxies_environment()
    parts = urlsplit(url)
    # The standard library's no_proxy rules (on Linux ``proxy_bypass`` reads the
    # environment only): "*", host names and domain suffixes, with or without a port.
    if parts.hostname and urllib.request.proxy_bypass(parts.netloc, environment):
        return None
    proxy = settings.proxy or environment.get(parts.scheme) or environment.get("all")
    if not proxy:
        return None
    return proxy if "://" in proxy else f"http://{proxy}"


def request_url(url: str) -> tuple[httpcore.URL, bytes]:
    """``url`` as httpcore wants it, and its Host header; raises :class:`UnusableUrl`.

    Only ``http`` and ``https`` are requested (a redirect to ``file:`` or
    ``ldap:`` ends here). The host is IDNA-encoded: a name the codec refuses
    (a label over 63 characters, an empty label) is refused.
    """
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unclosed "[" of an IPv6 address
        raise UnusableUrl("malformed URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnusableUrl(f"unsupported URL scheme {parts.scheme!r}")
    try:
        port = parts.port
    except ValueError:
        raise UnusableUrl("bad port") from None
    try:
        host = parts.hostname.encode("idna")
    except UnicodeError:
        raise UnusableUrl("malformed host name") from None
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    authority = b"[%s]" % host if b":" in host else host
    if port is not None:
        authority += b":%d" % port
    scheme = parts.scheme.encode("ascii")
    return httpcore.URL(scheme=scheme, host=host, port=port, target=target.encode()), authority


class Deadline:
    """A point in ``time.monotonic()`` time; movable (a caller may grant more time)."""

    def __init__(self, at: float) -> None:
        self.at = at

    def left(self, doing: str) -> float:
        """Seconds left (> 0); ``TimeoutError("timed out <doing>")`` once past the deadline."""
        left = self.at - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"timed out {doing}")
        return left


def open_client(
    proxy: str | None, settings: HttpSettings, deadline: Deadline
) -> httpcore.ConnectionPool:
    """A client whose every network step ends by ``deadline``: direct, or through ``proxy``.

    Use it as a context manager; ``client.stream("GET", ...)`` streams a
    response. Moving ``deadline.at`` applies to the steps still to come.
    Raises :class:`UnusableUrl` for a proxy URL the client cannot use.
    """
    context = settings.ssl_context or ssl.create_default_context()
    backend = _DeadlineBackend(deadline)
    if proxy is None:
        return httpcore.ConnectionPool(ssl_context=context, network_backend=backend)
    problem = proxy_problem(proxy)
    if problem is not None:
        raise UnusableUrl(f"proxy {redacted(proxy)} {problem}")
    parts = urlsplit(proxy)
    auth = None
    if parts.username is not None:
        password = unquote(parts.password or "")
        if proxy == settings.proxy and settings.proxy_password:
            password = settings.proxy_password
        auth = (unquote(parts.username), password)
    return httpcore.HTTPProxy(
        proxy_url=redacted(proxy),
        proxy_auth=auth,
        ssl_context=context,
        # An https:// proxy is verified like the servers (httpcore refuses one for http://).
        proxy_ssl_context=context if parts.scheme == "https" else None,
        network_backend=backend,
    )


# --------------------------------------------------------------------------- the deadline


def _resolve(host: str, port: int, deadline: Deadline) -> _AddrInfo:
    """``getaddrinfo`` waited for no longer than the deadline.

    The C resolver cannot be interrupted or given a timeout; it runs in a
    daemon thread that ends by the resolver's own timeouts (resolv.conf), and
    an answer arriving after the deadline is dropped.
    """
    answer: list[_AddrInfo | Exception] = []

    def look_up() -> None:
        try:
            answer.append(socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM))
        except Exception as exc:  # handed to the waiting thread
            answer.append(exc)

    thread = threading.Thread(target=look_up, name="http-resolve", daemon=True)
    thread.start()
    thread.join(_left(deadline, f"resolving {host}", httpcore.ConnectTimeout))
    if not answer:
        raise httpcore.ConnectTimeout(f"timed out resolving {host}")
    if isinstance(answer[0], Exception):
        raise httpcore.ConnectError(f"{host}: {answer[0]}")
    return answer[0]


def _left(deadline: Deadline, doing: str, timeout: type[Exception]) -> float:
    """:meth:`Deadline.left`, past the deadline raising httpcore's ``timeout`` class."""
    try:
        return deadline.left(doing)
    except TimeoutError as exc:
        raise timeout(str(exc)) from None


def _bound(timeout: float | None, left: float) -> float:
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    """A connection whose every read, write and TLS handshake waits only for the time left."""

    def __init__(self, inner: httpcore.NetworkStream, deadline: Deadline) -> None:
        self._inner = inner
        self._deadline = deadline

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        left = _left(self._deadline, "waiting for data", httpcore.ReadTimeout)
        return self._inner.read(max_bytes, _bound(timeout, left))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        left = _left(self._deadline, "sending", httpcore.WriteTimeout)
        self._inner.write(buffer, _bound(timeout, left))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        left = _left(self._deadline, "in the TLS handshake", httpcore.ConnectTimeout)
        inner = self._inner.start_tls(ssl_context, server_hostname, _bound(timeout, left))
        return _DeadlineStream(inner, self._deadline)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    """httpcore's socket layer with the name lookup and every address inside one deadline."""

    def __init__(self, deadline: Deadline) -> None:
        self._deadline = deadline
        self._sockets = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        """Resolve ``host`` and connect to its addresses in turn, all by the deadline."""
        error: Exception | None = None
        for *_kind, sockaddr in _resolve(host, port, self._deadline):
            left = _left(self._deadline, f"connecting to {host}", httpcore.ConnectTimeout)
            try:
                # A numeric address: the resolver is not asked again.
                stream = self._sockets.connect_tcp(
                    sockaddr[0], port, _bound(timeout, left), local_address, socket_options
                )
            except httpcore.ConnectError as exc:
                error = exc
                continue
            # (a ConnectTimeout spent the whole budget: none is left for the next address)
            return _DeadlineStream(stream, self._deadline)
        raise error or httpcore.ConnectError(f"no address for {host}")

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        """Not used: downloads go over TCP."""
        raise httpcore.ConnectError("UNIX sockets are not used for downloads")

    def sleep(self, seconds: float) -> None:
        """Wait between retries (the client makes none)."""
        time.sleep(seconds)


__all__ = [
    "PROXY_SCHEMES",
    "Deadline",
    "HttpSettings",
    "UnusableUrl",
    "open_client",
    "proxy_for",
    "proxy_problem",
    "redacted",
    "request_url",
]
