"""A new letter's turn in the daemon's pass: claim it, check it, decide it.

The daemon decides letters in a thread or in a worker process
(:mod:`mailbot.daemon.decider`); both run :class:`LetterTurns`, so what a turn
means is written once:

* the letter is claimed (its attempt counter counts the start), unless the
  previous turn's transaction claimed it already: each decision claims the
  letter that follows it (``LetterProcessor.process(..., following=...)``), and
  the claim is kept here until that letter's turn; when that commit failed, or
  another letter comes, the letter is claimed on its own;
* a letter processed before (a crash between the commit and the MOVE) is only
  filed: ``finished``;
* a letter whose processing started more than ``daemon.max_attempts`` times is
  a poison letter: marked ``failed``, administrators alerted: ``poison``;
* else it is processed; an exception other than the database's counts as
  ``crashed`` (logged; the claim counted the attempt, so a letter crashing again
  and again ends as a poison letter). A database error is raised: the letter
  stays claimed and the daemon reconnects.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from mailbot.app.letters import Claim, Following, LetterProcessor, LetterSource
from mailbot.app.states import Filing, LetterOutcome
from mailbot.config import Config
from mailbot.directory.models import LetterRecord
from mailbot.log import bind_letter, get_logger
from mailbot.notices.daemon_alerts import alert_poison_letter

log = get_logger(__name__)


class Verdict(StrEnum):
    """What a turn came to."""

    #: Processed now: the result has its outcome and filing.
    DECIDED = "decided"
    #: Processed before; only its filing is left.
    FINISHED = "finished"
    #: Started too often without finishing: marked failed, administrators alerted.
    POISON = "poison"
    #: Processing raised (or the worker deciding it died): nothing to file.
    CRASHED = "crashed"


@dataclass(frozen=True)
class Turn:
    """A new letter to decide, as fetched: all of it, or only its header when too large."""

    raw: bytes
    source: LetterSource
    #: The server's size when *raw* is only the header, else None.
    declared_size: int | None = None
    #: The next new letter of the pass, claimed in this letter's transaction.
    following: Following | None = None
    #: The letter's archive copy, written when it was fetched (None: not yet).
    archived: Path | None = None


@dataclass(frozen=True)
class TurnResult:
    """What became of a :class:`Turn`: small, so that it crosses a pipe cheaply."""

    verdict: Verdict
    letter_id: int | None = None
    #: Where the letter goes (None when it crashed).
    filing: Filing | None = None
    outcome: LetterOutcome | None = None
    route: str | None = None
    #: The claim's attempt counter (0 when unknown).
    attempts: int = 0
    #: Why a letter was given up.
    detail: str | None = None
    #: Time spent on the turn by the side that decided it.
    seconds: float = 0.0


class LetterTurns:
    """Takes a pass's new letters one after another, keeping the claim chain."""

    def __init__(self, config: Config, processor: LetterProcessor) -> None:
        self.config = config
        self.processor = processor
        #: The following letter's claim made by the last decision, until its turn.
        self._kept: tuple[LetterSource, Claim] | None = None

    def take(self, turn: Turn) -> TurnResult:
        """Claim (unless claimed ahead), check and process one letter; see the module."""
        started = time.monotonic()
        kept, self._kept = self._kept, None
        source = turn.source
        with bind_letter(uid=source.uid, uidvalidity=source.uidvalidity):
            if kept is not None and kept[0] == source:
                claim = kept[1]
            else:
                claim = self.processor.claim(turn.raw, source)
            if claim.finished:
                return TurnResult(
                    Verdict.FINISHED, claim.letter_id, claim.filing, claim.outcome,
                    attempts=claim.attempts,
                )  # fmt: skip
            if claim.attempts > self.config.daemon.max_attempts:
                reason = f"processing started {claim.attempts - 1} times without finishing"
                self._give_up(claim, turn.raw, reason)
                return TurnResult(
                    Verdict.POISON, claim.letter_id, Filing.FAILED, attempts=claim.attempts,
                    detail=reason, seconds=time.monotonic() - started,
                )  # fmt: skip
            try:
                result = self.processor.process(
                    turn.raw, source, False, turn.declared_size, turn.following, turn.archived
                )
            except SQLAlchemyError:
                raise  # the database is gone: the letter stays claimed
            except Exception:
                log.exception("letter.crashed", letter_id=claim.letter_id, attempt=claim.attempts)
                return TurnResult(Verdict.CRASHED, claim.letter_id, attempts=claim.attempts)
        if turn.following is not None and result.next_claim is not None:
            self._kept = (turn.following.source, result.next_claim)
        return TurnResult(
            Verdict.DECIDED,
            result.letter_id,
            result.filing if result.letter_id is not None else None,
            result.outcome,
            result.route,
            claim.attempts,
            seconds=time.monotonic() - started,
        )

    def _give_up(self, claim: Claim, raw: bytes, reason: str) -> None:
        """A poison letter: journaled as failed, then the administrators' alert with it."""
        self.processor.give_up(claim.letter_id, reason)
        with self.processor.sessions() as session:
            row = session.get(LetterRecord, claim.letter_id)
            resets = len((row.detail or {}).get("resets", [])) if row is not None else 0
            alert_poison_letter(
                session, self.config, claim.letter_id, claim.attempts - 1, raw, resets
            )
            session.commit()
