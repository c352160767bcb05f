"""Which period a report covers and when it is due, in the configured time zone.

A period is whole local days: ``daily`` the day before the sending day,
``weekly`` the seven days before it (``weekday = "monday"``: Monday to
Sunday). The report is due from ``hour`` o'clock of the sending day; a daemon
that was down then sends it when it is back, for the same period. Only the
latest period is ever due: periods missed entirely are not sent afterwards.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from mailbot.config.schema import WEEKDAYS

_LENGTH = {"daily": 1, "weekly": 7}


@dataclass(frozen=True)
class Period:
    """``[start, end)``: whole local days, stored as UTC moments."""

    kind: str
    start: dt.datetime
    end: dt.datetime
    #: The first and the last local day of the period.
    first_day: dt.date
    last_day: dt.date

    @property
    def key(self) -> str:
        """The period's unique name: ``weekly:2026-11-23`` (kind and first local day)."""
        return f"{self.kind}:{self.first_day.isoformat()}"


def period_ending(kind: str, sending_day: dt.date, timezone: str) -> Period:
    """The *kind* period that ends when local *sending_day* begins."""
    zone = ZoneInfo(timezone)
    first = sending_day - dt.timedelta(days=_LENGTH[kind])

    def midnight(day: dt.date) -> dt.datetime:
        return dt.datetime.combine(day, dt.time(), tzinfo=zone).astimezone(dt.UTC)

    return Period(kind, midnight(first), midnight(sending_day), first,
                  sending_day - dt.timedelta(days=1))  # fmt: skip


def due_period(kind: str, weekday: str, hour: int, timezone: str, now: dt.datetime) -> Period:
    """The latest period whose report is due at *now* (due from *hour* of its sending day).

    *weekday* only matters for ``weekly``. With *hour* 0 this is simply the
    last period that has ended by *now*.
    """
    local = now.astimezone(ZoneInfo(timezone))
    day = local.date()
    if kind == "weekly":
        day -= dt.timedelta(days=(local.weekday() - WEEKDAYS.index(weekday)) % 7)
    if day == local.date() and local.hour < hour:
        day -= dt.timedelta(days=_LENGTH[kind])
    return period_ending(kind, day, timezone)
