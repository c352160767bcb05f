"""SPEC step 1 (RFC 3834): letters that must never be answered, and the per-sender reply cap.

Each rule is a small predicate over the letter; all are evaluated so the
journal shows every hit. Any hit means: journal, file away, no reply.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Protocol

from mailbot.mail.address import normalize_address
from mailbot.mail.letter import Letter
from mailbot.pipeline.decision import Outcome, RuleHit, Verdict, go_on, stop

#: Our own replies carry this header with the instance name; a letter carrying it came from us.
LOOP_HEADER = "X-Mailbot-Loop"
_ROBOT_LOCAL_PARTS = frozenset({"mailer-daemon", "postmaster"})
_BULK_PRECEDENCE = frozenset({"bulk", "junk", "list", "auto_reply"})


@dataclass(frozen=True)
class LoopGuardSettings:
    """Who "we" are: our From address and the loop marker of this instance."""

    own_address: str
    instance: str


def _auto_submitted(letter: Letter, _s: LoopGuardSettings) -> str | None:
    for value in letter.header_values("Auto-Submitted"):
        keyword = value.split(";")[0].split("(")[0].strip().lower()
        if keyword != "no":
            return f"Auto-Submitted: {keyword or '(empty)'}"
    return None


def _precedence(letter: Letter, _s: LoopGuardSettings) -> str | None:
    for value in letter.header_values("Precedence"):
        if value.strip().lower() in _BULK_PRECEDENCE:
            return f"Precedence: {value.strip().lower()}"
    return None


def _null_return_path(letter: Letter, _s: LoopGuardSettings) -> str | None:
    for value in letter.raw_header_values("Return-Path"):
        if re.fullmatch(r"<\s*>", value.strip()):
            return "null Return-Path"
    return None


def _robot_sender(letter: Letter, _s: LoopGuardSettings) -> str | None:
    for mailbox in letter.from_mailboxes:
        if mailbox.normalized.partition("@")[0] in _ROBOT_LOCAL_PARTS:
            return f"sender {mailbox.normalized}"
    return None


def _delivery_report(letter: Letter, _s: LoopGuardSettings) -> str | None:
    try:
        ctype = letter.message.get_content_type().lower()
    except Exception:
        return None
    return "multipart/report" if ctype == "multipart/report" else None


def _own_address(letter: Letter, settings: LoopGuardSettings) -> str | None:
    own = normalize_address(settings.own_address)
    if any(m.normalized == own for m in letter.from_mailboxes):
        return f"from our own address {own}"
    return None


def _loop_marker(letter: Letter, settings: LoopGuardSettings) -> str | None:
    for value in letter.header_values(LOOP_HEADER):
        if value.strip().lower() == settings.instance.strip().lower():
            return f"{LOOP_HEADER}: {value.strip()}"
    return None


#: The rules, in journal order.
LOOP_RULES: tuple[tuple[str, Callable[[Letter, LoopGuardSettings], str | None]], ...] = (
    ("auto_submitted", _auto_submitted),
    ("precedence", _precedence),
    ("null_return_path", _null_return_path),
    ("robot_sender", _robot_sender),
    ("delivery_report", _delivery_report),
    ("own_address", _own_address),
    ("loop_marker", _loop_marker),
)


def check_loop(letter: Letter, settings: LoopGuardSettings) -> Verdict:
    """No reply to automatic mail, our own mail or delivery reports (RFC 3834)."""
    hits = []
    for name, rule in LOOP_RULES:
        detail = rule(letter, settings)
        hits.append(RuleHit(name, detail is not None, detail or ""))
    fired = [h for h in hits if h.hit]
    if fired:
        return stop(Outcome.NO_REPLY, f"automatic or looping mail: {fired[0].detail}", *hits)
    return go_on(*hits)


class ReplyCounter(Protocol):
    """How many replies a sender got on a day (the journal answers this in production)."""

    def replies_on(self, address: str, day: date) -> int:
        """Replies sent to *address* (lower-cased) on *day* (in the configured time zone)."""
        ...


class InMemoryReplyCounter:
    """A :class:`ReplyCounter` over a dict, for tests and dry runs."""

    def __init__(self, counts: dict[tuple[str, date], int] | None = None) -> None:
        self._counts = dict(counts or {})

    def replies_on(self, address: str, day: date) -> int:
        """Replies recorded for *address* on *day*."""
        return self._counts.get((address.lower(), day), 0)

    def record(self, address: str, day: date) -> None:
        """Count one more reply."""
        key = (address.lower(), day)
        self._counts[key] = self._counts.get(key, 0) + 1


def check_reply_cap(replies_today: int, cap: int) -> Verdict:
    """Past *cap* replies today, a sender's letters are journaled without a reply."""
    if replies_today >= cap:
        detail = f"{replies_today} replies today, cap {cap}"
        return stop(
            Outcome.NO_REPLY, f"reply cap reached: {detail}", RuleHit("reply_cap", True, detail)
        )
    return go_on(RuleHit("reply_cap", False, f"{replies_today} of {cap}"))
