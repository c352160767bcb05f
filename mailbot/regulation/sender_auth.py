"""Optional part of step 2: our own MTA's ``Authentication-Results`` (RFC 8601).

``From:`` is whatever the sender typed. When a deployment turns this check on,
a letter passes only if the Authentication-Results field stamped by our own
receiving MTA (selected by its authserv-id; RFC 8601 section 5 makes the border
MTA delete forged copies with that id) shows DMARC pass for the From domain, or
an SPF or DKIM pass aligned with the From domain (RFC 7489). Fields with any
other authserv-id count for nothing. Parsing is done by :mod:`authres`, never
by regexes (comments, quoted strings and duplicates defeat those).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class AuthOutcome:
    """Whether the sender is authenticated, and the evidence (or its absence)."""

    passed: bool
    detail: str


def aligned(domain: str, from_domain: str) -> bool:
    """Relaxed alignment without a public-suffix list: equal, or one a subdomain of the other."""
    a, b = domain.strip().strip(".").lower(), from_domain.strip().strip(".").lower()
    if not a or not b:
        return False
    return a == b or a.endswith("." + b) or b.endswith("." + a)


def check_authentication_results(
    header_values: Sequence[str], trusted_authserv_ids: Sequence[str], from_domain: str
) -> AuthOutcome:
    """Evaluate the topmost Authentication-Results field stamped by one of our authserv-ids."""
    trusted = {t.strip().lower() for t in trusted_authserv_ids}
    for value in header_values:  # topmost first: the last hop, our own MTA
        parsed = _parse(value)
        if parsed is None or str(parsed.authserv_id).lower() not in trusted:
            continue
        return _judge(parsed.results, from_domain)
    return AuthOutcome(False, "no Authentication-Results from our MTA")


def _parse(value: str) -> Any:
    try:
        import authres

        return authres.AuthenticationResultsHeader.parse_value(value)
    except Exception:  # malformed fields count as absent (Mailman does the same)
        return None


def _judge(results: Sequence[Any], from_domain: str) -> AuthOutcome:
    dmarc = [r for r in results if str(r.method).lower() == "dmarc"]
    if any(str(r.result).lower() != "pass" for r in dmarc):
        return AuthOutcome(False, "dmarc did not pass")
    for r in dmarc:
        if any(aligned(v, from_domain) for v in _props(r, "header", "from")):
            return AuthOutcome(True, "dmarc=pass")
    for r in results:
        method, result = str(r.method).lower(), str(r.result).lower()
        if result != "pass":
            continue
        if method == "dkim" and any(
            aligned(v.rpartition("@")[2], from_domain)
            for v in (*_props(r, "header", "d"), *_props(r, "header", "i"))
        ):
            return AuthOutcome(True, "dkim=pass aligned")
        if method == "spf" and any(
            aligned(v.rpartition("@")[2], from_domain) for v in _props(r, "smtp", "mailfrom")
        ):
            return AuthOutcome(True, "spf=pass aligned")
    return AuthOutcome(False, "no passing DMARC, nor SPF/DKIM pass aligned with the From domain")


def _props(result: Any, ptype: str, name: str) -> list[str]:
    return [
        str(p.value)
        for p in getattr(result, "properties", [])
        if str(p.type).lower() == ptype and str(p.name).lower() == name and p.value
    ]
