"""Known-answer self-test of GOST signature verification, for ``mailbot doctor``.

Each vector is a certificate and the CA that signed it
(:mod:`mailbot.pki.selftest_vectors`): the signature must verify, and must not
once one bit of the signed part is flipped. A verifier that accepts everything
(or nothing) after an upgrade of a dependency or a bad install fails here, not
on a participant's letter.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailbot.pki import selftest_vectors as vectors
from mailbot.pki.certificate import Certificate
from mailbot.pki.errors import PkiError
from mailbot.pki.signatures import verify_signature


@dataclass(frozen=True)
class Vector:
    """A certificate and the DER of the CA whose key must verify it."""

    name: str
    certificate: bytes
    ca: bytes


VECTORS: tuple[Vector, ...] = (
    Vector("GOST R 34.10-2012 256", vectors.CERTIFICATE_256, vectors.CA_256),
    Vector("GOST R 34.10-2012 512", vectors.CERTIFICATE_512, vectors.CA_512),
)

#: Which bit of the signed part the tampered copy flips: in the serial number,
#: so the copy still parses and only the signature can tell.
_FLIPPED_BYTE = 16


def verifies(certificate: Certificate, ca: Certificate, tbs: bytes | None = None) -> bool:
    """Whether *ca*'s key verifies *certificate*'s signature over *tbs* (default: its own)."""
    return verify_signature(
        ca.spki,
        certificate.signature_algorithm.oid,
        certificate.signature_algorithm.params,
        certificate.signature,
        certificate.tbs if tbs is None else tbs,
    )


def tampered(tbs: bytes) -> bytes:
    """*tbs* with one bit flipped."""
    changed = bytearray(tbs)
    changed[_FLIPPED_BYTE] ^= 0x01
    return bytes(changed)


def check_vector(vector: Vector) -> str | None:
    """None when *vector* verifies and its tampered copy does not; else what went wrong."""
    try:
        certificate = Certificate.from_der(vector.certificate)
        ca = Certificate.from_der(vector.ca)
        if not verifies(certificate, ca):
            return f"{vector.name}: a valid signature does not verify"
        if verifies(certificate, ca, tampered(certificate.tbs)):
            return f"{vector.name}: a signature over tampered data verifies"
    except PkiError as exc:
        return f"{vector.name}: {type(exc).__name__}: {exc}"
    return None


def run_selftest(selected: tuple[Vector, ...] = VECTORS) -> list[str]:
    """The problems found (empty: GOST signature verification works)."""
    return [problem for vector in selected if (problem := check_vector(vector)) is not None]
