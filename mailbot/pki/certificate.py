"""The X.509 certificate value object, decoded with our bounded DER reader.

asn1crypto and pyca reject or choke on things real Russian CA certificates
contain (GOST keys, odd string tags, unknown extensions), so the structure is
walked here and every extension we do not understand is kept as raw bytes.
Only structural damage (bad DER, a missing mandatory field) is an error.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property

from mailbot.pki import der
from mailbot.pki.errors import CertificateParseError, DerError
from mailbot.pki.gost.curves import PARAMSET_NAMES
from mailbot.pki.gost.keys import parse_spki_algorithm
from mailbot.pki.names import Name
from mailbot.pki.public_key import KeyCheck, check_public_key
from mailbot.pki.signatures import SIGNATURE_ALGORITHM_NAMES

#: Longest serial accepted. RFC 5280 4.1.2.2 lets conforming CAs use 20 octets
#: and asks users to handle at least that; the directories store up to 64 octets
#: (128 hex digits), so a longer serial is refused when the certificate is read,
#: before anything could try to store it.
MAX_SERIAL_OCTETS = 64

EXT_SKI = "2.5.29.14"
EXT_KEY_USAGE = "2.5.29.15"
EXT_BASIC_CONSTRAINTS = "2.5.29.19"
EXT_CRL_DP = "2.5.29.31"
EXT_EKU = "2.5.29.37"
EXT_AKI = "2.5.29.35"
EXT_AIA = "1.3.6.1.5.5.7.1.1"
AIA_OCSP = "1.3.6.1.5.5.7.48.1"
AIA_CA_ISSUERS = "1.3.6.1.5.5.7.48.2"

KEY_USAGE_BITS = (
    "digitalSignature",
    "nonRepudiation",
    "keyEncipherment",
    "dataEncipherment",
    "keyAgreement",
    "keyCertSign",
    "cRLSign",
    "encipherOnly",
    "decipherOnly",
)


@dataclass(frozen=True)
class Extension:
    """One extension as encoded (``value`` is the OCTET STRING content)."""

    oid: str
    critical: bool
    value: bytes


@dataclass(frozen=True)
class BasicConstraints:
    """basicConstraints: is the subject a CA, and how deep may its chains go."""

    ca: bool
    path_length: int | None


@dataclass(frozen=True)
class AlgorithmIdentifier:
    """An AlgorithmIdentifier: OID and the raw DER of its parameters, if any."""

    oid: str
    params: bytes | None

    @property
    def name(self) -> str:
        """Display name."""
        return SIGNATURE_ALGORITHM_NAMES.get(self.oid, self.oid)


def parse_time(tag: int, content: bytes) -> datetime:
    """UTCTime or GeneralizedTime (whole seconds, Z) as an aware UTC datetime."""
    try:
        text = content.decode("ascii")
        if tag == der.TAG_UTC_TIME:
            if len(text) != 13 or not text.endswith("Z"):
                raise ValueError("UTCTime must be YYMMDDHHMMSSZ")
            year = int(text[:2])
            text = ("19" if year >= 50 else "20") + text
        elif tag != der.TAG_GENERALIZED_TIME:
            raise ValueError(f"tag 0x{tag:02x} is not a time")
        if not text.endswith("Z") or len(text) < 15:
            raise ValueError("time must be in UTC (Z)")
        main = text[:14]
        if not main.isdigit():
            raise ValueError("non-digit in time")
        return datetime(
            int(main[:4]),
            int(main[4:6]),
            int(main[6:8]),
            int(main[8:10]),
            int(main[10:12]),
            int(main[12:14]),
            tzinfo=UTC,
        )
    except (ValueError, UnicodeDecodeError) as exc:
        raise DerError(f"bad time value: {exc}") from None


def parse_algorithm(buf: bytes, tlv: der.Tlv) -> AlgorithmIdentifier:
    """Decode an AlgorithmIdentifier element."""
    if tlv.tag != der.TAG_SEQUENCE:
        raise DerError("AlgorithmIdentifier is not a SEQUENCE")
    parts = der.children(buf, tlv)
    if not parts or parts[0].tag != der.TAG_OID:
        raise DerError("AlgorithmIdentifier without an OID")
    oid = der.decode_oid(buf[parts[0].start : parts[0].end])
    params = None
    if len(parts) > 1 and buf[parts[1].header_start : parts[1].end] != b"\x05\x00":
        params = buf[parts[1].header_start : parts[1].end]
    return AlgorithmIdentifier(oid, params)


def parse_extensions(buf: bytes, tlv: der.Tlv) -> tuple[Extension, ...]:
    """Decode an Extensions SEQUENCE into raw extensions."""
    if tlv.tag != der.TAG_SEQUENCE:
        raise DerError("Extensions is not a SEQUENCE")
    out = []
    for ext in der.children(buf, tlv):
        parts = der.children(buf, ext)
        if ext.tag != der.TAG_SEQUENCE or not parts or parts[0].tag != der.TAG_OID:
            raise DerError("malformed Extension")
        oid = der.decode_oid(buf[parts[0].start : parts[0].end])
        critical = False
        rest = parts[1:]
        if rest and rest[0].tag == 0x01:
            critical = buf[rest[0].start : rest[0].end] != b"\x00"
            rest = rest[1:]
        if len(rest) != 1 or rest[0].tag != der.TAG_OCTET_STRING:
            raise DerError(f"extension {oid} has no OCTET STRING value")
        out.append(Extension(oid, critical, buf[rest[0].start : rest[0].end]))
    return tuple(out)


def _uris(buf: bytes, general_names: list[der.Tlv]) -> list[str]:
    # uniformResourceIdentifier is [6] IMPLICIT IA5String; other GeneralName forms are skipped.
    return [buf[g.start : g.end].decode("latin-1") for g in general_names if g.tag == 0x86]


def crl_distribution_urls(value: bytes) -> tuple[str, ...]:
    """URLs of the fullName of every DistributionPoint."""
    urls: list[str] = []
    top = der.expect(value, 0, len(value), der.TAG_SEQUENCE)
    for dp in der.children(value, top):
        for field in der.children(value, dp):
            if field.tag == 0xA0:  # distributionPoint
                for name in der.children(value, field):
                    if name.tag == 0xA0:  # fullName
                        urls += _uris(value, der.children(value, name))
    return tuple(urls)


def authority_info_access(value: bytes) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(caIssuers URLs, OCSP URLs)."""
    ca_issuers: list[str] = []
    ocsp: list[str] = []
    top = der.expect(value, 0, len(value), der.TAG_SEQUENCE)
    for ad in der.children(value, top):
        parts = der.children(value, ad)
        if len(parts) != 2 or parts[0].tag != der.TAG_OID:
            raise DerError("malformed AccessDescription")
        method = der.decode_oid(value[parts[0].start : parts[0].end])
        urls = _uris(value, [parts[1]])
        if method == AIA_OCSP:
            ocsp += urls
        elif method == AIA_CA_ISSUERS:
            ca_issuers += urls
    return tuple(ca_issuers), tuple(ocsp)


