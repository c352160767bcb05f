"""``mailbot report send [--period daily|weekly] [--dry-run]``: the administrators' report now."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
from typing import Any

from mailbot.app.report import ALREADY_SENT, RACED, last_period, send_report
from mailbot.cli.common import CliError, add_config_option, command_group, config_from_args
from mailbot.config.schema import ReportPeriod
from mailbot.directory.session import database
from mailbot.mail.outbox import flush_once
from mailbot.notices.daemon_alerts import OUTBOX_ALERTS
from mailbot.notices.templates import TemplateError, load_templates

PERIODS: tuple[ReportPeriod, ...] = ("weekly", "daily")


def register(subparsers: Any) -> None:
    """Add ``report send``."""
    actions = command_group(
        subparsers,
        "report",
        "the administrators' periodic report",
        "The report letter to admin.alert_addresses (letters by outcome, rejections, "
        "waiting certificates and letters, expiring certificates, CRLs, outbox failures).",
    )
    send = actions.add_parser(
        "send",
        help="send the report of the last period now",
        description=(
            "Send the report of the last period that has ended (the week before the last "
            "report.weekday, or yesterday) to admin.alert_addresses now, unless it was sent "
            "already (by the daemon or an earlier command): each period's report is sent "
            "once. With --dry-run: print the letter and its attachment's size, send nothing."
        ),
    )
    send.add_argument("--period", choices=PERIODS, help="weekly or daily (default: report.period)")
    send.add_argument("--dry-run", action="store_true", help="print the letter; send nothing")
    add_config_option(send)
    send.set_defaults(handler=report_send)


def report_send(args: argparse.Namespace) -> int:
    """``report send``."""
    config = config_from_args(args)
    if not config.admin.alert_addresses and not args.dry_run:
        raise CliError("admin.alert_addresses is empty: nobody to send the report to")
    try:
        load_templates(config.templates_dir)  # every problem with the texts, up front
    except TemplateError as exc:
        raise CliError(f"templates: {exc}") from None
    now = dt.datetime.now(dt.UTC)
    period = last_period(config, now, args.period)
    with database(config) as sessions:
        result = send_report(config, sessions, period, now, dry_run=args.dry_run)
        if result.letter is not None and args.dry_run:
            name, content, _mime = result.letter.attachment
            print(f"Subject: {result.letter.subject}")
            recipients = (
                ", ".join(config.admin.alert_addresses) or "(admin.alert_addresses is empty)"
            )
            print(f"To: {recipients}")
            print()
            print(result.letter.body, end="")
            print(f"\n[attachment {name}: {len(content)} bytes]")
            return 0
        if result.status == ALREADY_SENT:
            sent_at = result.sent_at.isoformat(timespec="seconds") if result.sent_at else "?"
            print(f"report {period.key} was sent already ({sent_at}); nothing to do")
            return 0
        if result.status == RACED:
            print(f"report {period.key} was just sent by another mailbot; nothing to do")
            return 0
        print(f"report {period.key} queued (outbox {result.outbox_id})")
        # The outbox claims each row, so flushing beside a running daemon is safe.
        flushed = asyncio.run(flush_once(config, sessions, OUTBOX_ALERTS))
        if flushed.connection_error:
            print(f"SMTP: {flushed.connection_error}; the letter waits in the outbox")
    return 0
