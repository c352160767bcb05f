"""A test PKI: GOST (2012-256/512, 2001), RSA and ECDSA CAs, end-entity certificates, CRLs.

Certificates are assembled with a small DER writer and signed with our own
GOST signer (:mod:`mailbot.pki.gost.ec`) or pyca for RSA/ECDSA; tests check
the results independently with OpenSSL + the GOST engine. Keys are cached per
process (RSA generation is slow), so hundreds of tests stay fast.

Nothing here is used by the daemon in production.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from mailbot.pki.certificate import KEY_USAGE_BITS, Certificate
from mailbot.pki.der import encode_tlv
from mailbot.pki.gost import ec as gost_ec
from mailbot.pki.gost import hashing
from mailbot.pki.gost.curves import CURVES_BY_OID
from mailbot.pki.gost.keys import digest_to_int, encode_public_key_bits, encode_signature

#: The clock the test PKI is built around; tests pin validation to it.
NOW = datetime(2026, 3, 2, 9, 0, 0, tzinfo=UTC)

# ----------------------------------------------------------------------------- DER writer


def _int(value: int) -> bytes:
    length = max(1, (value.bit_length() + 8) // 8)
    return encode_tlv(0x02, value.to_bytes(length, "big", signed=True))


def _int_bytes(raw: bytes) -> bytes:
    return encode_tlv(0x02, raw)


def oid(dotted: str) -> bytes:
    """DER OBJECT IDENTIFIER."""
    arcs = [int(x) for x in dotted.split(".")]
    body = bytearray()
    for arc in [arcs[0] * 40 + arcs[1], *arcs[2:]]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        body += bytes(reversed(chunk))
    return encode_tlv(0x06, bytes(body))


def seq(*items: bytes) -> bytes:
    """DER SEQUENCE of already-encoded items."""
    return encode_tlv(0x30, b"".join(items))


def _set(*items: bytes) -> bytes:
    return encode_tlv(0x31, b"".join(sorted(items)))


def _octets(raw: bytes) -> bytes:
    return encode_tlv(0x04, raw)


def _bits(raw: bytes, unused: int = 0) -> bytes:
    return encode_tlv(0x03, bytes([unused]) + raw)


def der_time(moment: datetime) -> bytes:
    """UTCTime before 2050, GeneralizedTime after (RFC 5280 §4.1.2.5)."""
    moment = moment.astimezone(UTC)
    if moment.year < 2050:
        return encode_tlv(0x17, moment.strftime("%y%m%d%H%M%SZ").encode())
    return encode_tlv(0x18, moment.strftime("%Y%m%d%H%M%SZ").encode())


_NULL = b"\x05\x00"
_TRUE = b"\x01\x01\xff"

# ------------------------------------------------------------------------------ keys

GOST256 = "gost2012-256"
GOST512 = "gost2012-512"
GOST2001 = "gost2001"
RSA = "rsa"
RSA_PSS = "rsa-pss"
ECDSA = "ecdsa"

_DEFAULT_PARAMSET = {
    GOST256: "1.2.643.2.2.35.1",
    GOST512: "1.2.643.7.1.2.1.2.1",
    GOST2001: "1.2.643.2.2.35.1",
}
_GOST_KEY_OID = {
    GOST256: "1.2.643.7.1.1.1.1",
    GOST512: "1.2.643.7.1.1.1.2",
    GOST2001: "1.2.643.2.2.19",
}
_GOST_SIG_OID = {
    GOST256: "1.2.643.7.1.1.3.2",
    GOST512: "1.2.643.7.1.1.3.3",
    GOST2001: "1.2.643.2.2.3",
}
_GOST_HASH = {
    GOST256: hashing.STREEBOG_256,
    GOST512: hashing.STREEBOG_512,
    GOST2001: hashing.GOST94,
}
_GOST_DIGEST_PARAM = {GOST256: "1.2.643.7.1.1.2.2", GOST2001: "1.2.643.2.2.30.1"}


@dataclass(frozen=True)
class KeyPair:
    """A signing key of one kind, with its SubjectPublicKeyInfo."""

    kind: str
    paramset: str | None
    spki: bytes
    gost_private: int = 0
    pyca_private: object = None

    @property
    def key_bits(self) -> bytes:
        """The public key BIT STRING content (input to the SKI hash)."""
        from mailbot.pki.gost.keys import parse_spki_algorithm

        return parse_spki_algorithm(self.spki)[2]

    def signature_algorithm(self) -> bytes:
        """DER AlgorithmIdentifier this key signs with."""
        if self.kind in _GOST_SIG_OID:
            return seq(oid(_GOST_SIG_OID[self.kind]))
        if self.kind == RSA:
            return seq(oid("1.2.840.113549.1.1.11"), _NULL)
        if self.kind == RSA_PSS:
            sha256 = seq(oid("2.16.840.1.101.3.4.2.1"), _NULL)
            params = seq(
                encode_tlv(0xA0, sha256),
                encode_tlv(0xA1, seq(oid("1.2.840.113549.1.1.8"), sha256)),
                encode_tlv(0xA2, _int(32)),
            )
            return seq(oid("1.2.840.113549.1.1.10"), params)
        return seq(oid("1.2.840.10045.4.3.2"))

    def sign(self, data: bytes) -> bytes:
        """Signature bytes as they go into the BIT STRING."""
        if self.kind in _GOST_SIG_OID:
            assert self.paramset is not None
            curve = CURVES_BY_OID[self.paramset]
            digest = hashing.digest(_GOST_HASH[self.kind], data)
            r, s = gost_ec.sign_digest(curve, self.gost_private, digest_to_int(digest))
            return encode_signature(curve, r, s)
        key = self.pyca_private
        if isinstance(key, rsa.RSAPrivateKey):
            if self.kind == RSA_PSS:
                pss = padding.PSS(padding.MGF1(hashes.SHA256()), 32)
                return key.sign(data, pss, hashes.SHA256())
            return key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        return key.sign(data, ec.ECDSA(hashes.SHA256()))

    def private_pem(self) -> bytes:
        """PKCS#8 PEM of a pyca key (RSA/ECDSA only), for OpenSSL-side checks."""
        assert self.pyca_private is not None
        key = self.pyca_private
        assert isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey)
        return key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )


