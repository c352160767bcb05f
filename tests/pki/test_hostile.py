"""Hostile bytes: a typed error, never a crash (hypothesis fuzzing of loader and CRL parser)."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailbot.pki.crl import parse_crl, to_der
from mailbot.pki.errors import CrlError, PkiError
from mailbot.pki.load import load_certificate
from mailbot.pki.public_key import KeyStatus, check_public_key
from testkit import pki

_CA = pki.make_ca(slot=61)
_EE_DER = pki.make_end_entity(_CA).der
_CRL_DER = pki.make_crl(_CA, [pki.Revoked(i) for i in range(1, 6)])


def _mutate(data: bytes, edits: list[tuple[int, int]], cut: int) -> bytes:
    buf = bytearray(data)
    for pos, value in edits:
        buf[pos % len(buf)] = value
    return bytes(buf[: max(1, cut % (len(buf) + 1))])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=4),
    st.integers(0, 10**6),
)
def test_mutated_certificates(edits: list[tuple[int, int]], cut: int) -> None:
    data = _mutate(_EE_DER, edits, cut)
    try:
        cert = load_certificate(data)
    except PkiError:
        return
    assert cert.serial_hex  # a surviving mutation still gives a usable object
    cert.subject.rfc4514()
    assert cert.public_key_check.status in KeyStatus


_SPKIS = [
    pki.make_key(pki.GOST256).spki,
    pki.make_key(pki.GOST512).spki,
    pki.make_key(pki.GOST256, "1.2.643.7.1.2.1.1.1").spki,
    pki.make_key(pki.ECDSA).spki,
    pki.make_key(pki.RSA).spki,
]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(_SPKIS),
    st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=3),
    st.integers(0, 10**6),
)
def test_mutated_public_keys_get_a_verdict_not_an_exception(
    spki: bytes, edits: list[tuple[int, int]], cut: int
) -> None:
    check = check_public_key(_mutate(spki, edits, cut))
    assert check.status in KeyStatus
    assert check.status is KeyStatus.VALID or check.detail


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000))
def test_random_bytes_certificates(data: bytes) -> None:
    with contextlib.suppress(PkiError):
        load_certificate(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=4),
    st.integers(0, 10**6),
)
def test_mutated_crls(edits: list[tuple[int, int]], cut: int) -> None:
    data = _mutate(_CRL_DER, edits, cut)
    try:
        crl = parse_crl(to_der(data))
    except CrlError:
        return
    assert crl.entry_count >= 0


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000))
def test_random_bytes_crls(data: bytes) -> None:
    with contextlib.suppress(CrlError):
        parse_crl(to_der(b"\x30" + data))


@pytest.mark.parametrize(
    "data",
    [
        b"\x30" * 100 + b"\x00",  # deep nesting
        b"\x30\x84\xff\xff\xff\xff",  # huge length
        b"\x30\x89" + b"\xff" * 9,  # length of length too big
        b"\x30\x06\x02\x04" + b"\x7f" * 4 + b"\x00",  # trailing byte
        b"\x30\x0a\x30\x08\x02\x82\x01\x00",  # truncated huge integer
        b"\x30\x80\x02\x01\x01\x00\x00",  # indefinite length
    ],
)
def test_classic_hostile_der(data: bytes) -> None:
    with pytest.raises(PkiError):
        load_certificate(data)
    with pytest.raises(CrlError):
        parse_crl(data)


def test_deep_nesting_is_bounded() -> None:
    nested = b"\x05\x00"
    for _ in range(500):
        nested = (
            b"\x30"
            + (
                bytes([len(nested)])
                if len(nested) < 128
                else b"\x82" + len(nested).to_bytes(2, "big")
            )
            + nested
        )
    with pytest.raises(PkiError, match=r"deep|DER|certificate"):
        load_certificate(nested)
