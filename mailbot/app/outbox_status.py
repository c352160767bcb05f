"""What the outbox holds, for the daemon's metrics."""

from __future__ import annotations

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
