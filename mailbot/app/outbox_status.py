"""What the outbox holds: the backlog for the daemon's metrics, failures for the report."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from mailbot.directory.models import OutboxMessage


def outbox_backlog(sessions: sessionmaker[Session]) -> int:
    """How many messages wait to be sent."""
    with sessions() as session:
        return int(
            session.scalar(
                select(func.count(OutboxMessage.id)).where(OutboxMessage.status == "pending")
            )
            or 0
        )


def failed_messages(
    session: Session, start: dt.datetime, end: dt.datetime, limit: int
) -> tuple[int, Sequence[OutboxMessage]]:
    """Letters queued in ``[start, end)`` that failed for good: their count and the newest *limit*.

    The outbox keeps no failure time; a letter fails within its retries, so
    the queueing time places it in a period closely enough.
    """
    in_period = (
        OutboxMessage.status == "failed",
        OutboxMessage.created_at >= start,
        OutboxMessage.created_at < end,
    )
    count = int(session.scalar(select(func.count(OutboxMessage.id)).where(*in_period)) or 0)
    newest = session.scalars(
        select(OutboxMessage)
        .where(*in_period)
        .order_by(OutboxMessage.created_at.desc(), OutboxMessage.id.desc())
        .limit(limit)
    ).all()
    return count, newest
