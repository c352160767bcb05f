"""The GOST known-answer vectors the doctor runs: valid ones verify, tampered ones do not."""

from __future__ import annotations

import pytest

from mailbot.pki.certificate import Certificate
from mailbot.pki.selftest import VECTORS, Vector, check_vector, run_selftest, tampered, verifies


def test_the_shipped_vectors_pass() -> None:
    assert run_selftest() == []


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: v.name)
def test_valid_verifies_and_tampered_does_not(vector: Vector) -> None:
    certificate = Certificate.from_der(vector.certificate)
    ca = Certificate.from_der(vector.ca)
    assert verifies(certificate, ca)
    assert tampered(certificate.tbs) != certificate.tbs
    assert not verifies(certificate, ca, tampered(certificate.tbs))


def test_the_tampered_copy_still_parses() -> None:
    # Only the signature may tell the copy apart: the flipped bit is inside the serial.
    for vector in VECTORS:
        der = vector.certificate
        tbs = Certificate.from_der(der).tbs
        start = der.index(tbs)
        copy = Certificate.from_der(der[:start] + tampered(tbs) + der[start + len(tbs) :])
        assert copy.serial_number != Certificate.from_der(der).serial_number


def test_a_wrong_key_is_reported() -> None:
    mixed = Vector("mixed", VECTORS[0].certificate, VECTORS[0].certificate)  # not its CA
    problem = check_vector(mixed)
    assert problem == "mixed: a valid signature does not verify"


def test_a_tampered_certificate_is_reported() -> None:
    der = VECTORS[1].certificate
    tbs = Certificate.from_der(der).tbs
    start = der.index(tbs)
    broken = Vector("broken", der[:start] + tampered(tbs) + der[start + len(tbs) :], VECTORS[1].ca)
    assert check_vector(broken) == "broken: a valid signature does not verify"
