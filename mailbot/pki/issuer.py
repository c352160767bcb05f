"""Finding a certificate's issuing CA among the registered ones (steps 6–7).

With an Authority Key Identifier only the CA whose Subject Key Identifier
equals it qualifies: a registered CA name with an unknown key identifier is
that CA's new, unregistered key, hence an unknown CA. Without an AKI, the CAs
with the issuer DN qualify (yearly re-keys give several) and the one whose key
verifies the signature is chosen. A qualifying CA whose key does not verify is
a forgery.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from mailbot.pki.certificate import Certificate
from mailbot.pki.errors import PkiError
from mailbot.pki.signatures import verify_signature


class CaDirectory(Protocol):
    """What issuer resolution needs from the CA directory (the database implements it)."""

    def by_key_identifier(self, key_identifier: bytes) -> Sequence[Certificate]:
        """Registered CA certificates whose SKI equals ``key_identifier``."""
        ...

    def by_subject(self, subject_der: bytes) -> Sequence[Certificate]:
        """Registered CA certificates whose subject DN equals ``subject_der`` (normalised)."""
        ...

    def crl_urls(self, ca: Certificate) -> Sequence[str]:
        """Extra CRL URLs the directory records for this CA (after the cert's own CDPs)."""
        ...

    def retired(self, key_identifier: bytes) -> bool:
        """Whether an administrator deactivated a CA certificate with this key identifier.

        Such a key is never trusted again automatically (e.g. from the list of
        accredited CAs): only an administrator may bring it back.
        """
        ...


@dataclass
class InMemoryCaDirectory:
    """A :class:`CaDirectory` held in memory (tests, CLI ``--issuer`` files)."""

    cas: list[Certificate] = field(default_factory=list)
    urls: dict[str, list[str]] = field(default_factory=dict)
    retired_keys: set[bytes] = field(default_factory=set)

    def add(self, ca: Certificate, crl_urls: Sequence[str] = ()) -> None:
        """Register a CA certificate (and directory CRL URLs for it)."""
        self.cas.append(ca)
        if crl_urls:
            self.urls.setdefault(ca.thumbprint_sha1, []).extend(crl_urls)

    def by_key_identifier(self, key_identifier: bytes) -> Sequence[Certificate]:
        """See :class:`CaDirectory`."""
        return [c for c in self.cas if c.subject_key_identifier == key_identifier]

    def by_subject(self, subject_der: bytes) -> Sequence[Certificate]:
        """See :class:`CaDirectory`."""
        from mailbot.pki.names import Name

        key = Name.from_der(subject_der).normalized_key()
        return [c for c in self.cas if c.subject.normalized_key() == key]

    def crl_urls(self, ca: Certificate) -> Sequence[str]:
        """See :class:`CaDirectory`."""
        return list(self.urls.get(ca.thumbprint_sha1, []))

    def retired(self, key_identifier: bytes) -> bool:
        """See :class:`CaDirectory`."""
        return key_identifier in self.retired_keys


class IssuerStatus(enum.Enum):
    """Outcome of issuer resolution."""

    FOUND = "found"
    UNKNOWN_CA = "unknown_ca"
    BAD_SIGNATURE = "bad_signature"


@dataclass(frozen=True)
class IssuerResolution:
    """Which CA (if any) issued the certificate, and why."""

    status: IssuerStatus
    ca: Certificate | None
    candidates: tuple[Certificate, ...]
    detail: str


def find_candidates(cert: Certificate, directory: CaDirectory) -> list[Certificate]:
    """Step 6: the registered CAs that qualify as this certificate's issuer."""
    issuer_key = cert.issuer.normalized_key()
    if cert.authority_key_identifier is not None:
        found = directory.by_key_identifier(cert.authority_key_identifier)
        # The key identifier decides; the DN must agree too, or it is not this CA's key.
        return [c for c in found if c.subject.normalized_key() == issuer_key]
    return list(directory.by_subject(cert.issuer.der))


def signed_by(cert: Certificate, ca: Certificate) -> bool:
    """Whether ``ca``'s key verifies ``cert``'s signature (False on any decoding problem)."""
    if cert.signature_algorithm != cert.tbs_signature_algorithm:
        return False  # RFC 5280 §4.1.1.2: the two must match
    try:
        return verify_signature(
            ca.spki,
            cert.signature_algorithm.oid,
            cert.signature_algorithm.params,
            cert.signature,
            cert.tbs,
        )
    except PkiError:
        return False


def resolve_issuer(cert: Certificate, directory: CaDirectory) -> IssuerResolution:
    """Steps 6–7: candidates, then the one whose key verifies the signature."""
    candidates = find_candidates(cert, directory)
    if not candidates:
        how = (
            f"no registered CA with key identifier {cert.authority_key_identifier.hex()}"
            if cert.authority_key_identifier is not None
            else "no registered CA with the issuer name"
        )
        return IssuerResolution(IssuerStatus.UNKNOWN_CA, None, (), how)
    for ca in candidates:
        if signed_by(cert, ca):
            return IssuerResolution(
                IssuerStatus.FOUND,
                ca,
                tuple(candidates),
                f"signature verified with CA {ca.thumbprint_sha1}",
            )
    return IssuerResolution(
        IssuerStatus.BAD_SIGNATURE,
        candidates[0],
        tuple(candidates),
        "signature does not verify with " + ", ".join(c.thumbprint_sha1 for c in candidates),
    )


def ca_usable_problem(ca: Certificate, at: datetime) -> str | None:
    """Why this CA certificate cannot vouch for anything at ``at`` (None: it can)."""
    if not ca.is_ca:
        return "issuer certificate is not a CA (basicConstraints)"
    if ca.key_usage is not None and "keyCertSign" not in ca.key_usage:
        return "issuer certificate may not sign certificates (keyUsage)"
    if at < ca.not_before:
        return f"CA certificate not yet valid (from {ca.not_before.isoformat()})"
    if at > ca.not_after:
        return f"CA certificate expired on {ca.not_after.isoformat()}"
    return None
