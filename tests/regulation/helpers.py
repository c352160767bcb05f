"""Shared set-up for the intake tests: settings, the shipped routes, one-call decisions."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime

from mailbot.config.schema import LimitsConfig, SenderAuthConfig, shipped_dir
from mailbot.regulation.decision import CERTIFICATE_CHECKS_PENDING, Outcome
from mailbot.regulation.intake import IntakeDecision, IntakeSettings, decide
from mailbot.regulation.loop_guard import InMemoryReplyCounter, ReplyCounter
from mailbot.regulation.routes import RouteTable, load_routes
from mailbot.regulation.sender_gate import InMemorySenderDirectory, SenderDirectory
from testkit.letters import FUND_ADDRESS, TRUSTED_SENDER

NOW = datetime(2025, 3, 1, 7, 15, tzinfo=UTC)
SETTINGS = IntakeSettings(
    limits=LimitsConfig(),
    sender_auth=SenderAuthConfig(),
    own_address=FUND_ADDRESS,
    instance="mailbot",
    timezone="Europe/Moscow",
)
ROUTES = load_routes(shipped_dir("rules"))
#: What steps 1-4 can decide: no reply, a reply of step 3 or 4, or on to steps 5-12.
INTAKE_OUTCOMES = frozenset(
    {Outcome.NO_REPLY, Outcome.UNKNOWN_SUBJECT, Outcome.NO_CER, Outcome.INVALID_FILES}
) | {CERTIFICATE_CHECKS_PENDING}
#: Seconds one letter may take, on a loaded machine; most take a few milliseconds.
TIME_BOUND = 2.0


def run(
    raw: bytes,
    *,
    trusted: Sequence[str] = (TRUSTED_SENDER,),
    settings: IntakeSettings = SETTINGS,
    routes: RouteTable = ROUTES,
    directory: SenderDirectory | None = None,
    counter: ReplyCounter | None = None,
) -> IntakeDecision:
    """Decide *raw* with the shipped routes and an in-memory directory trusting *trusted*."""
    return decide(
        raw,
        settings=settings,
        routes=routes,
        directory=directory or InMemorySenderDirectory.trusting(trusted),
        reply_counter=counter or InMemoryReplyCounter(),
        now=NOW,
    )


def hit_rules(decision: IntakeDecision) -> list[str]:
    """Names of the rules that hit."""
    return [h.rule for h in decision.rule_hits if h.hit]


def run_checked(
    raw: bytes,
    *,
    directory: SenderDirectory | None = None,
    counter: ReplyCounter | None = None,
) -> IntakeDecision:
    """:func:`run`, asserting what holds for any input: it decides one of
    :data:`INTAKE_OUTCOMES`, within :data:`TIME_BOUND`, replies only to a From address
    and gives the journal no string a database would refuse."""
    started = time.perf_counter()
    decision = run(raw, directory=directory, counter=counter)
    seconds = time.perf_counter() - started
    assert decision.outcome_key in INTAKE_OUTCOMES, decision.outcome_key
    assert seconds < TIME_BOUND, f"{seconds:.2f} s"
    assert unsafe_strings(decision) == []
    assert decision.reply_to in (None, *(m.address for m in decision.letter.from_mailboxes))
    return decision


def unsafe_strings(decision: IntakeDecision) -> list[str]:
    """Strings of the decision that a database, a log or a reply would choke on."""
    letter = decision.letter
    strings = [
        letter.subject,
        letter.message_id or "",
        *letter.in_reply_to,
        *letter.references,
        *(m.address for m in letter.from_mailboxes),
        *(m.display_name for m in letter.from_mailboxes),
        decision.reason,
        *(h.detail for h in decision.rule_hits),
    ]
    return [s[:80] for s in strings if "\x00" in s or any("\ud800" <= c <= "\udfff" for c in s)]
