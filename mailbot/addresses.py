"""E-mail addresses as the sender gate compares them (step 2: case-insensitively).

:func:`normalize_address` is the one comparison key, used by the gate, the
directories and the reply counter: the local part NFC-normalised and
lower-cased (Unicode-aware, RFC 6532 addresses such as ``иван@пример.рф``
included), the domain as IDNA ASCII labels, lower-cased, so that a domain
written in Unicode (``Пример.РФ``) and in punycode (``xn--e1afmkfd.xn--p1ai``)
is the same domain.
"""

from __future__ import annotations

import unicodedata

#: Longer addresses are never trusted (the directory stores at most this many characters).
MAX_ADDRESS_CHARS = 320
#: RFC 1035: a domain name has at most 253 characters, a label at most 63.
_MAX_DOMAIN_CHARS = 253


def normalize_address(address: str) -> str:
    """The comparison key of *address*; never raises, linear in its length."""
    text = address.strip()
    local, at, domain = text.rpartition("@")
    if not at:
        return unicodedata.normalize("NFC", text).lower()
    return f"{unicodedata.normalize('NFC', local).lower()}@{ascii_domain(domain)}"


def ascii_domain(domain: str) -> str:
    """*domain* in IDNA ASCII form, lower-cased; as written (lower-cased) if it is no valid IDN."""
    if domain.isascii():
        return domain.lower()
    if len(domain) > _MAX_DOMAIN_CHARS:
        # Bounds the punycode work: no valid domain is this long.
        return unicodedata.normalize("NFC", domain).lower()
    try:
        # The stdlib codec implements IDNA 2003 (nameprep folds case and width first).
        return domain.encode("idna").decode("ascii").lower()
    except UnicodeError:
        return unicodedata.normalize("NFC", domain).lower()
