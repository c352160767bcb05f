"""CRL parsing that scales to millions of entries, and CRL acceptance checks.

The header (issuer, times, extensions) is decoded normally. The
revokedCertificates SEQUENCE is walked with a regular expression per entry
over the raw buffer: the common entry shapes (short serial, UTCTime, optional
reasonCode) are matched in C; anything else falls back to a full TLV parse of
that one entry. Each entry becomes one fixed-width index record (a bytes
object), never a tree of Python objects, so 1M entries fit in well under
200 MB. The signature is checked over the tbsCertList bytes through a
memoryview, without copies.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from mailbot.pki import der
from mailbot.pki.certificate import (
    EXT_AKI,
    AlgorithmIdentifier,
    Certificate,
    authority_key_identifier,
    parse_algorithm,
    parse_extensions,
    parse_time,
)
from mailbot.pki.errors import CrlError, DerError, PkiError
from mailbot.pki.names import Name
from mailbot.pki.signatures import verify_signature

EXT_CRL_NUMBER = "2.5.29.20"
EXT_DELTA_INDICATOR = "2.5.29.27"
EXT_ISSUING_DP = "2.5.29.28"
EXT_FRESHEST = "2.5.29.46"
ENTRY_REASON = "2.5.29.21"
ENTRY_INVALIDITY_DATE = "2.5.29.24"
ENTRY_CERT_ISSUER = "2.5.29.29"

#: CRL extensions we understand (anything else that is critical rejects the CRL).
_KNOWN_CRL_EXTENSIONS = frozenset(
    {
        EXT_AKI,
        EXT_CRL_NUMBER,
        EXT_DELTA_INDICATOR,
        EXT_ISSUING_DP,
        EXT_FRESHEST,
        "1.3.6.1.5.5.7.1.1",
    }
)
_KNOWN_ENTRY_EXTENSIONS = frozenset({ENTRY_REASON, ENTRY_INVALIDITY_DATE})

REASON_NAMES = {
    0: "unspecified",
    1: "keyCompromise",
    2: "cACompromise",
    3: "affiliationChanged",
    4: "superseded",
    5: "cessationOfOperation",
    6: "certificateHold",
    8: "removeFromCRL",
    9: "privilegeWithdrawn",
    10: "aACompromise",
}

# --- index records -----------------------------------------------------------------------
#: Serial key: 1 length byte + the DER INTEGER content right-aligned in 23 bytes, so that
#: sorting the keys as bytes is a total order and different encodings never collide.
SERIAL_WIDTH = 23
KEY_SIZE = SERIAL_WIDTH + 1
TIME_SIZE = 14  # "YYYYMMDDHHMMSS"
RECORD_SIZE = KEY_SIZE + TIME_SIZE + 1  # + reason byte (0xFF = none)
NO_REASON = 0xFF
_PAD = [bytes([n]) + b"\x00" * (SERIAL_WIDTH - n) for n in range(SERIAL_WIDTH + 1)]

# One whole entry body after the serial: time, then optionally exactly one reasonCode ext.
_TAIL = re.compile(
    rb"(?:\x17\x0d(\d{12})Z|\x18\x0f(\d{14})Z)"
    rb"(?:\x30\x0c\x30\x0a\x06\x03\x55\x1d\x15\x04\x03\x0a\x01([\x00-\x0a]))?",
    re.DOTALL,
)


def serial_key(serial: bytes) -> bytes:
    """The index key of a serial given as DER INTEGER content bytes."""
    if not 0 < len(serial) <= SERIAL_WIDTH:
        raise CrlError(f"serial of {len(serial)} bytes does not fit the index")
    return _PAD[len(serial)] + serial


@dataclass(frozen=True)
class CrlHeader:
    """Everything about a CRL except its entries."""

    issuer: Name
    this_update: datetime
    next_update: datetime | None
    number: int | None
    authority_key_identifier: bytes | None
    signature_algorithm: AlgorithmIdentifier
    tbs_signature_algorithm: AlgorithmIdentifier
    signature: bytes
    is_delta: bool
    delta_base: int | None
    has_issuing_distribution_point: bool
    sha256: str
    size: int


@dataclass
class ParsedCrl:
    """A parsed CRL: header, the tbsCertList span, and the sorted index records."""

    header: CrlHeader
    tbs: memoryview
    records: list[bytes]

    @property
    def entry_count(self) -> int:
        """Number of revoked entries."""
        return len(self.records)


def looks_like_crl(data: bytes | memoryview) -> bool:
    """Cheap sniff used on HTTP responses: DER SEQUENCE or PEM X509 CRL armour."""
    head = bytes(data[:64]).lstrip(b"\xef\xbb\xbf").lstrip()
    return head[:1] == b"\x30" or head.startswith(b"-----BEGIN X509 CRL-----")


def to_der(data: bytes) -> bytes:
    """DER bytes of a CRL given as DER or PEM."""
    import base64
    import binascii

    body = data.lstrip(b"\xef\xbb\xbf").lstrip()
    if body[:1] == b"\x30":
        return data if body is data else body
    match = re.search(rb"-----BEGIN X509 CRL-----(.*?)-----END X509 CRL-----", body, re.DOTALL)
    if not match:
        raise CrlError("neither a DER nor a PEM CRL")
    try:
        return base64.b64decode(b"".join(match.group(1).split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise CrlError(f"bad base64 in PEM CRL: {exc}") from None


def parse_crl(data: bytes | memoryview) -> ParsedCrl:
    """Parse a DER CRL (``data`` may be an mmap-backed memoryview); raises :class:`CrlError`."""
    try:
        return _parse(memoryview(data))
    except DerError as exc:
        raise CrlError(f"malformed CRL: {exc}") from None


def _parse(buf: memoryview) -> ParsedCrl:
    size = len(buf)
    top = der.expect(buf, 0, size, der.TAG_SEQUENCE)
    if top.end != size:
        raise DerError(f"{size - top.end} bytes after the CRL")
    tbs = der.expect(buf, top.start, top.end, der.TAG_SEQUENCE)
    sig_alg_tlv = der.read_tlv(buf, tbs.end, top.end)
    sig_tlv = der.expect(buf, sig_alg_tlv.end, top.end, der.TAG_BIT_STRING)
    if sig_tlv.end != top.end or sig_tlv.end == sig_tlv.start or buf[sig_tlv.start] != 0:
        raise DerError("bad CRL signature field")
    small = bytes(buf[sig_alg_tlv.header_start : sig_alg_tlv.end])
    sig_alg = parse_algorithm(small, der.read_tlv(small, 0, len(small)))

    alg_tlv, issuer_tlv, issuer = _algorithm_and_issuer(buf, tbs)
    alg_bytes = bytes(buf[alg_tlv.header_start : alg_tlv.end])
    tbs_alg = parse_algorithm(alg_bytes, der.read_tlv(alg_bytes, 0, len(alg_bytes)))
    this_tlv = der.read_tlv(buf, issuer_tlv.end, tbs.end)
    this_update = parse_time(this_tlv.tag, bytes(buf[this_tlv.start : this_tlv.end]))
    pos = this_tlv.end
    next_update = None
    records: list[bytes] = []
    extensions_tlv = None
    while pos < tbs.end:
        tlv = der.read_tlv(buf, pos, tbs.end)
        if tlv.tag in (der.TAG_UTC_TIME, der.TAG_GENERALIZED_TIME) and next_update is None:
            next_update = parse_time(tlv.tag, bytes(buf[tlv.start : tlv.end]))
        elif tlv.tag == der.TAG_SEQUENCE and not records:
            records = _entries(buf, tlv.start, tlv.end)
        elif tlv.tag == 0xA0:
            extensions_tlv = tlv
        else:
            raise DerError(f"unexpected element 0x{tlv.tag:02x} in tbsCertList")
        pos = tlv.end
    number = None
    aki = None
    is_delta = False
    delta_base = None
    has_idp = False
    if extensions_tlv is not None:
        ext_bytes = bytes(buf[extensions_tlv.start : extensions_tlv.end])
        der.check_well_formed(ext_bytes)
        seen: set[str] = set()
        for ext in parse_extensions(ext_bytes, der.read_tlv(ext_bytes, 0, len(ext_bytes))):
            if ext.oid in seen:
                raise CrlError(f"duplicate CRL extension {ext.oid}")
            seen.add(ext.oid)
            if ext.critical and ext.oid not in _KNOWN_CRL_EXTENSIONS:
                raise CrlError(f"unknown critical CRL extension {ext.oid}")
            if ext.oid == EXT_CRL_NUMBER:
                number = _integer(ext.value)
            elif ext.oid == EXT_AKI:
                aki = authority_key_identifier(ext.value)
            elif ext.oid == EXT_DELTA_INDICATOR:
                is_delta = True
                delta_base = _integer(ext.value)
            elif ext.oid == EXT_ISSUING_DP:
                has_idp = True
                _check_idp(ext.value)
    records.sort()
    header = CrlHeader(
        issuer=issuer,
        this_update=this_update,
        next_update=next_update,
        number=number,
        authority_key_identifier=aki,
        signature_algorithm=sig_alg,
        tbs_signature_algorithm=tbs_alg,
        signature=bytes(buf[sig_tlv.start + 1 : sig_tlv.end]),
        is_delta=is_delta,
        delta_base=delta_base,
        has_issuing_distribution_point=has_idp,
        sha256=hashlib.sha256(buf).hexdigest(),
        size=size,
    )
    return ParsedCrl(header, buf[tbs.header_start : tbs.end], records)


def crl_issuer(data: bytes | memoryview) -> Name:
    """The issuer of a DER CRL, read from its header without walking the entries."""
    buf = memoryview(data)
    try:
        top = der.expect(buf, 0, len(buf), der.TAG_SEQUENCE)
        return _algorithm_and_issuer(buf, der.expect(buf, top.start, top.end, der.TAG_SEQUENCE))[2]
    except DerError as exc:
        raise CrlError(f"malformed CRL: {exc}") from None


def _algorithm_and_issuer(buf: memoryview, tbs: der.Tlv) -> tuple[der.Tlv, der.Tlv, Name]:
    """tbsCertList's signature AlgorithmIdentifier, issuer element and issuer name."""
    pos = tbs.start
    first = der.read_tlv(buf, pos, tbs.end)
    if first.tag == der.TAG_INTEGER:
        if bytes(buf[first.start : first.end]) != b"\x01":
            raise DerError("unsupported CRL version")
        pos = first.end
    alg_tlv = der.read_tlv(buf, pos, tbs.end)
    issuer_tlv = der.expect(buf, alg_tlv.end, tbs.end, der.TAG_SEQUENCE)
    issuer_bytes = bytes(buf[issuer_tlv.header_start : issuer_tlv.end])
    der.check_well_formed(issuer_bytes)
    return alg_tlv, issuer_tlv, Name.from_der(issuer_bytes)