def authority_key_identifier(value: bytes) -> bytes | None:
    """keyIdentifier of an AuthorityKeyIdentifier, if present."""
    top = der.expect(value, 0, len(value), der.TAG_SEQUENCE)
    for part in der.children(value, top):
        if part.tag == 0x80:
            return value[part.start : part.end]
    return None


def _bit_names(value: bytes) -> frozenset[str]:
    tlv = der.expect(value, 0, len(value), der.TAG_BIT_STRING)
    bits = value[tlv.start + 1 : tlv.end]
    names = set()
    for i, name in enumerate(KEY_USAGE_BITS):
        if i // 8 < len(bits) and bits[i // 8] & (0x80 >> (i % 8)):
            names.add(name)
    return frozenset(names)


def _basic_constraints(value: bytes) -> BasicConstraints:
    top = der.expect(value, 0, len(value), der.TAG_SEQUENCE)
    ca = False
    path: int | None = None
    for part in der.children(value, top):
        if part.tag == 0x01:
            ca = value[part.start : part.end] != b"\x00"
        elif part.tag == der.TAG_INTEGER:
            path = int.from_bytes(value[part.start : part.end], "big", signed=True)
    return BasicConstraints(ca, path)


def _eku(value: bytes) -> tuple[str, ...]:
    top = der.expect(value, 0, len(value), der.TAG_SEQUENCE)
    return tuple(
        der.decode_oid(value[p.start : p.end])
        for p in der.children(value, top)
        if p.tag == der.TAG_OID
    )


