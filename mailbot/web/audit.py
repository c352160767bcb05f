"""The audit log: every change made through the web console, with who and when.

Call :func:`record` in the same database transaction as the change itself, so
that a change is never without its entry nor an entry without its change.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mailbot.directory.models import AuditEntry


def record(
    session: Session,
    actor: str,
    action: str,
    target: str = "",
    details: dict[str, Any] | None = None,
    at: dt.datetime | None = None,
) -> AuditEntry:
    """Add an audit entry to *session* (the caller commits it with the change).

    *action* is a dotted verb (``web_user.disable``), *target* what it was done to
    (``web_user:alice``); *details* must hold no password and no whole SNILS.
    """
    entry = AuditEntry(
        actor=actor,
        action=action,
        target=target,
        details=details or {},
        at=at or dt.datetime.now(dt.UTC),
    )
    session.add(entry)
    return entry


def entries(session: Session, limit: int, offset: int = 0) -> tuple[int, Sequence[AuditEntry]]:
    """The number of entries, and the newest *limit* after skipping *offset*."""
    total = int(session.scalar(select(func.count(AuditEntry.id))) or 0)
    rows = session.scalars(
        select(AuditEntry)
        .order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
        .limit(limit)
        .offset(offset)
    ).all()
    return total, rows
