"""Putting a built letter into the outbox: the one way every letter mailbot sends is queued."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from email.message import EmailMessage

from sqlalchemy.orm import Session

from mailbot.directory.models import OutboxMessage


def queue_message(
    session: Session,
    message: EmailMessage,
    *,
    kind: str,
    recipients: Sequence[str],
    now: dt.datetime,
    letter_id: int | None = None,
    template_key: str | None = None,
) -> OutboxMessage:
    """Add *message* to the outbox (due now) in the session's transaction and flush it.

    The stored bytes are sent as they are, so the Message-ID stays the same
    across retries.
    """
    row = OutboxMessage(
        letter_id=letter_id,
        kind=kind,
        template_key=template_key,
        recipients=list(recipients),
        message_id=str(message["Message-ID"]),
        raw=bytes(message),
        status="pending",
        next_attempt_at=now,
        created_at=now,
    )
    session.add(row)
    session.flush()
    return row
