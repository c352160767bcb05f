"""The ADD_CERT handler's decision: steps 5-9 and 12 as a chain of small pure checks.

Steps 5-8 are :func:`mailbot.pki.validation.run_validation`, the chain the
CLI's ``cert inspect --issuer`` runs too; this module turns the step that
decided into the reply, the rule hits and the next action.

Input: the certificate file intake found, the subscribers the trusted address
belongs to, the CA directory, a CRL source and the list of accredited CAs (all
read-only), the time, the CRL policy and the list's policy. Output: an
:class:`AddCertDecision` saying which reply to send, with which values, and
what must happen next (register the certificate, quarantine it, wait for a
CRL, or nothing). Writing to the store and the
database (steps 10-11) is the caller's job, in one transaction.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from mailbot.config.schema import CrlPolicy
from mailbot.dates import format_reply_datetime
from mailbot.mail.ziparchive import CertificateFile
from mailbot.pki.certificate import Certificate
from mailbot.pki.crl_fetch import CrlSource
from mailbot.pki.errors import PkiError
from mailbot.pki.issuer import CaDirectory
from mailbot.pki.load import load_certificate
from mailbot.pki.validation import (
    Reason,
    Step,
    ValidationResult,
    ValidationRun,
    ValidationVerdict,
    run_validation,
)
from mailbot.regulation.decision import Outcome, RuleHit
from mailbot.regulation.sender_gate import SubscriberCandidate
from mailbot.trustlist.checks import accreditation_note, describe_listing
from mailbot.trustlist.register import AccreditationRegister, ListedKey

#: The invalid_cert reply's reason when the CRL policy is ``reject``: a key of
#: ``[invalid_cert_reasons]`` in ``templates/phrases.toml``, as the Reason values are.
CRL_UNAVAILABLE_REASON = "crl_unavailable"


class Action(enum.StrEnum):
    """What the caller does after the decision."""

    #: Install into the store and register (steps 10-11), then reply success.
    REGISTER = "register"
    #: Save in the quarantine folder and alert administrators (step 6).
    QUARANTINE = "quarantine"
    #: No fresh CRL and the policy is ``defer``: no reply yet, retry later.
    DEFER = "defer"
    #: Only reply.
    REPLY = "reply"


@dataclass(frozen=True)
class AddCertDecision:
    """What the certificate checks decided for one letter."""

    action: Action
    #: The reply to send now; None only with :attr:`Action.DEFER`.
    outcome: Outcome | None
    reason: str
    hits: tuple[RuleHit, ...]
    template_values: dict[str, str] = field(default_factory=dict)
    certificate: Certificate | None = None
    ca: Certificate | None = None
    subscriber: SubscriberCandidate | None = None
    validation: ValidationResult | None = None
    #: Set when administrators must hear of this letter (possible forgery).
    alert: str | None = None
    #: The CA key came from the list of accredited CAs, not the directory: the
    #: caller registers its certificates (``[trust_list] auto_register_unknown``).
    ca_from_list: ListedKey | None = None


@dataclass(frozen=True)
class AddCertSettings:
    """Inputs that are not the letter: the clock, the time zone, the CRL and list policies."""

    now: datetime
    timezone: str
    crl_policy: CrlPolicy
    #: ``[trust_list] auto_register_unknown``: an unregistered key the list shows
    #: accredited is registered (its signature verified) instead of quarantined.
    auto_register_unknown: bool = False


def choose_subscriber(
    candidates: Sequence[SubscriberCandidate], certificate_snils: str | None
) -> SubscriberCandidate | None:
    """Step 9 for one or several subscribers sharing the trusted address.

    The subscriber whose SNILS equals the certificate's wins; failing that, one
    with no SNILS on record (it accepts the certificate's). None means mismatch.
    """
    snils = _digits(certificate_snils)
    if snils:
        for candidate in candidates:
            if _digits(candidate.snils) == snils:
                return candidate
    for candidate in candidates:
        if not _digits(candidate.snils):
            return candidate
    return None


def _digits(value: str | None) -> str:
    return "".join(ch for ch in value or "" if ch.isdigit())


#: The rule hit each single-rule step of the chain is journalled under.
_STEP_RULES = {Step.VALIDITY_PERIOD: "validity_period", Step.PUBLIC_KEY: "public_key_valid"}


def _passed_hits(step: Step, run: ValidationRun, certificate: Certificate) -> list[RuleHit]:
    """The rule hits of a chain step the certificate passed (steps 5, 5a, 6-7, 7a)."""
    if step in _STEP_RULES:
        return [RuleHit(_STEP_RULES[step], True, "")]
    ca, listed = run.ca, run.listed
    assert ca is not None  # the issuer step passed: the CA is known
    if step is Step.ACCREDITATION:
        if listed is None:
            return []  # no list, or the key is not in it: nothing was asked
        return [RuleHit("ca_accredited_at_issuance", True, accreditation_note(certificate, listed))]
    if run.ca_from_list and listed is not None:
        return [
            RuleHit("registered_ca", False, "the CA key is not registered"),
            RuleHit(
                "trust_list_ca",
                True,
                f"registered from the list (auto_register_unknown): {describe_listing(listed)}; "
                f"CA {ca.thumbprint_sha1}",
            ),
            RuleHit("ca_signature", True, ca.thumbprint_sha1),
        ]
    return [
        RuleHit("registered_ca", True, ca.thumbprint_sha1),
        RuleHit("ca_signature", True, ca.thumbprint_sha1),
    ]


def _unknown_ca_listing(listed: ListedKey | None, settings: AddCertSettings) -> RuleHit | None:
    """What the list said about an unknown CA key that was quarantined, for the journal."""
    if listed is None:
        return None
    why = "auto_register_unknown is off"
    if settings.auto_register_unknown:
        why = "not accredited now" if not listed.accredited else "no listed certificate fits"
    return RuleHit("trust_list_ca", False, f"{describe_listing(listed)}; {why}")


def decide_add_cert(
    certificate_file: CertificateFile,
    candidates: Sequence[SubscriberCandidate],
    ca_directory: CaDirectory,
    crl_source: CrlSource,
    settings: AddCertSettings,
    register: AccreditationRegister | None = None,
) -> AddCertDecision:
    """Run steps 5-9 in order; the first step that decides ends the chain.

    *register* is the list of accredited CAs (None: none imported, or not asked).
    """
    hits: list[RuleHit] = []
    certificate: Certificate | None = None
    ca: Certificate | None = None
    subscriber: SubscriberCandidate | None = None
    validation: ValidationResult | None = None

    ca_from_list: ListedKey | None = None

    def finish(
        action: Action,
        outcome: Outcome | None,
        reason: str,
        values: dict[str, str] | None = None,
        alert: str | None = None,
    ) -> AddCertDecision:
        # Reads the step results gathered so far (closure over the locals above).
        return AddCertDecision(
            action, outcome, reason, tuple(hits), values or {},
            certificate, ca, subscriber, validation, alert, ca_from_list,
        )  # fmt: skip

    def invalid(
        reason: str, phrase_key: str | None = None, alert: str | None = None
    ) -> AddCertDecision:
        # The reply's reason is a phrase key (the Reason value by default); the
        # templates write its text (templates/phrases.toml), this module reads no file.
        assert certificate is not None
        values = {"serial": certificate.serial_hex, "reason": phrase_key or reason}
        return finish(Action.REPLY, Outcome.INVALID_CERT, reason, values, alert)

    try:
        certificate = load_certificate(certificate_file.data)
    except PkiError as exc:
        hits.append(RuleHit("certificate_parses", False, str(exc)))
        return finish(Action.REPLY, Outcome.INVALID_FILES, f"certificate does not load: {exc}")
    hits.append(RuleHit("certificate_parses", True, certificate.serial_hex))

    # Steps 5-8: the one validation chain; the steps it passed become rule hits first.
    run = run_validation(
        certificate, ca_directory, crl_source, settings.now, register,
        settings.auto_register_unknown,
    )  # fmt: skip
    validation, ca = run.result, run.ca
    if run.ca_from_list:
        ca_from_list = run.listed
    for step in run.passed:
        hits.extend(_passed_hits(step, run, certificate))

    if run.step in (Step.VALIDITY_PERIOD, Step.PUBLIC_KEY):
        hits.append(RuleHit(_STEP_RULES[run.step], False, validation.detail))
        return invalid(validation.reason.value)

    if run.step is Step.ISSUER:
        # Steps 6-7: a registered CA qualifies, and its key verifies the signature.
        if validation.verdict is ValidationVerdict.UNKNOWN_CA:
            hits.append(RuleHit("registered_ca", False, validation.detail))
            listing = _unknown_ca_listing(run.listed, settings)
            if listing is not None:
                hits.append(listing)
            return finish(
                Action.QUARANTINE, Outcome.UNKNOWN_CA, validation.detail,
                {"serial": certificate.serial_hex},
            )  # fmt: skip
        assert ca is not None
        hits.append(RuleHit("registered_ca", True, ca.thumbprint_sha1))
        hits.append(RuleHit("ca_signature", False, validation.detail))
        alert = None
        if validation.reason is Reason.BAD_CA_SIGNATURE:
            alert = f"possible forgery: {validation.detail}"
        return invalid(validation.reason.value, alert=alert)

    if run.step is Step.ACCREDITATION:
        # Beyond the regulation: the CA had no accreditation when it issued the certificate.
        hits.append(RuleHit("ca_accredited_at_issuance", False, validation.detail))
        return invalid(validation.reason.value)

    # Step 8: not on the CA's current CRL.
    if validation.verdict is ValidationVerdict.INVALID:
        hits.append(RuleHit("not_revoked", False, validation.detail))
        return invalid(validation.reason.value)
    if validation.verdict is ValidationVerdict.INDETERMINATE:
        hits.append(RuleHit("crl_available", False, validation.detail))
        if settings.crl_policy == "defer":
            return finish(Action.DEFER, None, validation.reason.value)
        if settings.crl_policy == "reject":
            return invalid(validation.reason.value, CRL_UNAVAILABLE_REASON)
        hits.append(RuleHit("crl_policy_accept", True, "registered without a revocation check"))
    else:
        hits.append(RuleHit("not_revoked", True, validation.detail))

    # Step 9: SNILS.
    subscriber = choose_subscriber(candidates, certificate.snils)
    if subscriber is None:
        hits.append(RuleHit("snils_matches", False, "no subscriber's SNILS matches"))
        return finish(Action.REPLY, Outcome.SNILS_MISMATCH, "snils_mismatch")
    hits.append(RuleHit("snils_matches", True, f"subscriber {subscriber.subscriber_id}"))

    # Steps 10-11 happen in the caller's transaction; the success text is known now.
    values = {
        "subject_cn": certificate.subject_cn or certificate.subject.rfc4514(),
        "valid_from": format_reply_datetime(certificate.not_before, settings.timezone),
        "valid_to": format_reply_datetime(certificate.not_after, settings.timezone),
    }
    return finish(Action.REGISTER, Outcome.SUCCESS, "registered", values)