def _gost_spki(kind: str, paramset: str, x: int, y: int) -> bytes:
    curve = CURVES_BY_OID[paramset]
    params = [oid(paramset)]
    if kind in _GOST_DIGEST_PARAM and paramset != "1.2.643.7.1.2.1.1.1":
        params.append(oid(_GOST_DIGEST_PARAM[kind]))
    alg = seq(oid(_GOST_KEY_OID[kind]), seq(*params))
    return seq(alg, _bits(encode_public_key_bits(curve, x, y)))


@cache
def make_key(kind: str = GOST256, paramset: str | None = None, slot: int = 0) -> KeyPair:
    """A key of the given kind; the same (kind, paramset, slot) gives the same key per process."""
    del slot  # part of the cache key only: different slots → different keys
    if kind in _GOST_KEY_OID:
        ps = paramset or _DEFAULT_PARAMSET[kind]
        curve = CURVES_BY_OID[ps]
        d = secrets.randbelow(curve.q - 1) + 1
        x, y = gost_ec.public_from_private(curve, d)
        return KeyPair(kind, ps, _gost_spki(kind, ps, x, y), gost_private=d)
    private: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    if kind in (RSA, RSA_PSS):
        private = rsa.generate_private_key(65537, 2048)
    elif kind == ECDSA:
        private = ec.generate_private_key(ec.SECP256R1())
    else:
        raise ValueError(kind)
    spki = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return KeyPair(kind, None, spki, pyca_private=private)


def key_with_point(kind: str, paramset: str | None, x: int, y: int) -> KeyPair:
    """A GOST "key" whose public point is (x, y), valid or not; it cannot sign.

    For certificates that differ from good ones only in their public key
    (off the curve, (0, 0), outside the subgroup, a coordinate ≥ p).
    """
    ps = paramset or _DEFAULT_PARAMSET[kind]
    return KeyPair(kind, ps, _gost_spki(kind, ps, x, y))


# ------------------------------------------------------------------------------ names

