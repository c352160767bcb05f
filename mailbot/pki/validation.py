"""Steps 5-8 as one chain: the certificate's validity with a tri-state verdict.

The regulation's order: validity period (5) → the certificate's own public key (5a) →
CA lookup (6) → signature (7) → CRL (8). Beyond the regulation, when the list of
accredited CAs is known (an :class:`~mailbot.trustlist.register.AccreditationRegister`):
an unregistered CA key the list shows accredited may stand in at step 6 (policy
``auto_register_unknown``; its signature is verified all the same), and after
step 7 the CA must have been accredited on the certificate's notBefore (7a).
Each ``check_*`` function is a step returning a result to stop with, or None
to go on; :func:`run_validation` chains them, once for everyone: the ADD_CERT
handler (:mod:`mailbot.regulation.add_cert`) reads which step decided, the
CLI's ``cert inspect --issuer`` only the result (:func:`validate`). The CRL step
asks a :class:`CrlSource`, so the caller decides the policy
(defer/reject/accept) on INDETERMINATE.
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any

from mailbot.pki.certificate import Certificate
from mailbot.pki.crl_fetch import CrlSource
from mailbot.pki.issuer import CaDirectory, IssuerStatus, ca_usable_problem, resolve_issuer
from mailbot.pki.public_key import KeyStatus
from mailbot.trustlist.checks import accreditation_problem, listed_issuer, listing_of
from mailbot.trustlist.register import AccreditationRegister, ListedKey


class ValidationVerdict(enum.Enum):
    """The outcome of a validation (the intake's verdicts: :mod:`mailbot.regulation.decision`)."""

    VALID = "valid"
    INVALID = "invalid"
    INDETERMINATE = "indeterminate"
    UNKNOWN_CA = "unknown_ca"


class Reason(enum.Enum):
    """Why (machine-readable); the values are phrase keys of ``templates/phrases.toml``."""

    OK = "ok"
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    INVALID_PUBLIC_KEY = "invalid_public_key"
    REVOKED = "revoked"
    BAD_CA_SIGNATURE = "bad_ca_signature"
    CA_NOT_USABLE = "ca_not_usable"
    #: Beyond the regulation: the list of accredited CAs says the CA was not
    #: accredited on the certificate's notBefore.
    CA_NOT_ACCREDITED = "ca_not_accredited"
    UNKNOWN_CA = "unknown_ca"
    NO_USABLE_CRL = "no_usable_crl"
    CRL_UNREACHABLE = "crl_unreachable"
    CRL_STALE = "crl_stale"


@dataclass(frozen=True)
class Evidence:
    """What the verdict rests on, for the journal and admin alerts."""

    validation_time: datetime
    certificate_serial: str
    certificate_thumbprint_sha1: str
    ca_thumbprint_sha1: str | None = None
    crl_url: str | None = None
    crl_number: int | None = None
    crl_this_update: str | None = None
    crl_next_update: str | None = None
    crl_sha256: str | None = None
    revoked_at: datetime | None = None
    revocation_reason_code: int | None = None
    revocation_reason: str | None = None
    candidates: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class ValidationResult:
    """Verdict, reason, human detail and evidence."""

    verdict: ValidationVerdict
    reason: Reason
    detail: str
    evidence: Evidence

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        ev = {
            k: (v.isoformat() if isinstance(v, datetime) else v)
            for k, v in asdict(self.evidence).items()
        }
        ev["candidates"] = list(self.evidence.candidates)
        return {
            "verdict": self.verdict.value,
            "reason": self.reason.value,
            "detail": self.detail,
            "evidence": ev,
        }


def _evidence(cert: Certificate, at: datetime) -> Evidence:
    return Evidence(at, cert.serial_hex, cert.thumbprint_sha1)


def check_validity_period(cert: Certificate, at: datetime) -> ValidationResult | None:
    """Step 5: notBefore ≤ at ≤ notAfter."""
    if at < cert.not_before:
        return ValidationResult(
            ValidationVerdict.INVALID,
            Reason.NOT_YET_VALID,
            f"valid from {cert.not_before.isoformat()}",
            _evidence(cert, at),
        )
    if at > cert.not_after:
        return ValidationResult(
            ValidationVerdict.INVALID,
            Reason.EXPIRED,
            f"expired on {cert.not_after.isoformat()}",
            _evidence(cert, at),
        )
    return None


def check_public_key(cert: Certificate, at: datetime) -> ValidationResult | None:
    """Step 5a: the certificate's public key is a valid key (on its curve, in its subgroup).

    Before the CA lookup: a certificate whose key is unusable is invalid whoever
    issued it, so it is neither quarantined for an unknown CA nor worth a
    signature check. An algorithm we cannot check is not held against it.
    """
    check = cert.public_key_check
    if check.status is KeyStatus.INVALID:
        return ValidationResult(
            ValidationVerdict.INVALID, Reason.INVALID_PUBLIC_KEY, check.detail, _evidence(cert, at)
        )
    return None


def check_issuer(
    cert: Certificate, directory: CaDirectory, at: datetime
) -> tuple[Certificate | None, ValidationResult | None]:
    """Steps 6–7: the registered CA whose key verifies the signature, usable at ``at``."""
    resolution = resolve_issuer(cert, directory)
    ev = replace(
        _evidence(cert, at), candidates=tuple(c.thumbprint_sha1 for c in resolution.candidates)
    )
    if resolution.status is IssuerStatus.UNKNOWN_CA:
        return None, ValidationResult(
            ValidationVerdict.UNKNOWN_CA, Reason.UNKNOWN_CA, resolution.detail, ev
        )
    assert resolution.ca is not None
    ev = replace(ev, ca_thumbprint_sha1=resolution.ca.thumbprint_sha1)
    if resolution.status is IssuerStatus.BAD_SIGNATURE:
        return resolution.ca, ValidationResult(
            ValidationVerdict.INVALID, Reason.BAD_CA_SIGNATURE, resolution.detail, ev
        )
    problem = ca_usable_problem(resolution.ca, at)
    if problem is not None:
        return resolution.ca, ValidationResult(
            ValidationVerdict.INVALID, Reason.CA_NOT_USABLE, problem, ev
        )
    return resolution.ca, None


def check_revocation(
    cert: Certificate, ca: Certificate, source: CrlSource, at: datetime
) -> ValidationResult:
    """Step 8: the serial against the CA's current verified CRL. Always returns a result."""
    check = source.revocation_status(cert, ca, at)
    ev = replace(_evidence(cert, at), ca_thumbprint_sha1=ca.thumbprint_sha1)
    if check.crl is not None:
        ev = replace(
            ev,
            crl_url=check.crl.source_url,
            crl_number=check.crl.crl_number,
            crl_this_update=check.crl.this_update,
            crl_next_update=check.crl.next_update,
            crl_sha256=check.crl.sha256,
        )
    if check.status == "good":
        return ValidationResult(ValidationVerdict.VALID, Reason.OK, "not revoked", ev)
    if check.status == "revoked":
        assert check.entry is not None
        entry = check.entry
        if entry.revoked_at is not None and entry.revoked_at > at:
            # Revoked after the validation time: valid at that time (validation in the past).
            return ValidationResult(
                ValidationVerdict.VALID,
                Reason.OK,
                f"revoked later, at {entry.revoked_at.isoformat()}",
                ev,
            )
        ev = replace(
            ev,
            revoked_at=entry.revoked_at,
            revocation_reason_code=entry.reason_code,
            revocation_reason=entry.reason,
        )
        return ValidationResult(ValidationVerdict.INVALID, Reason.REVOKED, check.detail, ev)
    reason = {"crl_stale": Reason.CRL_STALE, "crl_unreachable": Reason.CRL_UNREACHABLE}.get(
        check.reason or "", Reason.NO_USABLE_CRL
    )
    return ValidationResult(ValidationVerdict.INDETERMINATE, reason, check.detail, ev)


class Step(enum.Enum):
    """The chain's steps, in the regulation's order."""

    VALIDITY_PERIOD = "validity_period"  # 5
    PUBLIC_KEY = "public_key"  # 5a
    ISSUER = "issuer"  # 6-7
    ACCREDITATION = "accreditation"  # 7a, beyond the regulation
    REVOCATION = "revocation"  # 8


@dataclass(frozen=True)
class ValidationRun:
    """Which step decided, its result, and the CA once step 6 found one."""

    step: Step
    result: ValidationResult
    ca: Certificate | None
    #: What the list of accredited CAs says about the issuing key (None: not listed, no list).
    listed: ListedKey | None = None
    #: The CA is not registered: it came from the list (``auto_register_unknown``).
    ca_from_list: bool = False

    @property
    def passed(self) -> tuple[Step, ...]:
        """The steps before the deciding one: the certificate passed them."""
        steps = tuple(Step)
        return steps[: steps.index(self.step)]


def check_accreditation(
    cert: Certificate, ca: Certificate, listed: ListedKey | None, at: datetime
) -> ValidationResult | None:
    """Step 7a: the CA was accredited on the certificate's notBefore, if the list knows.

    After the signature step on purpose: a forged certificate is a bad signature
    whatever date it claims.
    """
    problem = accreditation_problem(cert, listed)
    if problem is None:
        return None
    ev = replace(_evidence(cert, at), ca_thumbprint_sha1=ca.thumbprint_sha1)
    return ValidationResult(ValidationVerdict.INVALID, Reason.CA_NOT_ACCREDITED, problem, ev)


def run_validation(
    cert: Certificate,
    directory: CaDirectory,
    crl_source: CrlSource,
    at: datetime,
    register: AccreditationRegister | None = None,
    trust_listed: bool = False,
) -> ValidationRun:
    """All steps in the regulation's order; the first that decides ends the chain.

    The CRL step always decides (valid, invalid or indeterminate), so a
    certificate that passed everything ends at :attr:`Step.REVOCATION`.
    With *register*, step 7a runs; with *trust_listed* too, an unregistered key
    the list shows accredited stands in for a registered CA once one of its
    listed certificates verifies the signature.
    """
    for step, check in (
        (Step.VALIDITY_PERIOD, check_validity_period),
        (Step.PUBLIC_KEY, check_public_key),
    ):
        early = check(cert, at)
        if early is not None:
            return ValidationRun(step, early, None)
    ca, problem = check_issuer(cert, directory, at)
    listed = listing_of(cert, ca, register)
    from_list = False
    if (
        problem is not None
        and problem.verdict is ValidationVerdict.UNKNOWN_CA
        and trust_listed
        and listed is not None
        and listed.accredited
    ):
        ca, how = listed_issuer(cert, listed, directory, at)
        if ca is None:
            problem = replace(problem, detail=f"{problem.detail}; from the list: {how}")
        else:
            problem, from_list = None, True
    if problem is not None:
        return ValidationRun(Step.ISSUER, problem, ca, listed)
    assert ca is not None
    unaccredited = check_accreditation(cert, ca, listed, at)
    if unaccredited is not None:
        return ValidationRun(Step.ACCREDITATION, unaccredited, ca, listed, from_list)
    revocation = check_revocation(cert, ca, crl_source, at)
    return ValidationRun(Step.REVOCATION, revocation, ca, listed, from_list)


def validate(
    cert: Certificate, directory: CaDirectory, crl_source: CrlSource, at: datetime
) -> ValidationResult:
    """The chain's result alone (:func:`run_validation`)."""
    return run_validation(cert, directory, crl_source, at).result
