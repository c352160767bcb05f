"""The words of the letter journal: a letter's state, its outcome and its filing.

They are :class:`~enum.StrEnum` members, equal to the strings stored in the
``letters`` table and printed by the command line, so stored data and JSON
output are the same strings as before they had types.
"""

from __future__ import annotations

from enum import StrEnum

from mailbot.regulation.decision import Outcome


class LetterState(StrEnum):
    """``letters.state``: where the processing of a letter stands."""

    #: Processing started (the attempt counter counts crashes).
    CLAIMED = "claimed"
    #: Decided: journaled, replied (or not), registered or quarantined.
    DONE = "done"
    #: Waiting for a CRL (``crl.unavailable_policy = defer``); decided again later.
    DEFERRED = "deferred"
    #: A poison letter: processing kept crashing; an administrator decides.
    FAILED = "failed"


class NoVerdict(StrEnum):
    """``letters.outcome`` values that are no regulation verdict (no reply template)."""

    #: Not ours: another process of the fund reads the letter.
    LEAVE = "leave"
    #: Not yet: waiting for a CRL.
    DEFERRED = "deferred"
    #: Could not: a poison letter.
    FAILED = "failed"


#: What the journal records as a letter's outcome.
LetterOutcome = Outcome | NoVerdict


class Filing(StrEnum):
    """Where a letter goes on the mail server once processed."""

    PROCESSED = "processed"
    REJECTED = "rejected"
    #: Stays in the mailbox (not ours).
    LEAVE = "leave"
    #: Stays in the mailbox until decided.
    DEFERRED = "deferred"
    FAILED = "failed"


def parse_outcome(value: str | None) -> LetterOutcome | None:
    """The typed outcome of a journal row's ``outcome`` column (None when unset or unknown)."""
    if value is None:
        return None
    for kind in (Outcome, NoVerdict):
        try:
            return kind(value)
        except ValueError:
            continue
    return None


def filing_for(outcome: str | None, state: str) -> Filing:
    """Where a journaled letter with this outcome and state is filed."""
    if state == LetterState.DEFERRED:
        return Filing.DEFERRED
    if state == LetterState.FAILED:
        return Filing.FAILED
    if outcome == NoVerdict.LEAVE:
        return Filing.LEAVE
    return Filing.PROCESSED if outcome == Outcome.SUCCESS else Filing.REJECTED


class QuarantineStatus(StrEnum):
    """``quarantine.status``: where an administrator's decision on a certificate stands."""

    PENDING = "pending"
    REGISTERED = "registered"
    REJECTED = "rejected"
    FAILED = "failed"
