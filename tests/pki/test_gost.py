"""GOST math, byte orders and hashing, cross-checked against gostcrypto and OpenSSL."""

from __future__ import annotations

import secrets
import time

import gostcrypto.gosthash
import gostcrypto.gostsignature as gs
import pytest

from mailbot.pki.gost import curves, ec, hashing
from mailbot.pki.gost.keys import decode_public_key, decode_signature, digest_to_int
from mailbot.pki.issuer import signed_by
from mailbot.pki.load import load_certificate
from mailbot.pki.signatures import verify_signature
from testkit import pki

from .conftest import DATA, OpenSSL, needs_openssl_gost

_GOSTCRYPTO_NAMES = {
    curves.TC26_256_A: "id-tc26-gost-3410-2012-256-paramSetA",
    curves.CRYPTOPRO_A: "id-tc26-gost-3410-2012-256-paramSetB",
    curves.CRYPTOPRO_B: "id-tc26-gost-3410-2012-256-paramSetC",
    curves.CRYPTOPRO_C: "id-tc26-gost-3410-2012-256-paramSetD",
    curves.TC26_512_A: "id-tc26-gost-3410-12-512-paramSetA",
    curves.TC26_512_B: "id-tc26-gost-3410-12-512-paramSetB",
    curves.TC26_512_C: "id-tc26-gost-3410-2012-512-paramSetC",
}
ALL_256 = [
    "1.2.643.2.2.35.1",
    "1.2.643.2.2.35.2",
    "1.2.643.2.2.35.3",
    "1.2.643.2.2.36.0",
    "1.2.643.2.2.36.1",
    "1.2.643.7.1.2.1.1.1",
    "1.2.643.7.1.2.1.1.2",
    "1.2.643.7.1.2.1.1.3",
    "1.2.643.7.1.2.1.1.4",
]
ALL_512 = ["1.2.643.7.1.2.1.2.1", "1.2.643.7.1.2.1.2.2", "1.2.643.7.1.2.1.2.3"]


def _gostcrypto(curve: curves.Curve) -> gs.GOST34102012:
    mode = gs.MODE_256 if curve.size == 32 else gs.MODE_512
    return gs.new(mode, gs.CURVES_R_1323565_1_024_2019[_GOSTCRYPTO_NAMES[curve]])


@pytest.mark.parametrize("curve", list(_GOSTCRYPTO_NAMES), ids=lambda c: c.name)
def test_curve_constants_match_gostcrypto(curve: curves.Curve) -> None:
    g = _gostcrypto(curve)
    assert (g._p, g._a, g._b, g._q, g._x, g._y) == (
        curve.p,
        curve.a,
        curve.b,
        curve.q,
        curve.x,
        curve.y,
    )
    assert ec.is_on_curve(curve, (curve.x, curve.y))


@pytest.mark.parametrize("curve", list(_GOSTCRYPTO_NAMES), ids=lambda c: c.name)
def test_our_math_agrees_with_gostcrypto_both_ways(curve: curves.Curve) -> None:
    g = _gostcrypto(curve)
    n = curve.size
    d = secrets.randbelow(curve.q - 1) + 1
    qx, qy = ec.public_from_private(curve, d)
    pub_be = bytearray(qx.to_bytes(n, "big") + qy.to_bytes(n, "big"))
    assert bytes(g.public_key_generate(bytearray(d.to_bytes(n, "big")))) == bytes(pub_be)
    e = secrets.randbits(8 * n)
    r, s = ec.sign_digest(curve, d, e)
    assert g.verify(
        pub_be,
        bytearray(e.to_bytes(n, "big")),
        bytearray(r.to_bytes(n, "big") + s.to_bytes(n, "big")),
    )
    sig = bytes(g.sign(bytearray(d.to_bytes(n, "big")), bytearray(e.to_bytes(n, "big"))))
    r2, s2 = int.from_bytes(sig[:n], "big"), int.from_bytes(sig[n:], "big")
    assert ec.verify_digest(curve, (qx, qy), e, r2, s2)
    assert not ec.verify_digest(curve, (qx, qy), e ^ 1, r2, s2)
    assert not ec.verify_digest(curve, (qx, qy + 1), e, r2, s2)  # off-curve key
    assert not ec.verify_digest(curve, (qx, qy), e, 0, s2)