@dataclass(frozen=True)
class Certificate:
    """A parsed X.509 certificate. Build it with :meth:`from_der`."""

    der: bytes
    tbs: bytes
    version: int
    serial_bytes: bytes
    tbs_signature_algorithm: AlgorithmIdentifier
    signature_algorithm: AlgorithmIdentifier
    signature: bytes
    issuer: Name
    subject: Name
    not_before: datetime
    not_after: datetime
    spki: bytes
    key_algorithm: str
    key_paramset: str | None
    extensions: tuple[Extension, ...]
    subject_key_identifier: bytes | None
    authority_key_identifier: bytes | None
    crl_urls: tuple[str, ...]
    ca_issuer_urls: tuple[str, ...]
    ocsp_urls: tuple[str, ...]
    basic_constraints: BasicConstraints | None
    key_usage: frozenset[str] | None
    extended_key_usage: tuple[str, ...] | None
    #: Extensions whose value could not be decoded (kept, never fatal).
    undecodable_extensions: tuple[str, ...]

    @classmethod
    def from_der(cls, data: bytes) -> Certificate:
        """Parse one DER certificate; raises :class:`CertificateParseError`."""
        try:
            return _parse(bytes(data))
        except DerError as exc:
            raise CertificateParseError(f"not an X.509 certificate: {exc}") from None

    @classmethod
    def from_walked_der(cls, data: bytes) -> Certificate:
        """:meth:`from_der` for one whole element :func:`der.check_well_formed` just walked.

        The caller's walk bounded the nesting and checked every length; the
        certificate's fields are still checked as :meth:`from_der` checks them.
        """
        try:
            return _parse(bytes(data), walked=True)
        except DerError as exc:
            raise CertificateParseError(f"not an X.509 certificate: {exc}") from None

    # --- identity -----------------------------------------------------------------
    @property
    def serial_hex(self) -> str:
        """Serial as Windows shows it: upper-case hex of the DER INTEGER's bytes."""
        return self.serial_bytes.hex().upper()

    @property
    def serial_number(self) -> int:
        """Serial as an integer."""
        return int.from_bytes(self.serial_bytes, "big", signed=True)

    @property
    def thumbprint_sha1(self) -> str:
        """SHA-1 thumbprint as Windows shows it (upper-case hex, no separators)."""
        return hashlib.sha1(self.der, usedforsecurity=False).hexdigest().upper()

    @property
    def fingerprint_sha256(self) -> str:
        """SHA-256 fingerprint (upper-case hex)."""
        return hashlib.sha256(self.der).hexdigest().upper()

    # --- subject attributes ---------------------------------------------------------
    @property
    def subject_cn(self) -> str | None:
        """Subject common name."""
        return self.subject.get("CN")

    @property
    def snils(self) -> str | None:
        """SNILS (1.2.643.100.3), whatever its string tag."""
        return self.subject.get("SNILS")

    @property
    def inn(self) -> str | None:
        """Individual INN (1.2.643.3.131.1.1)."""
        return self.subject.get("INN")

    @property
    def innle(self) -> str | None:
        """Legal-entity INN (1.2.643.100.4)."""
        return self.subject.get("INNLE")

    @property
    def ogrn(self) -> str | None:
        """OGRN (1.2.643.100.1)."""
        return self.subject.get("OGRN")

    @property
    def ogrnip(self) -> str | None:
        """OGRNIP (1.2.643.100.5)."""
        return self.subject.get("OGRNIP")

    # --- roles ------------------------------------------------------------------------
    @property
    def is_ca(self) -> bool:
        """basicConstraints cA is set."""
        return self.basic_constraints is not None and self.basic_constraints.ca

    @property
    def key_paramset_name(self) -> str | None:
        """Human name of the GOST parameter set (CryptoPro-A, TC26-512-A, ...)."""
        if self.key_paramset is None:
            return None
        return PARAMSET_NAMES.get(self.key_paramset, self.key_paramset)

    @cached_property
    def public_key_check(self) -> KeyCheck:
        """Whether the subject public key is a valid key (a GOST point on its curve, ...)."""
        return check_public_key(self.spki)

    @property
    def unknown_critical_extensions(self) -> tuple[str, ...]:
        """Critical extensions this code does not interpret."""
        return tuple(
            e.oid for e in self.extensions if e.critical and e.oid not in _KNOWN_EXTENSIONS
        )

    def valid_at(self, moment: datetime) -> bool:
        """notBefore ≤ moment ≤ notAfter."""
        return self.not_before <= moment <= self.not_after


