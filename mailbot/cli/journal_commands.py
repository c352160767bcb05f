"""``mailbot journal`` and ``mailbot cert list``: what happened to letters and certificates."""

from __future__ import annotations

import argparse
import datetime as dt
from typing import Any

from mailbot.app.listings import journal_letters, registered_certificates
from mailbot.cli.common import (
    CliError,
    add_config_option,
    add_format_option,
    command_group,
    render_rows,
)
from mailbot.cli.directory_commands import FORMATS, transaction
from mailbot.directory.subscribers import get_subscriber

JOURNAL_COLUMNS = (
    "id",
    "received_at",
    "sender",
    "subject",
    "route",
    "outcome",
    "state",
    "subscriber_id",
    "certificate_id",
)
CERT_COLUMNS = (
    "id",
    "subscriber_id",
    "serial",
    "subject_cn",
    "not_before",
    "not_after",
    "status",
    "thumbprint_sha1",
)


def _since(text: str) -> dt.datetime:
    """``2026-11-01``, ``2026-11-01T10:00`` or ``7d`` (days ago)."""
    if text.endswith("d") and text[:-1].isdigit():
        return dt.datetime.now(dt.UTC) - dt.timedelta(days=int(text[:-1]))
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a date (2026-11-01, 2026-11-01T10:00 or 7d)"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def register(subparsers: Any) -> None:
    """Add ``journal`` and ``cert list``."""
    journal = subparsers.add_parser(
        "journal",
        help="the letter journal",
        description="List journaled letters, newest first.",
    )
    journal.add_argument("--since", type=_since, help="date, date-time or Nd (e.g. 7d)")
    journal.add_argument("--outcome", help="only this outcome (e.g. success, no_reply)")
    journal.add_argument("--sender", help="only letters from this address")
    journal.add_argument("--limit", type=int, default=200, help="at most this many (default 200)")
    add_config_option(journal)
    add_format_option(journal, FORMATS)
    journal.set_defaults(handler=journal_list)

    cert_commands = command_group(
        subparsers, "cert", "certificates", "Registered certificates and inspection."
    )
    listing = cert_commands.add_parser(
        "list",
        help="list registered certificates",
        description="List registered certificates, soonest expiry first.",
    )
    listing.add_argument(
        "--subscriber", type=int, help="only this subscriber's certificates (default: all)"
    )
    listing.add_argument(
        "--expiring-within",
        type=int,
        metavar="DAYS",
        help="only valid ones expiring within DAYS days (default: all)",
    )
    add_config_option(listing)
    add_format_option(listing, FORMATS)
    listing.set_defaults(handler=cert_list)


def journal_list(args: argparse.Namespace) -> int:
    """``journal``."""
    if args.limit <= 0:
        raise CliError("--limit must be positive")
    with transaction(args, commit=False) as session:
        rows = [
            {
                "id": letter.id,
                "received_at": letter.received_at.isoformat(timespec="seconds"),
                "sender": letter.sender,
                "subject": letter.subject,
                "route": letter.route,
                "outcome": letter.outcome,
                "state": letter.state,
                "subscriber_id": letter.subscriber_id,
                "certificate_id": letter.certificate_id,
            }
            for letter in journal_letters(
                session, args.limit, args.since, args.outcome, args.sender
            )
        ]
    print(render_rows(rows, JOURNAL_COLUMNS, args.format))
    return 0


def cert_list(args: argparse.Namespace) -> int:
    """``cert list``."""
    horizon = (
        dt.datetime.now(dt.UTC) + dt.timedelta(days=args.expiring_within)
        if args.expiring_within is not None
        else None
    )
    with transaction(args, commit=False) as session:
        if args.subscriber is not None:
            get_subscriber(session, args.subscriber)  # refuse an unknown id
        rows = [
            {
                "id": c.id,
                "subscriber_id": c.subscriber_id,
                "serial": c.serial,
                "subject_cn": c.subject_cn,
                "not_before": c.not_before.isoformat(timespec="seconds"),
                "not_after": c.not_after.isoformat(timespec="seconds"),
                "status": c.status,
                "thumbprint_sha1": c.thumbprint_sha1,
            }
            for c in registered_certificates(session, args.subscriber, horizon)
        ]
    print(render_rows(rows, CERT_COLUMNS, args.format))
    return 0
