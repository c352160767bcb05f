"""``mailbot reminders run [--dry-run]``: expiry reminders by hand."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
from typing import Any

from mailbot.app.reminders import ReminderReport, send_due_reminders
from mailbot.cli.common import (
    CliError,
    add_config_option,
    add_format_option,
    command_group,
    config_from_args,
    render_rows,
)
from mailbot.directory.session import database
from mailbot.mail.outbox import flush_once
from mailbot.notices.daemon_alerts import OUTBOX_ALERTS
from mailbot.notices.templates import TemplateError, load_templates

COLUMNS = (
    "certificate_id",
    "subscriber_id",
    "serial",
    "not_after",
    "threshold_days",
    "days_left",
    "status",
    "recipients",
)


def register(subparsers: Any) -> None:
    """Add ``reminders run``."""
    actions = command_group(
        subparsers,
        "reminders",
        "expiry reminders",
        "Letters to participants before a registered certificate expires.",
    )
    run = actions.add_parser(
        "run",
        help="send the reminders that are due now",
        description=(
            "Mark expired certificates, settle every reminder threshold that is due "
            "(sent, skipped, superseded or undeliverable; each at most once per "
            "certificate) and send the letters through the outbox. With --dry-run: "
            "list what would be done and change nothing."
        ),
    )
    run.add_argument("--dry-run", action="store_true", help="list only; write and send nothing")
    add_config_option(run)
    add_format_option(run, ("table", "csv", "json"))
    run.set_defaults(handler=reminders_run)


def reminders_run(args: argparse.Namespace) -> int:
    """``reminders run``."""
    config = config_from_args(args)
    if not config.reminders.enabled and not args.dry_run:
        raise CliError("reminders are disabled (reminders.enabled = false)")
    try:
        templates = load_templates(config.templates_dir)
    except TemplateError as exc:
        raise CliError(f"templates: {exc}") from None
    with database(config) as sessions:
        report = send_due_reminders(
            config, sessions, templates, dt.datetime.now(dt.UTC), dry_run=args.dry_run
        )
        flushed = None
        if report.sent:
            # The outbox claims each row, so flushing beside a running daemon is safe.
            flushed = asyncio.run(flush_once(config, sessions, OUTBOX_ALERTS))
    print(render_rows(_rows(report), COLUMNS, args.format))
    if args.format == "table":
        print(_summary(report))
        if flushed is not None and flushed.connection_error:
            print(f"SMTP: {flushed.connection_error}; the letters wait in the outbox")
    return 0


def _rows(report: ReminderReport) -> list[dict[str, Any]]:
    return [
        {
            "certificate_id": a.certificate_id,
            "subscriber_id": a.subscriber_id,
            "serial": a.serial,
            "not_after": a.not_after.isoformat(timespec="seconds"),
            "threshold_days": a.threshold_days,
            "days_left": a.days_left,
            "status": a.status,
            "recipients": " ".join(a.recipients),
        }
        for a in report.actions
    ]


def _summary(report: ReminderReport) -> str:
    verb = "would be" if report.dry_run else "were"
    counts = ", ".join(
        f"{status}: {report.count(status)}"
        for status in ("sent", "skipped", "superseded", "undeliverable")
    )
    return f"{counts}; certificates that {verb} marked expired: {report.expired}"
