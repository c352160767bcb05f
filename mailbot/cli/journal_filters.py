"""The journal listing's filters: ``--sender``, ``--since``, ``--until``, ``--outcome``...

Dates are read in the configured time zone (``[general] timezone``): the parser
only keeps what was written, the command resolves it once the configuration is
loaded. ``--since 2026-12-01`` starts at that day's local midnight, ``--until
2026-12-07`` takes the whole day in; a date-time is taken as it is (local unless it
carries an offset); ``7d`` means seven days before now.
"""

from __future__ import annotations

import argparse
import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from mailbot.app.listings import JournalFilter
from mailbot.app.states import LetterState, NoVerdict
from mailbot.regulation.decision import NOTICE_OUTCOMES, Outcome

#: Every outcome the journal records (``--outcome`` refuses anything else, listing these).
OUTCOMES = tuple(dict.fromkeys(o.value for o in (*Outcome, *NoVerdict) if o not in NOTICE_OUTCOMES))
STATES = tuple(state.value for state in LetterState)
_DATE_HELP = "2026-12-01, 2026-12-01T10:00 (local time) or Nd (N days ago)"


@dataclass(frozen=True)
class DateArgument:
    """A ``--since``/``--until`` value as written: a day, a moment, or days before now."""

    value: dt.date | dt.datetime | dt.timedelta

    def start(self, zone: ZoneInfo, now: dt.datetime) -> dt.datetime:
        """The earliest moment the value names."""
        if isinstance(self.value, dt.timedelta):
            return now - self.value
        if isinstance(self.value, dt.datetime):
            return self.value if self.value.tzinfo else self.value.replace(tzinfo=zone)
        return dt.datetime.combine(self.value, dt.time.min, tzinfo=zone)

    def end(self, zone: ZoneInfo, now: dt.datetime) -> dt.datetime:
        """The latest moment the value names (a day: its last microsecond, local)."""
        if isinstance(self.value, dt.date) and not isinstance(self.value, dt.datetime):
            next_day = dt.datetime.combine(self.value + dt.timedelta(days=1), dt.time.min, zone)
            return next_day - dt.timedelta(microseconds=1)
        return self.start(zone, now)


def date_argument(text: str) -> DateArgument:
    """argparse type of ``--since``/``--until``."""
    text = text.strip()
    if text.endswith("d") and text[:-1].isdigit():
        return DateArgument(dt.timedelta(days=int(text[:-1])))
    try:
        return DateArgument(dt.date.fromisoformat(text))
    except ValueError:
        pass
    try:
        return DateArgument(dt.datetime.fromisoformat(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date ({_DATE_HELP})") from None


def add_journal_filters(parser: argparse.ArgumentParser) -> None:
    """The filters of a journal listing, and ``--limit``."""
    parser.add_argument("--sender", help="only letters from this address")
    parser.add_argument("--since", type=date_argument, help=f"received from ({_DATE_HELP})")
    parser.add_argument(
        "--until", type=date_argument, help=f"received until, a date's whole day ({_DATE_HELP})"
    )
    parser.add_argument("--outcome", choices=OUTCOMES, metavar="OUTCOME",
                        help=f"only this outcome: {', '.join(OUTCOMES)}")  # fmt: skip
    parser.add_argument("--state", choices=STATES, help="only letters in this state")
    parser.add_argument("--limit", type=int, default=200, help="at most this many (default 200)")


def journal_filter(args: argparse.Namespace, timezone: str) -> JournalFilter:
    """The listing's filter from the parsed arguments, dates resolved in *timezone*."""
    zone = ZoneInfo(timezone)
    now = dt.datetime.now(dt.UTC)
    since: DateArgument | None = args.since
    until: DateArgument | None = args.until
    return JournalFilter(
        limit=args.limit,
        since=since.start(zone, now) if since is not None else None,
        until=until.end(zone, now) if until is not None else None,
        outcome=args.outcome,
        state=args.state,
        sender=args.sender,
    )