def test_hashing_backend_agrees_with_gostcrypto() -> None:
    data = secrets.token_bytes(3000)
    for name in (hashing.STREEBOG_256, hashing.STREEBOG_512):
        ours = hashing.digest(name, data)
        ref = bytes(gostcrypto.gosthash.new(name, data=bytearray(data)).digest())
        assert ours == ref


def test_provider_is_loaded_in_process() -> None:
    backend = hashing.backend()
    if backend.name != "openssl-gostprov":
        pytest.skip(f"GOST provider not available: {backend.detail}")
    assert hashing.GOST94 in backend.algorithms
    h = hashing.new(hashing.STREEBOG_256)
    h.update(b"012345678901234567890123456789012345678901234567890123456789012")
    assert h.digest().hex().startswith("9d151eef")


def test_fallback_backend_still_verifies(gost_ca: pki.Issued) -> None:
    ee = pki.make_end_entity(gost_ca)
    try:
        hashing.force_backend("gostcrypto")
        assert hashing.backend().name == "gostcrypto"
        assert signed_by(ee.cert, gost_ca.cert)
    finally:
        hashing.force_backend(None)
    assert hashing.backend().name in ("openssl-gostprov", "gostcrypto")


@pytest.mark.parametrize("paramset", ALL_256 + ALL_512)
def test_factory_certificates_verify_for_every_paramset(paramset: str) -> None:
    kind = pki.GOST512 if paramset in ALL_512 else pki.GOST256
    ca = pki.make_ca(kind=kind, paramset=paramset)
    ee = pki.make_end_entity(ca, kind=kind, paramset=paramset)
    assert signed_by(ee.cert, ca.cert)
    assert signed_by(ca.cert, ca.cert)
    # second implementation: gostcrypto on the same bytes, with the byte orders undone
    key = decode_public_key(ca.cert.spki)
    r, s = decode_signature(key.curve, ee.cert.signature)
    n = key.curve.size
    digest = hashing.digest(pki._GOST_HASH[kind], ee.cert.tbs)
    g = _gostcrypto(key.curve)
    assert g.verify(
        bytearray(key.x.to_bytes(n, "big") + key.y.to_bytes(n, "big")),
        bytearray(digest_to_int(digest).to_bytes(n, "big")),
        bytearray(r.to_bytes(n, "big") + s.to_bytes(n, "big")),
    )
    other = pki.make_ca(kind=kind, paramset=paramset, slot=7)
    assert not signed_by(ee.cert, other.cert)


@pytest.mark.parametrize("kind", [pki.RSA, pki.RSA_PSS, pki.ECDSA])
def test_rsa_and_ecdsa(kind: str) -> None:
    ca = pki.make_ca(kind=kind)
    ee = pki.make_end_entity(ca, kind=pki.ECDSA)
    assert signed_by(ee.cert, ca.cert)
    tampered = bytearray(ee.cert.signature)
    tampered[-1] ^= 1
    c = ee.cert
    assert not verify_signature(
        ca.cert.spki,
        c.signature_algorithm.oid,
        c.signature_algorithm.params,
        bytes(tampered),
        c.tbs,
    )


def test_gost2001_legacy() -> None:
    if hashing.GOST94 not in hashing.backend().algorithms:
        pytest.skip("GOST R 34.11-94 needs the OpenSSL GOST provider")
    ca = pki.make_ca(kind=pki.GOST2001)
    ee = pki.make_end_entity(ca, kind=pki.GOST2001)
    assert signed_by(ee.cert, ca.cert)
    assert not signed_by(ee.cert, pki.make_ca(kind=pki.GOST2001, slot=3).cert)


def test_a_2001_key_cannot_vouch_for_a_2012_signature() -> None:
    ca2012 = pki.make_ca()
    ee = pki.make_end_entity(ca2012)
    ca2001 = pki.make_ca(kind=pki.GOST2001)
    assert not signed_by(ee.cert, ca2001.cert)


def test_real_pair_verifies() -> None:
    root = load_certificate((DATA / "mincifry_root_2022.cer").read_bytes())
    sub = load_certificate((DATA / "sertum_pro_2024_by_mincifry.cer").read_bytes())
    assert signed_by(root, root)
    assert signed_by(sub, root)
    assert not signed_by(root, sub)


