"""How mailbot writes a moment for people: ``ДД.ММ.ГГГГ ЧЧ:ММ:СС`` in the configured time zone.

Replies, notices and admin alerts all write dates this way; the regulation's
checks fill reply values with it, so it sits below both.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

#: Dates in replies: ДД.ММ.ГГГГ ЧЧ:ММ:СС.
REPLY_DATE_FORMAT = "%d.%m.%Y %H:%M:%S"


def format_reply_datetime(moment: datetime, timezone: str) -> str:
    """A date for a reply, ``ДД.ММ.ГГГГ ЧЧ:ММ:СС`` in *timezone*. Naive datetimes are refused."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("a naive datetime has no defined local time; pass an aware one")
    return moment.astimezone(ZoneInfo(timezone)).strftime(REPLY_DATE_FORMAT)