_KNOWN_EXTENSIONS = frozenset(
    {
        EXT_SKI,
        EXT_KEY_USAGE,
        EXT_BASIC_CONSTRAINTS,
        EXT_CRL_DP,
        EXT_EKU,
        EXT_AKI,
        EXT_AIA,
        "2.5.29.17",  # subjectAltName
        "2.5.29.32",  # certificatePolicies
        "2.5.29.16",  # privateKeyUsagePeriod
        "1.2.643.100.111",
        "1.2.643.100.112",
        "1.2.643.100.114",  # Russian sign tool / id kind
    }
)


def _parse(buf: bytes, walked: bool = False) -> Certificate:
    end = len(buf) if walked else der.check_well_formed(buf)
    if end != len(buf):
        raise DerError(f"{len(buf) - end} bytes after the certificate")
    top = der.expect(buf, 0, len(buf), der.TAG_SEQUENCE)
    parts = der.children(buf, top)
    if len(parts) != 3:
        raise DerError("a certificate has three parts")
    tbs_tlv, sig_alg_tlv, sig_tlv = parts
    if tbs_tlv.tag != der.TAG_SEQUENCE or sig_tlv.tag != der.TAG_BIT_STRING:
        raise DerError("bad certificate structure")
    if sig_tlv.end == sig_tlv.start or buf[sig_tlv.start] != 0:
        raise DerError("signature BIT STRING with unused bits")
    fields = der.children(buf, tbs_tlv)
    i = 0
    version = 1
    if fields and fields[0].tag == 0xA0:
        inner = der.children(buf, fields[0])
        if len(inner) != 1 or inner[0].tag != der.TAG_INTEGER:
            raise DerError("bad version")
        version = int.from_bytes(buf[inner[0].start : inner[0].end], "big") + 1
        i = 1
    if len(fields) < i + 6:
        raise DerError("tbsCertificate is missing fields")
    serial_tlv = fields[i]
    if serial_tlv.tag != der.TAG_INTEGER or serial_tlv.end == serial_tlv.start:
        raise DerError("serial is not an INTEGER")
    if serial_tlv.end - serial_tlv.start > MAX_SERIAL_OCTETS:
        raise DerError(
            f"serial of {serial_tlv.end - serial_tlv.start} octets is longer than "
            f"{MAX_SERIAL_OCTETS} (RFC 5280 allows CAs 20)"
        )
    tbs_alg = parse_algorithm(buf, fields[i + 1])
    issuer = Name.from_der(buf[fields[i + 2].header_start : fields[i + 2].end])
    validity = der.children(buf, fields[i + 3])
    if fields[i + 3].tag != der.TAG_SEQUENCE or len(validity) != 2:
        raise DerError("bad validity")
    not_before = parse_time(validity[0].tag, buf[validity[0].start : validity[0].end])
    not_after = parse_time(validity[1].tag, buf[validity[1].start : validity[1].end])
    subject = Name.from_der(buf[fields[i + 4].header_start : fields[i + 4].end])
    spki = buf[fields[i + 5].header_start : fields[i + 5].end]
    try:
        key_algorithm, key_paramset, _ = parse_spki_algorithm(spki)
    except Exception as exc:  # SignatureError: report as a structural problem
        raise DerError(f"bad SubjectPublicKeyInfo: {exc}") from None
    extensions: tuple[Extension, ...] = ()
    for extra in fields[i + 6 :]:
        if extra.tag == 0xA3:
            inner = der.children(buf, extra)
            if len(inner) != 1:
                raise DerError("bad extensions wrapper")
            extensions = parse_extensions(buf, inner[0])
    values: dict[str, object] = {}
    undecodable: list[str] = []
    seen: set[str] = set()
    for ext in extensions:
        if ext.oid in seen:
            continue  # a duplicate is invalid X.509; the first one wins
        seen.add(ext.oid)
        try:
            values[ext.oid] = _decode_extension(ext)
        except (DerError, UnicodeDecodeError, IndexError):
            undecodable.append(ext.oid)
    aia: tuple[tuple[str, ...], tuple[str, ...]] = values.get(EXT_AIA, ((), ()))  # type: ignore[assignment]
    return Certificate(
        der=buf,
        tbs=buf[tbs_tlv.header_start : tbs_tlv.end],
        version=version,
        serial_bytes=buf[serial_tlv.start : serial_tlv.end],
        tbs_signature_algorithm=tbs_alg,
        signature_algorithm=parse_algorithm(buf, sig_alg_tlv),
        signature=buf[sig_tlv.start + 1 : sig_tlv.end],
        issuer=issuer,
        subject=subject,
        not_before=not_before,
        not_after=not_after,
        spki=spki,
        key_algorithm=key_algorithm,
        key_paramset=key_paramset,
        extensions=extensions,
        subject_key_identifier=values.get(EXT_SKI),  # type: ignore[arg-type]
        authority_key_identifier=values.get(EXT_AKI),  # type: ignore[arg-type]
        crl_urls=values.get(EXT_CRL_DP, ()),  # type: ignore[arg-type]
        ca_issuer_urls=aia[0],
        ocsp_urls=aia[1],
        basic_constraints=values.get(EXT_BASIC_CONSTRAINTS),  # type: ignore[arg-type]
        key_usage=values.get(EXT_KEY_USAGE),  # type: ignore[arg-type]
        extended_key_usage=values.get(EXT_EKU),  # type: ignore[arg-type]
        undecodable_extensions=tuple(undecodable),
    )


def _decode_extension(ext: Extension) -> object:
    v = ext.value
    if ext.oid == EXT_SKI:
        tlv = der.expect(v, 0, len(v), der.TAG_OCTET_STRING)
        return v[tlv.start : tlv.end]
    if ext.oid == EXT_AKI:
        return authority_key_identifier(v)
    if ext.oid == EXT_CRL_DP:
        return crl_distribution_urls(v)
    if ext.oid == EXT_AIA:
        return authority_info_access(v)
    if ext.oid == EXT_BASIC_CONSTRAINTS:
        return _basic_constraints(v)
    if ext.oid == EXT_KEY_USAGE:
        return _bit_names(v)
    if ext.oid == EXT_EKU:
        return _eku(v)
    return None
