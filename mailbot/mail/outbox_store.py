"""The outbox sender's database work: which rows are due, claims, and recorded outcomes.

Each method is one short committed transaction; several rows go through one
statement where the outcome allows it (claims, "sent" marks). The statements
are compare-and-set on ``status`` and ``next_attempt_at`` so that concurrent
flushers never take the same row (docs/decisions.md "Outbox").
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import cast

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.orm import Session, sessionmaker

from mailbot.directory.models import OutboxMessage

#: Core statements: executemany with per-row values, and RETURNING without ORM objects.
_table = cast(Table, OutboxMessage.__table__)
_c = _table.c
# Built once: the daemon runs it after every reply it sends.
_MARK_SENT = (
    update(_table)
    .where(_c.id == bindparam("b_id"), _c.status == "pending")
    .values(
        status="sent",
        sent_at=bindparam("b_at"),
        attempts=bindparam("b_attempts"),
        last_error=bindparam("b_note"),
    )
)


@dataclass(frozen=True)
class Due:
    """A row due at the start of a flush, and when it was due (restored if it is not tried)."""

    id: int
    next_attempt_at: dt.datetime


@dataclass(frozen=True)
class Claimed:
    """A snapshot of a claimed row: sending needs no open session."""

    id: int
    kind: str
    letter_id: int | None
    recipients: tuple[str, ...]
    message_id: str
    raw: bytes
    attempts: int


@dataclass(frozen=True)
class Claim:
    """Rows claimed together, oldest first, left alone by other flushers until ``until``."""

    rows: tuple[Claimed, ...]
    until: dt.datetime


@dataclass(frozen=True)
class SentMark:
    """A row the server took: to be recorded as ``sent``."""

    row: Claimed
    at: dt.datetime
    #: Refusals of some recipients, kept in ``last_error``.
    note: str | None = None


#: Runs inside an outcome's transaction (an alert queued with it).
AlsoInSession = Callable[[Session], object]


class OutboxStore:
    """The ``outbox`` table as the sender uses it."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def due(self, now: dt.datetime, limit: int) -> list[Due]:
        """Up to *limit* pending rows due at *now*, oldest first."""
        with self.sessions() as session:
            found = session.execute(
                select(OutboxMessage.id, OutboxMessage.next_attempt_at)
                .where(OutboxMessage.status == "pending", OutboxMessage.next_attempt_at <= now)
                .order_by(OutboxMessage.created_at, OutboxMessage.id)
                .limit(limit)
            )
            return [Due(row_id, due_at) for row_id, due_at in found]

    def claim(self, due: Sequence[Due], now: dt.datetime, until: dt.datetime) -> Claim:
        """Claim those of *due* still pending and due, in one transaction.

        A single ``UPDATE ... RETURNING``: a row another flusher claimed (or
        finished) since :meth:`due` no longer matches and is not returned.
        """
        order = {d.id: position for position, d in enumerate(due)}
        with self.sessions() as session, session.begin():
            found = session.execute(
                update(_table)
                .where(
                    _c.id.in_(list(order)),
                    _c.status == "pending",
                    _c.next_attempt_at <= now,
                )
                .values(next_attempt_at=until)
                .returning(
                    _c.id, _c.kind, _c.letter_id, _c.recipients, _c.message_id, _c.raw, _c.attempts
                )
            ).all()
        rows = sorted(
            (
                Claimed(
                    id=r.id,
                    kind=r.kind,
                    letter_id=r.letter_id,
                    recipients=tuple(str(a) for a in r.recipients),
                    message_id=r.message_id,
                    raw=bytes(r.raw),
                    attempts=r.attempts,
                )
                for r in found
            ),
            key=lambda row: order[row.id],
        )
        return Claim(tuple(rows), until)

    def extend(self, claim: Claim, rows: Sequence[Claimed], until: dt.datetime) -> Claim:
        """Move the claim of *rows* (still ours) to *until*; the rows it still holds."""
        if not rows:
            return Claim((), until)
        with self.sessions() as session, session.begin():
            kept = set(
                session.scalars(
                    update(_table)
                    .where(
                        _c.id.in_([r.id for r in rows]),
                        _c.status == "pending",
                        _c.next_attempt_at == claim.until,
                    )
                    .values(next_attempt_at=until)
                    .returning(_c.id)
                )
            )
        return Claim(tuple(r for r in rows if r.id in kept), until)

    def release(self, claim: Claim, rows: Sequence[Claimed], due: Sequence[Due]) -> None:
        """Give *rows* (claimed, never tried) back their due time: they keep their schedule."""
        was_due = {d.id: d.next_attempt_at for d in due}
        if not rows:
            return
        with self.sessions() as session, session.begin():
            session.connection().execute(
                update(_table)
                .where(
                    _c.id == bindparam("b_id"),
                    _c.status == "pending",
                    _c.next_attempt_at == claim.until,
                )
                .values(next_attempt_at=bindparam("b_due")),
                [{"b_id": r.id, "b_due": was_due[r.id]} for r in rows],
            )

    def mark_sent(self, marks: Sequence[SentMark]) -> None:
        """Record *marks* as ``sent``, all in one transaction."""
        if not marks:
            return
        with self.sessions() as session, session.begin():
            self._mark_sent(session, marks)

    def reschedule(
        self,
        row: Claimed,
        error: str,
        next_at: dt.datetime,
        sent: Sequence[SentMark] = (),
        also: AlsoInSession | None = None,
    ) -> None:
        """Back to ``pending`` at *next_at* with one more attempt (and *sent* recorded too)."""
        self._settle(row, {"last_error": error, "next_attempt_at": next_at}, sent, also)

    def mark_failed(
        self,
        row: Claimed,
        error: str,
        sent: Sequence[SentMark] = (),
        also: AlsoInSession | None = None,
    ) -> None:
        """``failed`` for good (and *sent* recorded too)."""
        self._settle(row, {"status": "failed", "last_error": error}, sent, also)

    def _settle(
        self,
        row: Claimed,
        values: dict[str, object],
        sent: Sequence[SentMark],
        also: AlsoInSession | None,
    ) -> None:
        """One attempt more for a pending *row*, with *values*, the marks and *also*: one commit."""
        with self.sessions() as session, session.begin():
            self._mark_sent(session, sent)
            session.execute(
                update(_table)
                .where(_c.id == row.id, _c.status == "pending")
                .values(attempts=row.attempts + 1, **values)
            )
            if also is not None:
                also(session)

    def resume(self, moment: dt.datetime) -> list[int]:
        """Make every pending row waiting past *moment* due at *moment*; their ids."""
        with self.sessions() as session, session.begin():
            return list(
                session.scalars(
                    update(_table)
                    .where(_c.status == "pending", _c.next_attempt_at > moment)
                    .values(next_attempt_at=moment)
                    .returning(_c.id)
                )
            )

    @staticmethod
    def _mark_sent(session: Session, marks: Sequence[SentMark]) -> None:
        if not marks:
            return
        session.connection().execute(
            _MARK_SENT,
            [
                {"b_id": m.row.id, "b_at": m.at, "b_attempts": m.row.attempts + 1, "b_note": m.note}
                for m in marks
            ],
        )
