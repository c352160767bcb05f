"""Putting a built letter into the outbox: the one way every letter mailbot sends is queued."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from email.message import EmailMessage
from typing import Any, cast

from sqlalchemy import CursorResult, Table, insert
from sqlalchemy.orm import Session

from mailbot.directory.models import OutboxMessage

# Built once: every reply goes through it. Core, not the unit of work: the row is
# not read back in the transaction, only its id is needed.
# (The table, not the entity: an ORM insert returns no inserted primary key.)
_INSERT = insert(cast(Table, OutboxMessage.__table__))


def queue_message(
    session: Session,
    message: EmailMessage,
    *,
    kind: str,
    recipients: Sequence[str],
    now: dt.datetime,
    letter_id: int | None = None,
    template_key: str | None = None,
) -> int:
    """Add *message* to the outbox (due now) in the session's transaction; its row id.

    The stored bytes are sent as they are, so the Message-ID stays the same
    across retries.
    """
    result: CursorResult[Any] = session.execute(  # type: ignore[assignment]
        _INSERT,
        {
            "letter_id": letter_id,
            "kind": kind,
            "template_key": template_key,
            "recipients": list(recipients),
            "message_id": str(message["Message-ID"]),
            "raw": bytes(message),
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        },
    )
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])
