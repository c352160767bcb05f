"""``mailbot journal`` and ``mailbot cert list``: what happened to letters and certificates.

``journal`` is another name of ``letter list`` (one listing, in
:mod:`mailbot.cli.letter_commands`).
"""

from __future__ import annotations

import argparse
import datetime as dt
from typing import Any

from mailbot.app.listings import registered_certificates
from mailbot.cli.common import (
    add_config_option,
    add_format_option,
    command_group,
    config_from_args,
    render_rows,
)
from mailbot.cli.directory_commands import FORMATS, transaction
from mailbot.cli.letter_commands import LIST_DESCRIPTION, add_listing_options, letter_list
from mailbot.dates import local_iso
from mailbot.directory.subscribers import get_subscriber

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


def register(subparsers: Any) -> None:
    """Add ``journal`` and ``cert list``."""
    journal = subparsers.add_parser(
        "journal",
        help="the letter journal (the same as `letter list`)",
        description=LIST_DESCRIPTION,
    )
    add_listing_options(journal)
    journal.set_defaults(handler=letter_list)

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


def cert_list(args: argparse.Namespace) -> int:
    """``cert list``."""
    horizon = (
        dt.datetime.now(dt.UTC) + dt.timedelta(days=args.expiring_within)
        if args.expiring_within is not None
        else None
    )
    config = config_from_args(args)
    timezone = config.general.timezone
    with transaction(args, commit=False, config=config) as session:
        if args.subscriber is not None:
            get_subscriber(session, args.subscriber)  # refuse an unknown id
        rows = [
            {
                "id": c.id,
                "subscriber_id": c.subscriber_id,
                "serial": c.serial,
                "subject_cn": c.subject_cn,
                "not_before": local_iso(c.not_before, timezone),
                "not_after": local_iso(c.not_after, timezone),
                "status": c.status,
                "thumbprint_sha1": c.thumbprint_sha1,
            }
            for c in registered_certificates(session, args.subscriber, horizon)
        ]
    print(render_rows(rows, CERT_COLUMNS, args.format))
    return 0
