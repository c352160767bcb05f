"""``mailbot process FILE.eml``: run one letter through the whole pipeline offline.

By default the letter goes through everything the daemon does (intake, the
certificate checks, registration) against the configured database, store
and CRL cache; the reply is queued in the outbox and printed. ``--dry-run``
changes nothing. ``--intake-only`` runs just the intake against a pretend
directory (``--trusted ADDRESS``), needs no database and changes nothing;
letters that pass it are reported as ``certificate_checks_pending``.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from mailbot.app.assembly import make_processor
from mailbot.app.letters import LetterSource
from mailbot.cli.common import CliError, add_config_option, add_format_option, config_from_args
from mailbot.config import Config
from mailbot.directory.session import database
from mailbot.log import configure_logging
from mailbot.mail.reply import ReplySettings, build_reply
from mailbot.notices.templates import TemplateError, Templates, load_templates
from mailbot.regulation.intake import IntakeDecision, IntakeSettings, decide
from mailbot.regulation.routes import RouteTable, RulesError, load_routes
from mailbot.regulation.sender_gate import InMemorySenderDirectory


def register(subparsers: Any) -> None:
    """Add ``process``."""
    parser = subparsers.add_parser(
        "process",
        help="show what mailbot would decide about a letter (.eml)",
        description=(
            "Run the intake (loop guard, sender gate, route, attachments) on one letter "
            "and print the decision, the template key and the reply; queue the reply in the "
            "outbox (sending is the daemon's job). --dry-run changes nothing."
        ),
    )
    parser.add_argument("file", help="the letter as raw RFC 5322 bytes (.eml); '-' for stdin")
    parser.add_argument("--dry-run", action="store_true", help="decide and print; touch nothing")
    parser.add_argument(
        "--intake-only",
        action="store_true",
        help="run only the intake (steps 1-4) against a pretend directory (--trusted); "
        "needs no database; implies --dry-run",
    )
    parser.add_argument(
        "--trusted",
        action="append",
        default=[],
        metavar="ADDRESS",
        help="with --intake-only: treat ADDRESS as a trusted address of an active "
        "subscriber (repeatable)",
    )
    parser.add_argument(
        "--replies-today",
        type=int,
        default=0,
        metavar="N",
        help="pretend the sender already got N replies today (tries the reply cap)",
    )
    add_config_option(parser)
    add_format_option(parser, ["text", "json"])
    parser.set_defaults(handler=process)


def process(args: argparse.Namespace) -> int:
    """Decide one letter and print the decision."""
    if not args.intake_only:
        if args.trusted:
            raise CliError("--trusted pretends a directory: use it with --intake-only", exit_code=2)
        return process_with_database(args)
    config = config_from_args(args)
    # Logs go to stderr so that --format json stays parseable on stdout.
    configure_logging(config.logging.format, "warning")
    routes, templates = load_rules_and_templates(config)
    raw = _read_letter(args.file)
    now = datetime.now(UTC)
    directory = InMemorySenderDirectory.trusting(args.trusted)
    counter = _PretendCounter(args.replies_today)
    settings = IntakeSettings.from_config(config)
    decision = decide(
        raw, settings=settings, routes=routes, directory=directory, reply_counter=counter, now=now
    )
    report = decision_report(decision, templates, config, now)
    report["file"] = args.file
    if args.format == "json":
        print(json.dumps(report, ensure_ascii=False, indent=2))
    else:
        print(render_text(report))
    return 0


def process_with_database(args: argparse.Namespace) -> int:
    """The whole pipeline against the configured database, store and CRL cache."""
    config = config_from_args(args)
    configure_logging(config.logging.format, "warning")
    raw = _read_letter(args.file)
    try:
        with database(config) as sessions:
            processor = make_processor(config, sessions)
            result = processor.process(raw, LetterSource(), dry_run=args.dry_run)
    except (RulesError, TemplateError) as exc:
        raise CliError(f"rules or templates are invalid:\n{exc}") from None
    report = {
        "file": args.file,
        "dry_run": args.dry_run,
        "letter_id": None if args.dry_run else result.letter_id,
        "duplicate": result.duplicate,
        "outcome": result.outcome or "",
        "filing": result.filing,
        "route": result.route,
        "rule_hits": result.rule_hits,
        "reply_to": result.reply_to,
        "reply_subject": str(result.reply["Subject"]) if result.reply is not None else None,
        "reply_text": result.reply_text,
        "detail": result.detail,
        "queued": result.reply is not None and not args.dry_run,
    }
    if args.format == "json":
        print(json.dumps(report, ensure_ascii=False, indent=2, default=str))
        return 0
    lines = [f"letter:    {args.file}"]
    if result.duplicate:
        lines.append(f"already journaled as letter {result.letter_id}: not processed again")
    lines += [
        "rules:",
        *(f"  {'HIT ' if h['hit'] else 'miss'} {h['rule']}  {h['detail']}".rstrip()
          for h in result.rule_hits),
        f"route:     {result.route or '(none)'}",
        f"outcome:   {result.outcome or ''}",
        f"filing:    {result.filing}",
        f"reply to:  {result.reply_to or '(no reply)'}",
    ]  # fmt: skip
    if result.reply_text is not None:
        state = "not queued (dry run)" if args.dry_run else "queued in the outbox"
        lines += [f"reply:     Subject: {report['reply_subject']} [{state}]", "", result.reply_text]
    print("\n".join(lines))
    return 0


class _PretendCounter:
    """A reply counter giving every sender the same count: a dry run knows no history."""

    def __init__(self, count: int) -> None:
        self._count = count

    def replies_on(self, address: str, day: date) -> int:
        """The pretended count."""
        return self._count


def load_rules_and_templates(config: Config) -> tuple[RouteTable, Templates]:
    """Load and validate routes and templates, as the daemon does at start."""
    try:
        routes = load_routes(config.rules_dir)
    except RulesError as exc:
        raise CliError(f"the route table is invalid:\n{exc}") from None
    try:
        templates = load_templates(config.templates_dir)
    except TemplateError as exc:
        raise CliError(f"the reply templates are invalid:\n{exc}") from None
    return routes, templates


def decision_report(
    decision: IntakeDecision, templates: Templates, config: Config, now: datetime
) -> dict[str, Any]:
    """The decision as a JSON-friendly dict (also the source of the text output)."""
    letter = decision.letter
    report: dict[str, Any] = {
        "outcome": decision.outcome_key,
        "stage": decision.stage.value,
        "disposition": decision.disposition.value,
        "reason": decision.reason,
        "route": decision.route.name if decision.route else None,
        "route_action": decision.route.action if decision.route else None,
        "sender": decision.sender,
        "subscribers": [s.subscriber_id for s in decision.subscribers],
        "letter": {
            "size": letter.size,
            "message_id": letter.message_id,
            "from": [m.address for m in letter.from_mailboxes],
            "subject": letter.subject,
            "defects": list(letter.defects),
        },
        "rule_hits": [h.as_dict() for h in decision.rule_hits],
        "attachments": _attachment_report(decision),
        "reply_to": decision.reply_to,
        "reply_withheld": decision.reply_withheld,
        "reply_subject": None,
        "reply_text": None,
    }
    if decision.outcome is not None and decision.outcome.has_reply and decision.reply_to:
        body = templates.render(decision.outcome, decision.template_values)
        reply = build_reply(
            letter,
            decision.reply_to,
            body,
            ReplySettings.from_config(config),
            now,
        )
        report["reply_subject"] = str(reply["Subject"])
        report["reply_text"] = body
        report["reply_headers"] = {k: str(v) for k, v in reply.items()}
    return report


def _attachment_report(decision: IntakeDecision) -> dict[str, Any] | None:
    if decision.certificate is not None:
        return {
            "verdict": "ok",
            "zip_name": decision.certificate.zip_name,
            "certificate_file": decision.certificate.file_name,
            "certificate_encoding": decision.certificate.encoding,
            "certificate_bytes": len(decision.certificate.data),
        }
    if decision.stage.value == "attachments":
        return {"verdict": decision.outcome_key, "reason": decision.reason}
    return None


def render_text(report: dict[str, Any]) -> str:
    """The report for people."""
    hits = report["rule_hits"]
    lines = [
        f"letter:       {report['file']} ({report['letter']['size']} bytes)",
        f"  message-id: {report['letter']['message_id']}",
        f"  from:       {', '.join(report['letter']['from']) or '(none)'}",
        f"  subject:    {report['letter']['subject']!r}",
        "rules:",
        *(f"  {'HIT ' if h['hit'] else 'miss'} {h['rule']}  {h['detail']}".rstrip() for h in hits),
        f"route:        {report['route'] or '(none)'}",
        f"stage:        {report['stage']}",
        f"reason:       {report['reason']}",
    ]
    attachments = report["attachments"]
    if attachments is not None:
        if attachments["verdict"] == "ok":
            detail = f"ok: {attachments['certificate_file']} in {attachments['zip_name']}"
        else:
            detail = f"{attachments['verdict']}: {attachments['reason']}"
        lines.append(f"attachments:  {detail}")
    lines += [
        f"outcome:      {report['outcome']}",
        f"disposition:  {report['disposition']}",
        f"reply to:     {report['reply_to'] or '(no reply)'}",
    ]
    if report["reply_text"] is not None:
        lines += [f"reply:        Subject: {report['reply_subject']}", "", report["reply_text"]]
    return "\n".join(lines)


def _read_letter(name: str) -> bytes:
    if name == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(name).read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read {name}: {exc.strerror or exc}") from None