_NAME_OIDS = {
    "C": ("2.5.4.6", 0x13),
    "ST": ("2.5.4.8", 0x0C),
    "L": ("2.5.4.7", 0x0C),
    "STREET": ("2.5.4.9", 0x0C),
    "O": ("2.5.4.10", 0x0C),
    "OU": ("2.5.4.11", 0x0C),
    "T": ("2.5.4.12", 0x0C),
    "SN": ("2.5.4.4", 0x0C),
    "G": ("2.5.4.42", 0x0C),
    "CN": ("2.5.4.3", 0x0C),
    "E": ("1.2.840.113549.1.9.1", 0x16),
    "SNILS": ("1.2.643.100.3", 0x12),
    "INN": ("1.2.643.3.131.1.1", 0x12),
    "INNLE": ("1.2.643.100.4", 0x12),
    "OGRN": ("1.2.643.100.1", 0x12),
    "OGRNIP": ("1.2.643.100.5", 0x12),
}


def build_name(attrs: Sequence[tuple[str, str]] | Sequence[tuple[str, str, int]]) -> bytes:
    """DER Name from (short name or OID, value[, tag]) pairs, one attribute per RDN."""
    rdns = []
    for item in attrs:
        key, value = item[0], item[1]
        oid_str, tag = _NAME_OIDS.get(key, (key, 0x0C))
        if len(item) == 3:
            tag = item[2]
        codec = "utf-16-be" if tag == 0x1E else "utf-8"
        rdns.append(_set(seq(oid(oid_str), encode_tlv(tag, value.encode(codec)))))
    return seq(*rdns)


# ------------------------------------------------------------------------------ certificates


@dataclass(frozen=True)
class Issued:
    """A certificate made by the factory, with its key and its parsed form."""

    der: bytes
    key: KeyPair
    name_der: bytes

    @property
    def cert(self) -> Certificate:
        """The parsed certificate."""
        return Certificate.from_der(self.der)

    @property
    def ski(self) -> bytes:
        """Subject key identifier (SHA-1 of the key bits, RFC 5280 method 1)."""
        return hashlib.sha1(self.key.key_bits, usedforsecurity=False).digest()

    def pem(self) -> bytes:
        """PEM encoding (LF)."""
        import base64
        import textwrap

        body = "\n".join(textwrap.wrap(base64.b64encode(self.der).decode(), 64))
        return f"-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----\n".encode()


def _ext(oid_str: str, value: bytes, critical: bool = False) -> bytes:
    return seq(oid(oid_str), *([_TRUE] if critical else []), _octets(value))


def _uri(url: str) -> bytes:
    return encode_tlv(0x86, url.encode())


def _key_usage(names: Iterable[str]) -> bytes:
    # One byte: the first eight bits of RFC 5280's KeyUsage (decipherOnly needs a second).
    value = 0
    for name in names:
        value |= 0x80 >> KEY_USAGE_BITS[:8].index(name)
    raw = bytes([value])
    unused = (value & -value).bit_length() - 1 if value else 0
    return _bits(raw, unused)


@dataclass
class CertSpec:
    """What to put in a certificate (sane defaults for a GOST end-entity certificate)."""

    subject: Sequence[tuple[str, str]] | Sequence[tuple[str, str, int]] = ()
    serial: int | bytes | None = None
    not_before: datetime = NOW - timedelta(days=30)
    not_after: datetime = NOW + timedelta(days=335)
    is_ca: bool = False
    key_usage: tuple[str, ...] = ("digitalSignature", "nonRepudiation", "keyEncipherment")
    eku: tuple[str, ...] = ("1.3.6.1.5.5.7.3.2", "1.3.6.1.5.5.7.3.4")
    crl_urls: tuple[str, ...] = ()
    ca_issuer_urls: tuple[str, ...] = ()
    ocsp_urls: tuple[str, ...] = ()
    include_aki: bool = True
    include_ski: bool = True
    extra_extensions: tuple[bytes, ...] = field(default=())


