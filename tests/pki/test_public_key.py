"""Public keys that are no keys: GOST points off the curve, (0, 0), out of range, in the
wrong subgroup, and off-curve ECDSA points - in certificates that are otherwise good.

Each doctored certificate is signed by a test CA of its family, so only the key is
wrong. OpenSSL's GOST engine agrees on what is on the curve.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

import gostcrypto.gostsignature as gs
import pytest

from mailbot.pki.crl_fetch import StaticCrlSource
from mailbot.pki.crl_store import CrlStore
from mailbot.pki.errors import InvalidPublicKeyError, SignatureError
from mailbot.pki.gost import curves, ec, hashing
from mailbot.pki.gost.keys import decode_public_key, decode_signature, digest_to_int
from mailbot.pki.issuer import InMemoryCaDirectory, signed_by
from mailbot.pki.public_key import KeyStatus, check_public_key
from mailbot.pki.signatures import verify_signature
from mailbot.pki.validation import Reason, ValidationVerdict, validate
from testkit import pki

from .conftest import OpenSSL, needs_openssl_gost
from .test_gost import _GOSTCRYPTO_NAMES

#: (key kind, publicKeyParamSet) for every family: 2001 on the CryptoPro sets (incl. Xch),
#: 2012-256 on the TC26 sets (A is twisted Edwards, cofactor 4), 2012-512 (C: cofactor 4).
FAMILIES = [
    (pki.GOST2001, "1.2.643.2.2.35.1"),
    (pki.GOST2001, "1.2.643.2.2.35.2"),
    (pki.GOST2001, "1.2.643.2.2.35.3"),
    (pki.GOST2001, "1.2.643.2.2.36.0"),
    (pki.GOST2001, "1.2.643.2.2.36.1"),
    (pki.GOST256, "1.2.643.7.1.2.1.1.1"),
    (pki.GOST256, "1.2.643.7.1.2.1.1.2"),
    (pki.GOST256, "1.2.643.7.1.2.1.1.3"),
    (pki.GOST256, "1.2.643.7.1.2.1.1.4"),
    (pki.GOST512, "1.2.643.7.1.2.1.2.1"),
    (pki.GOST512, "1.2.643.7.1.2.1.2.2"),
    (pki.GOST512, "1.2.643.7.1.2.1.2.3"),
]
COFACTOR_4 = ["1.2.643.7.1.2.1.1.1", "1.2.643.7.1.2.1.2.3"]


def _family_id(family: tuple[str, str]) -> str:
    return f"{family[0]}-{curves.PARAMSET_NAMES[family[1]]}"


def _sqrt(n: int, p: int) -> int | None:
    """A square root of n modulo the prime p (Tonelli-Shanks), or None."""
    n %= p
    if n == 0:
        return 0
    if pow(n, (p - 1) // 2, p) != 1:
        return None
    q, s = p - 1, 0
    while q % 2 == 0:
        q, s = q // 2, s + 1
    z = 2
    while pow(z, (p - 1) // 2, p) != p - 1:
        z += 1
    m, c, t, r = s, pow(z, q, p), pow(n, q, p), pow(n, (q + 1) // 2, p)
    while t != 1:
        i, t2 = 0, t
        while t2 != 1:
            t2, i = t2 * t2 % p, i + 1
        b = pow(c, 1 << (m - i - 1), p)
        m, c, t, r = i, b * b % p, t * b * b % p, r * b % p
    return r


def _first_point(curve: curves.Curve, start: int = 0) -> ec.Affine:
    """The first affine point on the curve with x ≥ start (any subgroup)."""
    x = start
    while True:
        y = _sqrt(x**3 + curve.a * x + curve.b, curve.p)
        if y is not None:
            return x, y
        x += 1


def _torsion_point(curve: curves.Curve) -> ec.Affine:
    """A point T ≠ O with 4·T = O (only cofactor-4 curves have one)."""
    while True:
        x = secrets.randbelow(curve.p)
        y = _sqrt(x**3 + curve.a * x + curve.b, curve.p)
        if y is None:
            continue
        torsion = ec.to_affine(ec.point_multiply(curve, curve.q, (x, y)), curve.p)
        if torsion is not None:
            return torsion


def _add(curve: curves.Curve, p1: ec.Affine, p2: ec.Affine) -> ec.Affine:
    total = ec.to_affine(ec._add((*p1, 1), (*p2, 1), curve.a, curve.p), curve.p)
    assert total is not None
    return total


def _small_valid_point(curve: curves.Curve) -> ec.Affine:
    """A valid public point with a small x, so that x + p still fits the encoding."""
    x = 0
    while True:
        point = _first_point(curve, x)
        if ec.public_point_problem(curve, point) is None:
            return point
        x = point[0] + 1


@dataclass(frozen=True)
class Doctored:
    """A bad point for a parameter set and the words the check must give."""

    name: str
    point: ec.Affine
    expected: str


def _doctored_points(curve: curves.Curve) -> list[Doctored]:
    qx, qy = ec.public_from_private(curve, secrets.randbelow(curve.q - 1) + 1)
    sx, sy = _small_valid_point(curve)
    cases = [
        Doctored("off_curve", (qx, (qy + 1) % curve.p), "is not a point on the curve"),
        Doctored("arbitrary", (12345, 67890), "is not a point on the curve"),
        Doctored("zero", (0, 0), "point at infinity"),
        # ≡ a valid point mod p: only the range check catches it
        Doctored("out_of_range", (sx + curve.p, sy), "outside [0, p)"),
    ]
    if curve.cofactor != 1:
        wrong = _add(curve, (qx, qy), _torsion_point(curve))
        assert ec.is_on_curve(curve, wrong)
        cases.append(Doctored("wrong_subgroup", wrong, "not in the subgroup of order q"))
    return cases


def _ca_for(kind: str, paramset: str) -> pki.Issued:
    if kind == pki.GOST2001 and hashing.GOST94 not in hashing.backend().algorithms:
        pytest.skip("GOST R 34.11-94 needs the OpenSSL GOST provider")
    return pki.make_ca(kind=kind, paramset=paramset, slot=40)


@pytest.mark.parametrize("curve", list(_GOSTCRYPTO_NAMES), ids=lambda c: c.name)
def test_cofactors_match_the_group_orders(curve: curves.Curve) -> None:
    """cofactor·q is the number of curve points gostcrypto gives (its ``m``)."""
    params = gs.CURVES_R_1323565_1_024_2019[_GOSTCRYPTO_NAMES[curve]]
    assert curve.cofactor * curve.q == params["m"]
    assert ec.point_multiply(curve, curve.q, (curve.x, curve.y))[2] == 0


@pytest.mark.parametrize("family", FAMILIES, ids=_family_id)
def test_doctored_keys_are_invalid_certificates(family: tuple[str, str], tmp_path: Path) -> None:
    kind, paramset = family
    curve = curves.CURVES_BY_OID[paramset]
    ca = _ca_for(kind, paramset)
    directory = InMemoryCaDirectory([ca.cert])
    crl_source = StaticCrlSource(CrlStore(tmp_path / "crl"))
    good = pki.make_end_entity(ca, kind=kind, paramset=paramset)
    assert good.cert.public_key_check.status is KeyStatus.VALID
    for case in _doctored_points(curve):
        key = pki.key_with_point(kind, paramset, *case.point)
        ee = pki.make_end_entity(ca, kind=kind, paramset=paramset, key=key)
        assert signed_by(ee.cert, ca.cert), case.name  # only the key is wrong
        check = ee.cert.public_key_check
        assert check.status is KeyStatus.INVALID, case.name
        assert case.expected in check.detail, (case.name, check.detail)
        with pytest.raises(InvalidPublicKeyError):
            decode_public_key(ee.cert.spki)
        result = validate(ee.cert, directory, crl_source, pki.NOW)
        assert (result.verdict, result.reason) == (
            ValidationVerdict.INVALID,
            Reason.INVALID_PUBLIC_KEY,
        )


@pytest.mark.parametrize("paramset", COFACTOR_4, ids=lambda ps: curves.PARAMSET_NAMES[ps])
def test_a_ca_key_outside_the_subgroup_verifies_nothing(paramset: str) -> None:
    """Q' = Q + T (4·T = O) passes for Q whenever 4 | z2: the old math accepted such
    signatures. Now the point is refused before any arithmetic."""
    kind = pki.GOST512 if curves.CURVES_BY_OID[paramset].size == 64 else pki.GOST256
    curve = curves.CURVES_BY_OID[paramset]
    d = secrets.randbelow(curve.q - 1) + 1
    wrong = _add(curve, ec.public_from_private(curve, d), _torsion_point(curve))
    bad_key = pki.key_with_point(kind, paramset, *wrong)
    signer = pki.KeyPair(kind, paramset, bad_key.spki, gost_private=d)
    parent = pki.make_ca(kind=kind, paramset=paramset, slot=41)
    bad_ca = pki.issue(pki.CertSpec(subject=[("CN", "Bad key CA")], is_ca=True), bad_key, parent)
    # A signature by d whose z2 kills T: verifies under Q' by the curve arithmetic alone.
    while True:
        ee = pki.issue(
            pki.CertSpec(subject=[("CN", "EE")]), pki.make_key(kind, paramset), bad_ca, signer
        )
        r, s = decode_signature(curve, ee.cert.signature)
        e = digest_to_int(hashing.digest(pki._GOST_HASH[kind], ee.cert.tbs)) % curve.q or 1
        if (curve.q - r) * pow(e, -1, curve.q) % curve.q % 4 == 0:
            break
    assert not ec.verify_digest(curve, wrong, e, r, s)  # the old math said True
    assert not signed_by(ee.cert, bad_ca.cert)
    assert bad_ca.cert.public_key_check.status is KeyStatus.INVALID
    alg = ee.cert.signature_algorithm
    with pytest.raises(InvalidPublicKeyError):
        verify_signature(bad_ca.cert.spki, alg.oid, alg.params, ee.cert.signature, ee.cert.tbs)


def test_off_curve_ecdsa_keys_are_rejected() -> None:
    ca = pki.make_ca(kind=pki.ECDSA, slot=42)
    good = pki.make_key(pki.ECDSA, slot=43)
    bad_spki = bytearray(good.spki)
    bad_spki[-1] ^= 0x01  # last byte of y: off the curve
    bad = pki.KeyPair(pki.ECDSA, None, bytes(bad_spki))
    ee = pki.make_end_entity(ca, kind=pki.ECDSA, key=bad)
    assert signed_by(ee.cert, ca.cert)
    check = ee.cert.public_key_check
    assert check.status is KeyStatus.INVALID and "does not load" in check.detail
    assert pki.make_end_entity(ca, kind=pki.ECDSA, key=good).cert.public_key_check.status is (
        KeyStatus.VALID
    )
    assert pki.make_ca(kind=pki.RSA).cert.public_key_check.status is KeyStatus.VALID
    # pyca refuses to load it as an issuer key too: a typed error, no verification.
    alg = ee.cert.signature_algorithm
    with pytest.raises(SignatureError, match="cannot load"):
        verify_signature(bytes(bad_spki), alg.oid, alg.params, ee.cert.signature, ee.cert.tbs)


def test_unknown_parameter_set_is_unchecked_not_invalid() -> None:
    spki = pki.key_with_point(pki.GOST256, "1.2.643.7.1.2.1.1.2", 1, 2).spki
    unknown = spki.replace(pki.oid("1.2.643.7.1.2.1.1.2"), pki.oid("1.2.643.7.1.2.1.1.9"))
    check = check_public_key(unknown)
    assert check.status is KeyStatus.UNCHECKED and "unknown GOST parameter set" in check.detail
    assert check_public_key(b"\x30\x03\x02\x01\x00").status is KeyStatus.INVALID


@needs_openssl_gost
@pytest.mark.parametrize("family", FAMILIES, ids=_family_id)
def test_openssl_agrees_on_what_is_on_the_curve(family: tuple[str, str], openssl: OpenSSL) -> None:
    """The engine refuses to decode the off-curve keys and (0, 0) and decodes the good one.

    It reduces coordinates ≥ p and does not check the subgroup, so those two
    cases are ours alone (GOST R 34.10 asks for Q in the subgroup of order q).
    """
    kind, paramset = family
    curve = curves.CURVES_BY_OID[paramset]
    ca = _ca_for(kind, paramset)
    qx, qy = ec.public_from_private(curve, secrets.randbelow(curve.q - 1) + 1)
    cases = [("good", (qx, qy), True)] + [
        (c.name, c.point, False)
        for c in _doctored_points(curve)
        if c.name in ("off_curve", "arbitrary", "zero")
    ]
    for name, point, ours_valid in cases:
        key = pki.key_with_point(kind, paramset, *point)
        ee = pki.make_end_entity(ca, kind=kind, paramset=paramset, key=key)
        assert (ee.cert.public_key_check.status is KeyStatus.VALID) is ours_valid, name
        openssl.file(f"{name}.pem", ee.pem())
        decoded = openssl.run("x509", "-in", f"{name}.pem", "-noout", "-pubkey")
        assert (decoded.returncode == 0) is ours_valid, (name, decoded.stderr)
