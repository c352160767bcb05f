"""How mailbot writes a moment for people: ``ДД.ММ.ГГГГ ЧЧ:ММ:СС`` in the configured time zone.

Replies, notices and admin alerts all write dates this way; the regulation's
checks fill reply values with it, so it sits below both. The command line shows
moments as ISO 8601 in the same zone, with the offset (:func:`local_iso`).
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

#: Dates in replies: ДД.ММ.ГГГГ ЧЧ:ММ:СС.
REPLY_DATE_FORMAT = "%d.%m.%Y %H:%M:%S"


def format_reply_datetime(moment: datetime, timezone: str) -> str:
    """A date for a reply, ``ДД.ММ.ГГГГ ЧЧ:ММ:СС`` in *timezone*. Naive datetimes are refused."""
    return local_time(moment, timezone).strftime(REPLY_DATE_FORMAT)


def local_time(moment: datetime, timezone: str) -> datetime:
    """*moment* in *timezone* (an aware datetime, so its offset is printed with it)."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("a naive datetime has no defined local time; pass an aware one")
    return moment.astimezone(ZoneInfo(timezone))


def local_iso(moment: datetime | None, timezone: str) -> str | None:
    """*moment* as ISO 8601 in *timezone*, to the second, with the offset (None stays None)."""
    if moment is None:
        return None
    return local_time(moment, timezone).isoformat(timespec="seconds")