def _integer(value: bytes) -> int:
    tlv = der.expect(value, 0, len(value), der.TAG_INTEGER)
    if tlv.end != len(value) or tlv.end == tlv.start:
        raise DerError("bad INTEGER")
    return int.from_bytes(value[tlv.start : tlv.end], "big", signed=True)


def _check_idp(value: bytes) -> None:
    """issuingDistributionPoint: we accept a plain one, reject scopes we do not implement."""
    top = der.expect(value, 0, len(value), der.TAG_SEQUENCE)
    for part in der.children(value, top):
        # [1] onlyContainsUserCerts is fine for end-entity checks; the rest narrows or
        # widens the scope (CA certs only, some reasons only, indirect) — not supported.
        if part.tag in (0x82, 0x83, 0x84, 0xA3, 0x85):
            raise CrlError(
                "CRL with an issuingDistributionPoint scope we do not support "
                f"(field tag 0x{part.tag:02x})"
            )


def _entries(buf: memoryview, start: int, end: int) -> list[bytes]:
    """Walk revokedCertificates; fast path per entry, full parse when it does not fit."""
    records: list[bytes] = []
    append = records.append
    tail = _TAIL.fullmatch
    pad = _PAD
    pos = start
    while pos < end:
        ln = buf[pos + 1] if pos + 1 < end else 0x80
        sl = buf[pos + 3] if pos + 3 < end else 0
        e_end = pos + 2 + ln
        s_end = pos + 4 + sl
        if (
            buf[pos] == 0x30
            and ln < 0x80
            and buf[pos + 2] == 0x02
            and 0 < sl <= SERIAL_WIDTH
            and e_end <= end
            and s_end < e_end
        ):
            m = tail(buf, s_end, e_end)
            if m is not None:
                utc, gen, r1 = m.groups()
                # UTCTime years 50–99 are 19xx (RFC 5280 §4.1.2.5.1)
                when = gen if utc is None else (b"19" if utc[0] >= 0x35 else b"20") + utc
                reason = r1 or b"\xff"
                append(pad[sl] + bytes(buf[pos + 4 : s_end]) + when + reason)
                pos = e_end
                continue
        record, pos = _slow_entry(buf, pos, end)
        append(record)
    return records


