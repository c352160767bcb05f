"""Shared set-up for the intake tests: settings, the shipped routes, one-call decisions."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from mailbot.config.schema import LimitsConfig, SenderAuthConfig, shipped_dir
from mailbot.pipeline.intake import IntakeDecision, IntakeSettings, decide
from mailbot.pipeline.loop_guard import InMemoryReplyCounter, ReplyCounter
from mailbot.pipeline.routes import RouteTable, load_routes
from mailbot.pipeline.sender_gate import InMemorySenderDirectory, SenderDirectory
from mailbot.testing.letters import FUND_ADDRESS, TRUSTED_SENDER

NOW = datetime(2025, 3, 1, 7, 15, tzinfo=UTC)
SETTINGS = IntakeSettings(
    limits=LimitsConfig(),
    sender_auth=SenderAuthConfig(),
    own_address=FUND_ADDRESS,
    instance="mailbot",
    timezone="Europe/Moscow",
)
ROUTES = load_routes(shipped_dir("rules"))


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