def test_speed_of_one_256_verification(gost_ca: pki.Issued) -> None:
    ee = pki.make_end_entity(gost_ca)
    cert, ca = ee.cert, gost_ca.cert
    signed_by(cert, ca)
    best = min(_timed(lambda: signed_by(cert, ca)) for _ in range(10))
    assert best < 0.010, f"{best * 1000:.2f} ms"


def _timed(fn) -> float:  # type: ignore[no-untyped-def]
    t = time.perf_counter()
    assert fn()
    return time.perf_counter() - t


@needs_openssl_gost
@pytest.mark.parametrize(
    ("algorithm", "paramset"),
    [
        ("gost2012_256", "A"),
        ("gost2012_256", "B"),
        ("gost2012_256", "C"),
        ("gost2012_256", "TCA"),
        ("gost2012_256", "XA"),
        ("gost2012_512", "A"),
        ("gost2012_512", "B"),
        ("gost2012_512", "C"),
    ],
)
def test_openssl_made_certificates_verify(openssl: OpenSSL, algorithm: str, paramset: str) -> None:
    """Byte orders checked against certificates signed by OpenSSL's GOST engine."""
    r = openssl.run(
        "genpkey", "-algorithm", algorithm, "-pkeyopt", f"paramset:{paramset}", "-out", "ca.key"
    )
    assert r.returncode == 0, r.stderr
    r = openssl.run(
        "req",
        "-x509",
        "-new",
        "-key",
        "ca.key",
        "-subj",
        "/CN=OpenSSL CA/O=Test",
        "-days",
        "30",
        "-outform",
        "DER",
        "-out",
        "ca.cer",
    )
    assert r.returncode == 0, r.stderr
    r = openssl.run(
        "genpkey", "-algorithm", algorithm, "-pkeyopt", f"paramset:{paramset}", "-out", "ee.key"
    )
    assert r.returncode == 0, r.stderr
    r = openssl.run("req", "-new", "-key", "ee.key", "-subj", "/CN=Participant", "-out", "ee.csr")
    assert r.returncode == 0, r.stderr
    r = openssl.run(
        "x509",
        "-req",
        "-in",
        "ee.csr",
        "-CA",
        "ca.cer",
        "-CAform",
        "DER",
        "-CAkey",
        "ca.key",
        "-set_serial",
        "4098",
        "-days",
        "10",
        "-outform",
        "DER",
        "-out",
        "ee.cer",
    )
    assert r.returncode == 0, r.stderr
    ca = load_certificate((openssl.workdir / "ca.cer").read_bytes())
    ee = load_certificate((openssl.workdir / "ee.cer").read_bytes())
    assert ee.serial_hex == "1002"
    assert signed_by(ca, ca)
    assert signed_by(ee, ca)


@needs_openssl_gost
@pytest.mark.parametrize("kind", [pki.GOST256, pki.GOST512, pki.GOST2001, pki.RSA, pki.ECDSA])
def test_openssl_accepts_factory_certificates_and_crls(openssl: OpenSSL, kind: str) -> None:
    if kind == pki.GOST2001 and hashing.GOST94 not in hashing.backend().algorithms:
        pytest.skip("GOST R 34.11-94 needs the OpenSSL GOST provider")
    ca = pki.make_ca(kind=kind)
    good = pki.make_end_entity(ca, kind=kind, serial=0x1001)
    bad = pki.make_end_entity(ca, kind=kind, serial=0x1002)
    openssl.file("ca.pem", ca.pem())
    openssl.file("good.pem", good.pem())
    openssl.file("bad.pem", bad.pem())
    openssl.file("crl.der", pki.make_crl(ca, [pki.Revoked(0x1002)]))
    assert openssl.run("crl", "-inform", "DER", "-in", "crl.der", "-out", "crl.pem").returncode == 0
    at = str(int(pki.NOW.timestamp()))
    ok = openssl.run(
        "verify",
        "-CAfile",
        "ca.pem",
        "-CRLfile",
        "crl.pem",
        "-crl_check",
        "-attime",
        at,
        "good.pem",
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    revoked = openssl.run(
        "verify", "-CAfile", "ca.pem", "-CRLfile", "crl.pem", "-crl_check", "-attime", at, "bad.pem"
    )
    assert revoked.returncode != 0 and "revoked" in revoked.stdout + revoked.stderr