def issue(
    spec: CertSpec, key: KeyPair, issuer: Issued | None = None, signing_key: KeyPair | None = None
) -> Issued:
    """Build and sign a certificate. ``issuer=None`` makes it self-signed."""
    name = build_name(spec.subject)
    signer = signing_key or (issuer.key if issuer else key)
    issuer_name = issuer.name_der if issuer else name
    if spec.serial is None:
        serial = _int_bytes(b"\x01" + secrets.token_bytes(16))
    elif isinstance(spec.serial, bytes):
        serial = _int_bytes(spec.serial)
    else:
        serial = _int(spec.serial)
    ski = hashlib.sha1(key.key_bits, usedforsecurity=False).digest()
    exts: list[bytes] = []
    if spec.include_ski:
        exts.append(_ext("2.5.29.14", _octets(ski)))
    if spec.include_aki:
        aki = issuer.ski if issuer else ski
        exts.append(_ext("2.5.29.35", seq(encode_tlv(0x80, aki))))
    if spec.is_ca:
        exts.append(_ext("2.5.29.19", seq(_TRUE), critical=True))
        exts.append(_ext("2.5.29.15", _key_usage(("keyCertSign", "cRLSign")), critical=True))
    else:
        exts.append(_ext("2.5.29.15", _key_usage(spec.key_usage), critical=True))
        if spec.eku:
            exts.append(_ext("2.5.29.37", seq(*(oid(o) for o in spec.eku))))
    if spec.crl_urls:
        dps = [seq(encode_tlv(0xA0, encode_tlv(0xA0, _uri(u)))) for u in spec.crl_urls]
        exts.append(_ext("2.5.29.31", seq(*dps)))
    if spec.ca_issuer_urls or spec.ocsp_urls:
        ads = [seq(oid("1.3.6.1.5.5.7.48.2"), _uri(u)) for u in spec.ca_issuer_urls]
        ads += [seq(oid("1.3.6.1.5.5.7.48.1"), _uri(u)) for u in spec.ocsp_urls]
        exts.append(_ext("1.3.6.1.5.5.7.1.1", seq(*ads)))
    exts += spec.extra_extensions
    sig_alg = signer.signature_algorithm()
    tbs = seq(
        encode_tlv(0xA0, _int(2)),
        serial,
        sig_alg,
        issuer_name,
        seq(der_time(spec.not_before), der_time(spec.not_after)),
        name,
        key.spki,
        encode_tlv(0xA3, seq(*exts)),
    )
    cert = seq(tbs, sig_alg, _bits(signer.sign(tbs)))
    return Issued(cert, key, name)


def make_ca(
    cn: str = "Тестовый УЦ",
    kind: str = GOST256,
    paramset: str | None = None,
    slot: int = 0,
    parent: Issued | None = None,
    not_before: datetime = NOW - timedelta(days=365),
    not_after: datetime = NOW + timedelta(days=3650),
    crl_urls: tuple[str, ...] = (),
) -> Issued:
    """A CA certificate (self-signed unless ``parent``) with a Russian-style name."""
    subject = [
        ("E", "uc@example.ru"),
        ("C", "RU"),
        ("ST", "77 г. Москва"),
        ("L", "Москва"),
        ("O", cn),
        ("OGRN", "1027700132195"),
        ("INNLE", "7707083893"),
        ("CN", cn),
    ]
    spec = CertSpec(
        subject=subject, is_ca=True, not_before=not_before, not_after=not_after, crl_urls=crl_urls
    )
    return issue(spec, make_key(kind, paramset, slot), parent)


def make_end_entity(
    issuer: Issued,
    cn: str = "Иванов Иван Иванович",
    kind: str = GOST256,
    paramset: str | None = None,
    serial: int | bytes | None = None,
    snils: str | None = "11223344595",
    crl_urls: tuple[str, ...] = ("http://cdp.example.ru/cdp/test.crl",),
    key: KeyPair | None = None,
    **overrides: object,
) -> Issued:
    """A participant's certificate with SNILS/INN/OGRN/INNLE as NumericString, CDP and AIA.

    ``key`` replaces the cached key of ``kind``/``paramset`` (e.g. :func:`key_with_point`).
    """
    subject: list[tuple[str, str]] = [
        ("E", "ivanov@example.ru"),
        ("C", "RU"),
        ("ST", "50 Московская область"),
        ("L", "Красногорск"),
        ("O", "ГБУЗ МО «Тестовая больница»"),
        ("T", "Главный врач"),
        ("SN", "Иванов"),
        ("G", "Иван Иванович"),
        ("CN", cn),
        ("INN", "500100732259"),
        ("OGRN", "1025000000010"),
        ("INNLE", "5001000010"),
    ]
    if snils is not None:
        subject.append(("SNILS", snils))
    spec = CertSpec(
        subject=subject,
        serial=serial,
        crl_urls=crl_urls,
        ca_issuer_urls=("http://cdp.example.ru/aia/ca.crt",),
        ocsp_urls=("http://ocsp.example.ru/ocsp",),
    )
    for name, value in overrides.items():
        setattr(spec, name, value)
    return issue(spec, key or make_key(kind, paramset, slot=1), issuer)


