"""Field values of the trust list: xs:dateTime, hex identifiers, plain texts."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo

#: A dateTime without an offset is Moscow time: the Ministry publishes from
#: Moscow and its portal shows Moscow time (see the reader's module docstring).
MOSCOW = ZoneInfo("Europe/Moscow")

# xs:dateTime (and xs:date): .NET writes up to seven fraction digits, an offset or none.
_DATETIME = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)"
    r"(?:T(\d\d):(\d\d):(\d\d)(?:\.(\d+))?)?"
    r"(Z|[+-]\d\d:\d\d)?"
)


def parse_datetime(text: str, naive_timezone: tzinfo = MOSCOW) -> datetime:
    """An xs:dateTime (or xs:date, read as its midnight) as an aware UTC datetime.

    Without an offset the value is read in *naive_timezone*. Raises ValueError.
    """
    match = _DATETIME.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"{text.strip()[:40]!r} is not an xs:dateTime")
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    zone: tzinfo = naive_timezone
    if offset == "Z":
        zone = UTC
    elif offset:
        sign = -1 if offset[0] == "-" else 1
        delta = timedelta(hours=int(offset[1:3]), minutes=int(offset[4:6]))
        zone = timezone(sign * delta)
    moment = datetime(
        int(year),
        int(month),
        int(day),
        int(hour or 0),
        int(minute or 0),
        int(second or 0),
        micro,
        tzinfo=zone,
    )
    return moment.astimezone(UTC)


def parse_hex(text: str) -> bytes:
    """Hex digits, any case, spaces allowed (``"a1 B2"``); raises ValueError if empty or odd."""
    compact = "".join(text.split())
    if not compact:
        raise ValueError("empty")
    return bytes.fromhex(compact)


def text_of(parent: ET.Element, path: str) -> str | None:
    """The whitespace-collapsed text of the element at *path*, or ``None`` if absent or empty."""
    found = parent.find(path)
    if found is None:
        return None
    # The element's own text: an unknown child element inside it is ignored, like any other.
    text = " ".join((found.text or "").split())
    return text or None
