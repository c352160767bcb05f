"""GOST keys and signatures as they appear in X.509: the byte orders in one place.

* SubjectPublicKeyInfo: the BIT STRING holds an OCTET STRING of X‖Y, each half
  **little-endian** (RFC 4491 §2.3.2, RFC 9215).
* The signature BIT STRING is s‖r, each half **big-endian** (RFC 4491 §2.2.2).
* The digest is read as a **little-endian** integer (OpenSSL's gost engine
  reverses the Streebog output before the math).
"""

from __future__ import annotations

from dataclasses import dataclass

from mailbot.pki import der
from mailbot.pki.errors import (
    DerError,
    InvalidPublicKeyError,
    SignatureError,
    UnsupportedAlgorithmError,
)
from mailbot.pki.gost.curves import CURVES_BY_OID, Curve
from mailbot.pki.gost.ec import public_point_problem

KEY_GOST2001 = "1.2.643.2.2.19"
KEY_GOST2012_256 = "1.2.643.7.1.1.1.1"
KEY_GOST2012_512 = "1.2.643.7.1.1.1.2"
GOST_KEY_OIDS = frozenset({KEY_GOST2001, KEY_GOST2012_256, KEY_GOST2012_512})


@dataclass(frozen=True)
class GostPublicKey:
    """A decoded GOST public key: its algorithm, parameter set and point.

    Made by :func:`decode_public_key`, which only returns valid points.
    """

    algorithm: str
    paramset: str
    curve: Curve
    x: int
    y: int


def parse_spki_algorithm(spki: bytes) -> tuple[str, str | None, bytes]:
    """(key algorithm OID, first parameter OID if any, public key BIT STRING content)."""
    try:
        top = der.expect(spki, 0, len(spki), der.TAG_SEQUENCE)
        alg, bits = der.children(spki, top)[:2]
        alg_parts = der.children(spki, alg)
        oid = der.decode_oid(spki[alg_parts[0].start : alg_parts[0].end])
        param_oid: str | None = None
        if len(alg_parts) > 1:
            params = alg_parts[1]
            if params.tag == der.TAG_SEQUENCE:
                inner = der.children(spki, params)
                if inner and inner[0].tag == der.TAG_OID:
                    param_oid = der.decode_oid(spki[inner[0].start : inner[0].end])
            elif params.tag == der.TAG_OID:
                param_oid = der.decode_oid(spki[params.start : params.end])
        if bits.tag != der.TAG_BIT_STRING or bits.end <= bits.start:
            raise SignatureError("public key is not a BIT STRING")
        return oid, param_oid, bytes(spki[bits.start + 1 : bits.end])
    except (DerError, ValueError, IndexError) as exc:
        raise SignatureError(f"malformed SubjectPublicKeyInfo: {exc}") from None


def decode_public_key(spki: bytes) -> GostPublicKey:
    """Decode a GOST SubjectPublicKeyInfo (DER) and validate its point.

    Raises :class:`InvalidPublicKeyError` for a point that is not a valid key
    of its parameter set (see :func:`~mailbot.pki.gost.ec.public_point_problem`),
    :class:`SignatureError` for a malformed encoding and
    :class:`UnsupportedAlgorithmError` for an unknown algorithm or parameter set.
    """
    algorithm, paramset, key_bits = parse_spki_algorithm(spki)
    if algorithm not in GOST_KEY_OIDS:
        raise UnsupportedAlgorithmError(f"not a GOST key: {algorithm}")
    if paramset is None:
        raise UnsupportedAlgorithmError("GOST key without a parameter set")
    curve = CURVES_BY_OID.get(paramset)
    if curve is None:
        raise UnsupportedAlgorithmError(f"unknown GOST parameter set {paramset}")
    if (curve.size == 64) != (algorithm == KEY_GOST2012_512):
        raise SignatureError(f"parameter set {paramset} does not fit key algorithm {algorithm}")
    try:
        inner = der.expect(key_bits, 0, len(key_bits), der.TAG_OCTET_STRING)
    except DerError as exc:
        raise SignatureError(f"GOST public key is not an OCTET STRING: {exc}") from None
    raw = key_bits[inner.start : inner.end]
    if len(raw) != 2 * curve.size or inner.end != len(key_bits):
        raise SignatureError(f"GOST public key has {len(raw)} bytes, expected {2 * curve.size}")
    x = int.from_bytes(raw[: curve.size], "little")
    y = int.from_bytes(raw[curve.size :], "little")
    problem = public_point_problem(curve, (x, y))
    if problem is not None:
        raise InvalidPublicKeyError(f"the GOST public key {problem}")
    return GostPublicKey(algorithm, paramset, curve, x, y)


def encode_public_key_bits(curve: Curve, x: int, y: int) -> bytes:
    """The BIT STRING content (OCTET STRING of X‖Y little-endian) for a public key."""
    raw = x.to_bytes(curve.size, "little") + y.to_bytes(curve.size, "little")
    return der.encode_tlv(der.TAG_OCTET_STRING, raw)


def decode_signature(curve: Curve, signature: bytes) -> tuple[int, int]:
    """(r, s) from the X.509 signature bytes s‖r."""
    if len(signature) != 2 * curve.size:
        raise SignatureError(
            f"GOST signature has {len(signature)} bytes, expected {2 * curve.size}"
        )
    s = int.from_bytes(signature[: curve.size], "big")
    r = int.from_bytes(signature[curve.size :], "big")
    return r, s


def encode_signature(curve: Curve, r: int, s: int) -> bytes:
    """X.509 signature bytes s‖r."""
    return s.to_bytes(curve.size, "big") + r.to_bytes(curve.size, "big")


def digest_to_int(digest: bytes) -> int:
    """The digest as the integer the GOST math uses (little-endian)."""
    return int.from_bytes(digest, "little")
