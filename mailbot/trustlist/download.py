"""Downloading the list of accredited CAs: the CRL client's HTTP GET, for an XML file.

The same client as CRLs (:class:`mailbot.pki.crl_fetch.HttpCrlFetcher`: the
configured or the environment's proxy, one deadline for everything, a size
cap, conditional GET, HTTP(S) redirects only); only the start of the body is
judged differently: an XML document, not an HTML page.
"""

from __future__ import annotations

from mailbot.pki.crl_fetch import HttpCrlFetcher
from mailbot.pki.errors import CrlFetchError

_BOM = b"\xef\xbb\xbf"
_HTML = (b"<!doctype html", b"<html")


class TrustListFetcher(HttpCrlFetcher):
    """Bounded GET of the list's XML file (errors are :class:`CrlFetchError`)."""

    user_agent = b"mailbot-tsl/1"
    accept = b"application/xml, text/xml, */*"

    def check_start(self, head: bytes, url: str) -> None:
        """CrlFetchError unless the body starts like an XML document (a BOM allowed)."""
        start = head.removeprefix(_BOM).lstrip(b" \t\r\n")
        if not start.startswith(b"<") or start.lower().startswith(_HTML):
            raise CrlFetchError(f"{url}: the response is not an XML file (a web page instead?)")
