"""Is the public key in a SubjectPublicKeyInfo a usable key? GOST ours, the rest via pyca.

A certificate can carry a "key" that is no key at all: a GOST point off its
curve or outside the subgroup of order q, or an EC point off its curve. Such a
certificate must not be registered (nothing it signs can ever verify) and
such a CA key must never reach point arithmetic. GOST keys are validated by
:func:`mailbot.pki.gost.keys.decode_public_key`; RSA/EC/EdDSA keys by pyca's
loader, which rejects EC points that are not on their curve.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from cryptography.exceptions import UnsupportedAlgorithm as PycaUnsupported
from cryptography.hazmat.primitives import serialization

from mailbot.pki.errors import SignatureError, UnsupportedAlgorithmError
from mailbot.pki.gost.keys import GOST_KEY_OIDS, decode_public_key, parse_spki_algorithm


class KeyStatus(enum.Enum):
    """Outcome of a public key check."""

    VALID = "valid"
    INVALID = "invalid"
    #: An algorithm or GOST parameter set this code cannot check (nothing known against it).
    UNCHECKED = "unchecked"


@dataclass(frozen=True)
class KeyCheck:
    """The status and, unless valid, why."""

    status: KeyStatus
    detail: str = ""

    def describe(self) -> str:
        """One line for reports: ``valid``, ``invalid: <why>`` or ``unchecked: <why>``."""
        return self.status.value + (f": {self.detail}" if self.detail else "")


def check_public_key(spki: bytes) -> KeyCheck:
    """Check the public key of a DER SubjectPublicKeyInfo; never raises."""
    try:
        algorithm = parse_spki_algorithm(spki)[0]
    except SignatureError as exc:
        return KeyCheck(KeyStatus.INVALID, str(exc))
    if algorithm in GOST_KEY_OIDS:
        try:
            decode_public_key(spki)
        except UnsupportedAlgorithmError as exc:
            return KeyCheck(KeyStatus.UNCHECKED, str(exc))
        except SignatureError as exc:  # InvalidPublicKeyError or a malformed encoding
            return KeyCheck(KeyStatus.INVALID, str(exc))
        return KeyCheck(KeyStatus.VALID)
    try:
        serialization.load_der_public_key(spki)
    except PycaUnsupported:
        return KeyCheck(KeyStatus.UNCHECKED, f"key algorithm {algorithm} is not checked")
    except ValueError as exc:
        return KeyCheck(KeyStatus.INVALID, f"the {algorithm} public key does not load: {exc}")
    return KeyCheck(KeyStatus.VALID)
