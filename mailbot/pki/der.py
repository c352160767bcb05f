"""A minimal, bounded DER reader over a memoryview.

asn1crypto builds Python objects for every element; for a CRL with a million
entries that costs seconds and hundreds of megabytes. This reader returns
offsets only, so callers can walk big structures and hand small slices to
asn1crypto. Every length is checked against its enclosing element.
"""

from __future__ import annotations

from typing import NamedTuple

from mailbot.pki.errors import DerError

TAG_INTEGER = 0x02
TAG_BIT_STRING = 0x03
TAG_OCTET_STRING = 0x04
TAG_OID = 0x06
TAG_ENUMERATED = 0x0A
TAG_UTC_TIME = 0x17
TAG_GENERALIZED_TIME = 0x18
TAG_SEQUENCE = 0x30
TAG_SET = 0x31

#: Deeper nesting than this is hostile input, not a certificate.
MAX_DEPTH = 64


class Tlv(NamedTuple):
    """One element: tag byte, where its content starts and ends, where the element started."""

    tag: int
    start: int  # first content byte
    end: int  # one past the last content byte
    header_start: int


def read_tlv(buf: memoryview | bytes, pos: int, limit: int, *, minimal: bool = True) -> Tlv:
    """Read the element at ``pos``; its whole encoding must end at or before ``limit``.

    ``minimal=False`` also accepts long-form lengths DER forbids (``81 05``,
    leading zero octets): for sniffing a file's shape, not for parsing it.
    """
    if pos + 2 > limit:
        raise DerError(f"truncated element at offset {pos}")
    tag = buf[pos]
    if tag & 0x1F == 0x1F:
        raise DerError(f"multi-byte tag at offset {pos} is not used in X.509")
    first = buf[pos + 1]
    p = pos + 2
    if first < 0x80:
        length = first
    elif first == 0x80:
        raise DerError(f"indefinite length at offset {pos} is not DER")
    else:
        count = first & 0x7F
        if count > 4:
            raise DerError(f"length of {count} bytes at offset {pos} is too large")
        if p + count > limit:
            raise DerError(f"truncated length at offset {pos}")
        length = int.from_bytes(buf[p : p + count], "big")
        if minimal and (length < 0x80 or buf[p] == 0):
            raise DerError(f"non-minimal length at offset {pos}")
        p += count
    if p + length > limit:
        raise DerError(f"element at offset {pos} runs past its container")
    return Tlv(tag, p, p + length, pos)


def expect(buf: memoryview | bytes, pos: int, limit: int, tag: int) -> Tlv:
    """Read the element at ``pos`` and require its tag."""
    tlv = read_tlv(buf, pos, limit)
    if tlv.tag != tag:
        raise DerError(f"expected tag 0x{tag:02x} at offset {pos}, found 0x{tlv.tag:02x}")
    return tlv


def children(buf: memoryview | bytes, tlv: Tlv) -> list[Tlv]:
    """The direct children of a constructed element (small structures only)."""
    out: list[Tlv] = []
    pos = tlv.start
    while pos < tlv.end:
        child = read_tlv(buf, pos, tlv.end)
        out.append(child)
        pos = child.end
    return out


def check_well_formed(buf: memoryview | bytes, pos: int = 0, limit: int | None = None) -> int:
    """Walk a whole element tree (bounded depth) and return where the top element ends.

    Used before asn1crypto sees untrusted bytes, so that deep nesting or bad
    lengths become a :class:`DerError` rather than a recursion error.
    """
    end_limit = len(buf) if limit is None else limit
    top = read_tlv(buf, pos, end_limit)
    stack: list[tuple[int, int]] = [(top.start, top.end)] if top.tag & 0x20 else []
    while stack:
        if len(stack) > MAX_DEPTH:
            raise DerError("nesting too deep")
        cur, end = stack[-1]
        if cur >= end:
            stack.pop()
            continue
        child = read_tlv(buf, cur, end)
        stack[-1] = (child.end, end)
        if child.tag & 0x20:
            stack.append((child.start, child.end))
    return top.end


def decode_oid(content: bytes | memoryview) -> str:
    """Dotted form of an OBJECT IDENTIFIER's content bytes."""
    data = bytes(content)
    if not data or data[-1] & 0x80:
        raise DerError("malformed OBJECT IDENTIFIER")
    arcs: list[int] = []
    value = 0
    for byte in data:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    first = arcs[0]
    head = [0, first] if first < 40 else [1, first - 40] if first < 80 else [2, first - 80]
    return ".".join(str(a) for a in head + arcs[1:])


def encode_length(length: int) -> bytes:
    """DER length octets."""
    if length < 0x80:
        return bytes([length])
    raw = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def encode_tlv(tag: int, content: bytes) -> bytes:
    """A DER element from its tag and content."""
    return bytes([tag]) + encode_length(len(content)) + content