# ------------------------------------------------------------------------------ CRLs

REASONS = {
    "unspecified": 0,
    "keyCompromise": 1,
    "cACompromise": 2,
    "affiliationChanged": 3,
    "superseded": 4,
    "cessationOfOperation": 5,
    "certificateHold": 6,
    "removeFromCRL": 8,
    "privilegeWithdrawn": 9,
    "aACompromise": 10,
}


@dataclass(frozen=True)
class Revoked:
    """One CRL entry."""

    serial: int | bytes
    when: datetime = NOW - timedelta(days=3)
    reason: int | None = 1


def _entry(r: Revoked) -> bytes:
    serial = _int_bytes(r.serial) if isinstance(r.serial, bytes) else _int(r.serial)
    parts = [serial, der_time(r.when)]
    if r.reason is not None:
        parts.append(seq(_ext("2.5.29.21", encode_tlv(0x0A, bytes([r.reason])))))
    return seq(*parts)


def make_crl(
    issuer: Issued,
    revoked: Iterable[Revoked] = (),
    this_update: datetime = NOW - timedelta(hours=6),
    next_update: datetime | None = NOW + timedelta(days=7),
    number: int | None = 1,
    extra_extensions: tuple[bytes, ...] = (),
    bad_signature: bool = False,
    signing_key: KeyPair | None = None,
    raw_entries: bytes | None = None,
) -> bytes:
    """A DER CRL (v2) signed by ``issuer``'s key (or ``signing_key``)."""
    signer = signing_key or issuer.key
    sig_alg = signer.signature_algorithm()
    exts = [_ext("2.5.29.35", seq(encode_tlv(0x80, issuer.ski)))]
    if number is not None:
        exts.append(_ext("2.5.29.20", _int(number)))
    exts += extra_extensions
    entries = raw_entries if raw_entries is not None else b"".join(_entry(r) for r in revoked)
    parts = [_int(1), sig_alg, issuer.name_der, der_time(this_update)]
    if next_update is not None:
        parts.append(der_time(next_update))
    if entries:
        parts.append(encode_tlv(0x30, entries))
    parts.append(encode_tlv(0xA0, seq(*exts)))
    tbs = seq(*parts)
    signature = bytearray(signer.sign(tbs))
    if bad_signature:
        signature[len(signature) // 2] ^= 0x01
    return seq(tbs, sig_alg, _bits(bytes(signature)))


def bulk_entries(count: int, seed: int = 1, reason_every: int = 3) -> bytes:
    """Concatenated CRL entries with 16-byte serials, fast enough for a million."""
    rng = hashlib.shake_256(seed.to_bytes(8, "big")).digest(count * 16)
    when = der_time(NOW - timedelta(days=10))
    reason = seq(_ext("2.5.29.21", b"\x0a\x01\x01"))
    plain_tail = b"\x02\x10"
    out = []
    for i in range(count):
        serial = bytes([rng[i * 16] & 0x7F | 0x01]) + rng[i * 16 + 1 : i * 16 + 16]
        body = plain_tail + serial + when + (reason if i % reason_every == 0 else b"")
        out.append(b"\x30" + bytes([len(body)]) + body)
    return b"".join(out)


def bulk_serial(index: int, seed: int = 1) -> bytes:
    """The serial that :func:`bulk_entries` put at ``index``."""
    rng = hashlib.shake_256(seed.to_bytes(8, "big")).digest((index + 1) * 16)
    return bytes([rng[index * 16] & 0x7F | 0x01]) + rng[index * 16 + 1 : index * 16 + 16]


def write(path: os.PathLike[str] | str, data: bytes) -> str:
    """Write bytes and return the path as a string (for subprocess arguments)."""
    Path(path).write_bytes(data)
    return os.fspath(path)