def _slow_entry(buf: memoryview, pos: int, end: int) -> tuple[bytes, int]:
    entry = der.expect(buf, pos, end, der.TAG_SEQUENCE)
    raw = bytes(buf[entry.header_start : entry.end])
    der.check_well_formed(raw)
    parts = der.children(raw, der.read_tlv(raw, 0, len(raw)))
    if len(parts) not in (2, 3) or parts[0].tag != der.TAG_INTEGER:
        raise DerError("malformed CRL entry")
    serial = raw[parts[0].start : parts[0].end]
    when_dt = parse_time(parts[1].tag, raw[parts[1].start : parts[1].end])
    reason = NO_REASON
    if len(parts) == 3:
        for ext in parse_extensions(raw, parts[2]):
            if ext.oid == ENTRY_REASON:
                tlv = der.expect(ext.value, 0, len(ext.value), der.TAG_ENUMERATED)
                value = ext.value[tlv.start : tlv.end]
                if len(value) != 1 or value[0] > 10:
                    raise DerError("bad reasonCode")
                reason = value[0]
            elif ext.oid == ENTRY_CERT_ISSUER:
                raise CrlError("indirect CRL entries (certificateIssuer) are not supported")
            elif ext.critical and ext.oid not in _KNOWN_ENTRY_EXTENSIONS:
                raise CrlError(f"unknown critical CRL entry extension {ext.oid}")
    return serial_key(serial) + when_dt.strftime("%Y%m%d%H%M%S").encode() + bytes(
        [reason]
    ), entry.end


# --- acceptance ---------------------------------------------------------------------------


def verify_crl_signature(crl: ParsedCrl, ca: Certificate) -> bool:
    """Whether the CRL was signed by this CA certificate's key (issuer, AKI and signature)."""
    h = crl.header
    if h.issuer.normalized_key() != ca.subject.normalized_key():
        return False
    if (
        h.authority_key_identifier is not None
        and ca.subject_key_identifier is not None
        and h.authority_key_identifier != ca.subject_key_identifier
    ):
        return False
    if h.signature_algorithm != h.tbs_signature_algorithm:
        return False
    try:
        return verify_signature(
            ca.spki, h.signature_algorithm.oid, h.signature_algorithm.params, h.signature, crl.tbs
        )
    except PkiError:
        return False


def is_current(header: CrlHeader, at: datetime, grace: timedelta) -> bool:
    """thisUpdate ≤ at < nextUpdate, with ``grace`` for clock skew; no nextUpdate → never."""
    if header.next_update is None:
        return False
    return header.this_update - grace <= at < header.next_update + grace
