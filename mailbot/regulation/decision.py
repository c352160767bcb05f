"""What the intake decides about a letter: outcomes, dispositions and rule hits.

Every check of the pipeline returns a :class:`Verdict`. A verdict either lets
the letter go on (``outcome is None``) or stops it with an :class:`Outcome`
(a reply template key, or ``no_reply``) and a :class:`Disposition` (what
happens to the letter in the mailbox). The verdicts' :class:`RuleHit` records
are kept, in the order the rules were evaluated, for the journal (Mailman's
``rule_hits``/``rule_misses``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

#: Rule details and reasons quote the letter (file names, addresses, subjects);
#: the journal and the reports keep at most this many characters of each.
MAX_DETAIL_CHARS = 1000


def bounded_detail(text: str) -> str:
    """*text* cut to :data:`MAX_DETAIL_CHARS` (with a mark saying how much was cut)."""
    if len(text) <= MAX_DETAIL_CHARS:
        return text
    return f"{text[:MAX_DETAIL_CHARS]}…[{len(text) - MAX_DETAIL_CHARS} more characters]"


class Outcome(StrEnum):
    """How a letter ends: the reply template to send, or no reply at all.

    The values are the reply template keys plus ``no_reply``.
    """

    NO_CER = "no_cer"
    INVALID_FILES = "invalid_files"
    INVALID_CERT = "invalid_cert"
    UNKNOWN_CA = "unknown_ca"
    SNILS_MISMATCH = "snils_mismatch"
    INSTALL_ERROR = "install_error"
    SUCCESS = "success"
    UNKNOWN_SUBJECT = "unknown_subject"
    NO_REPLY = "no_reply"
    # Letters mailbot sends on its own initiative (not replies to a participant's letter):
    #: the administrator rejected the CA of a quarantined certificate;
    UNKNOWN_CA_REJECTED = "unknown_ca_rejected"
    #: a registered certificate expires soon;
    EXPIRY_REMINDER = "expiry_reminder"
    #: a registered certificate appeared on its CA's CRL.
    REVOKED_NOTICE = "revoked_notice"

    @property
    def has_reply(self) -> bool:
        """Whether this outcome sends a reply to the sender."""
        return self is not Outcome.NO_REPLY


#: The outcomes of letters mailbot sends on its own initiative: never a received letter's.
NOTICE_OUTCOMES = frozenset(
    {Outcome.UNKNOWN_CA_REJECTED, Outcome.EXPIRY_REMINDER, Outcome.REVOKED_NOTICE}
)

#: Reported instead of an outcome when a letter passed steps 1-4: the certificate
#: checks (steps 5-12) decide the outcome, in the ADD_CERT handler.
CERTIFICATE_CHECKS_PENDING = "certificate_checks_pending"


class Disposition(StrEnum):
    """What becomes of the letter in the mailbox."""

    #: Journal it and file it away (processed/rejected folder).
    FILE_AWAY = "file_away"
    #: Not ours: another process of the fund reads it; do not touch it.
    LEAVE = "leave"
    #: Passed intake; the route's handler decides.
    HANDLE = "handle"


class Stage(StrEnum):
    """The pipeline step that took the decision."""

    SIZE = "size"
    ROUTES = "routes"
    LOOP_GUARD = "loop_guard"
    SENDER_GATE = "sender_gate"
    ATTACHMENTS = "attachments"


@dataclass(frozen=True)
class RuleHit:
    """One rule's result for one letter: ``hit`` means the rule matched."""

    rule: str
    hit: bool
    detail: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "detail", bounded_detail(self.detail))

    def as_dict(self) -> dict[str, object]:
        """A JSON-friendly form for the journal and ``--format json``."""
        return {"rule": self.rule, "hit": self.hit, "detail": self.detail}


@dataclass(frozen=True)
class Verdict:
    """The result of one check: go on (``outcome is None``) or stop."""

    hits: tuple[RuleHit, ...] = ()
    outcome: Outcome | None = None
    disposition: Disposition = Disposition.FILE_AWAY
    reason: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "reason", bounded_detail(self.reason))

    @property
    def stops(self) -> bool:
        """Whether the letter's fate is sealed by this check."""
        return self.outcome is not None


def go_on(*hits: RuleHit) -> Verdict:
    """A verdict that lets the letter continue."""
    return Verdict(hits=hits)


def stop(
    outcome: Outcome,
    reason: str,
    *hits: RuleHit,
    disposition: Disposition = Disposition.FILE_AWAY,
) -> Verdict:
    """A verdict that ends the letter's intake with *outcome*."""
    return Verdict(hits=hits, outcome=outcome, disposition=disposition, reason=reason)


@dataclass(frozen=True)
class RuleLog:
    """Accumulates rule hits across the checks (order preserved)."""

    hits: list[RuleHit] = field(default_factory=list)

    def add(self, verdict: Verdict) -> Verdict:
        """Record a verdict's hits and hand the verdict back."""
        self.hits.extend(verdict.hits)
        return verdict
