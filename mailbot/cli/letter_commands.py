"""``mailbot letter list|show|retry``: the journal, one letter's story, waiting and poison letters.

``letter list`` (also ``mailbot journal``) lists journaled letters, newest first,
times in the configured zone; ``letter show ID|MESSAGE-ID`` tells what happened to
one letter (:mod:`mailbot.cli.letter_show`).

``letter retry ID`` works on two states:

* ``deferred`` (waiting for a CRL): the letter is decided again *now*, from
  its archived raw copy, in this process; a reply is queued in the outbox
  (sent by the daemon) and the daemon's next pass files the letter.
  Exit 0 when decided, 3 when it still waits.
* ``failed`` (a poison letter in the failed folder): the journal row is reset
  (no attempts, no mailbox position). Then move the letter back into the
  mailbox: the daemon's next pass processes it again as if new, on the same
  journal row. Reset first, move second: a failed letter found in the mailbox
  is filed to the failed folder again.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from typing import Any

from mailbot.app.assembly import make_processor
from mailbot.app.deferral import DeferredLetter
from mailbot.app.letter_story import UnknownLetter, letter_story
from mailbot.app.letters import RetryError
from mailbot.app.listings import deferred_letters, journal_letters
from mailbot.app.states import LetterState, NoVerdict
from mailbot.cli.common import (
    CliError,
    add_config_option,
    add_format_option,
    command_group,
    config_from_args,
    render_rows,
)
from mailbot.cli.directory_commands import FORMATS, transaction
from mailbot.cli.journal_filters import add_journal_filters, journal_filter
from mailbot.cli.letter_show import render_story, story_json
from mailbot.dates import local_iso
from mailbot.directory.models import LetterRecord
from mailbot.directory.session import database
from mailbot.log import configure_logging
from mailbot.notices.templates import TemplateError
from mailbot.regulation.routes import RulesError

LIST_COLUMNS = (
    "id", "received_at", "state", "outcome", "attempts", "sender", "subject", "route",
    "uid", "message_id", "subscriber_id", "certificate_id",
)  # fmt: skip
DEFERRED_COLUMNS = (
    "id", "received_at", "waiting", "retries", "sender", "ca", "reason", "problem",
)  # fmt: skip
#: ``letter retry`` of a deferred letter that still has no CRL.
EXIT_STILL_DEFERRED = 3


def register(subparsers: Any) -> None:
    """Add ``letter list`` and ``letter retry``."""
    letter = command_group(
        subparsers, "letter", "journaled letters", "Letters waiting for a CRL and poison letters."
    )
    listing = letter.add_parser(
        "list",
        help="list journaled letters (newest first; --deferred: those waiting for a CRL)",
        description=LIST_DESCRIPTION,
    )
    add_listing_options(listing)
    listing.set_defaults(handler=letter_list)

    show = letter.add_parser(
        "show",
        help="what happened to one letter: rules, certificate, reply, filing",
        description="Tell what happened to one journaled letter: its headers and mailbox "
        "position, every rule hit in order with the deciding one marked, the certificate "
        "(SNILS masked), the reply exactly as queued (or why there is none), the outbox "
        "state, where the letter was filed and its archived copy. Times in the configured "
        "time zone.",
    )
    show.add_argument("letter", metavar="ID|MESSAGE-ID", help="journal id or Message-ID")
    add_config_option(show)
    add_format_option(show, ["text", "json"])
    show.set_defaults(handler=letter_show)

    retry = letter.add_parser(
        "retry",
        help="decide a deferred letter now, or reset a failed (poison) letter",
        description=(
            "deferred: decide the letter again now from its archived copy (exit 0 when "
            "decided, 3 when it still waits for a CRL). failed: reset it; then move the "
            "letter back into the mailbox and the daemon processes it on its next pass."
        ),
    )
    retry.add_argument("id", type=int, help="the letter's journal id")
    add_config_option(retry)
    add_format_option(retry, ["text", "json"])
    retry.set_defaults(handler=letter_retry)


LIST_DESCRIPTION = (
    "List journaled letters, newest first (times in the configured time zone). "
    "--deferred lists the letters waiting for a CRL, oldest first, with the CA and the "
    "last problem."
)


def add_listing_options(parser: argparse.ArgumentParser) -> None:
    """The options of ``letter list`` (and of its other name, ``journal``)."""
    parser.add_argument(
        "--deferred", action="store_true", help="only letters waiting for a CRL (with details)"
    )
    add_journal_filters(parser)
    add_config_option(parser)
    add_format_option(parser, FORMATS)


def letter_list(args: argparse.Namespace) -> int:
    """``letter list`` and ``journal``."""
    if args.limit <= 0:
        raise CliError("--limit must be positive")
    if args.deferred and args.state not in (None, LetterState.DEFERRED):
        raise CliError("--deferred lists deferred letters; drop --state", exit_code=2)
    if args.deferred and any((args.sender, args.since, args.until, args.outcome)):
        raise CliError("--deferred lists every waiting letter; drop the other filters", 2)
    config = config_from_args(args)
    timezone = config.general.timezone
    now = dt.datetime.now(dt.UTC)
    with transaction(args, commit=False, config=config) as session:
        if args.deferred:
            rows = [
                _deferred_row(DeferredLetter.from_row(row), now, timezone)
                for row in deferred_letters(session, args.limit)
            ]
            columns: tuple[str, ...] = DEFERRED_COLUMNS
        else:
            wanted = journal_filter(args, timezone)
            rows = [_row(letter, timezone) for letter in journal_letters(session, wanted)]
            columns = LIST_COLUMNS
    print(render_rows(rows, columns, args.format))
    return 0


def _row(letter: LetterRecord, timezone: str) -> dict[str, Any]:
    return {
        "id": letter.id,
        "received_at": local_iso(letter.received_at, timezone),
        "state": letter.state,
        "outcome": letter.outcome,
        "attempts": letter.attempts,
        "sender": letter.sender,
        "subject": letter.subject,
        "route": letter.route,
        "uid": letter.uid,
        "message_id": letter.message_id,
        "subscriber_id": letter.subscriber_id,
        "certificate_id": letter.certificate_id,
    }


def letter_show(args: argparse.Namespace) -> int:
    """``letter show ID|MESSAGE-ID``."""
    config = config_from_args(args)
    with transaction(args, commit=False, config=config) as session:
        try:
            story = letter_story(session, args.letter, config.general.timezone)
        except UnknownLetter as exc:
            raise CliError(str(exc)) from None
    if args.format == "json":
        print(json.dumps(story_json(story), ensure_ascii=False, indent=2))
    else:
        print(render_story(story))
    return 0


def _deferred_row(letter: DeferredLetter, now: dt.datetime, timezone: str) -> dict[str, Any]:
    minutes = int(letter.waited(now).total_seconds() // 60)
    return {
        "id": letter.id,
        "received_at": local_iso(letter.received_at, timezone),
        "waiting": f"{minutes // 60}h{minutes % 60:02d}m",
        "retries": letter.retries,
        "sender": letter.sender,
        "ca": letter.ca_name,
        "reason": letter.reason,
        "problem": letter.problem,
        "urls": list(letter.urls),
        "since": local_iso(letter.since, timezone),
    }


def letter_retry(args: argparse.Namespace) -> int:
    """``letter retry ID``."""
    config = config_from_args(args)
    configure_logging(config.logging.format, "warning")
    try:
        with database(config) as sessions:
            with sessions() as session:
                row = session.get(LetterRecord, args.id)
                state = row.state if row is not None else None
            processor = make_processor(config, sessions)
            if state == LetterState.FAILED:
                processor.reset_failed(args.id)
                return _report(
                    args, "reset", f"letter {args.id} reset: move it back to "
                    f"'{config.imap.mailbox}'; the daemon processes it on its next pass",
                )  # fmt: skip
            result = processor.retry(args.id)
    except RetryError as exc:
        raise CliError(f"{exc} (only deferred and failed letters can be retried)") from None
    except (RulesError, TemplateError) as exc:
        raise CliError(f"rules or templates are invalid:\n{exc}") from None
    if result.outcome is NoVerdict.DEFERRED:
        problem = (result.detail.get("deferral") or {}).get("problem", "")
        _report(args, NoVerdict.DEFERRED, f"letter {args.id} still waits for a CRL: {problem}")
        return EXIT_STILL_DEFERRED
    if result.duplicate:
        return _report(args, result.outcome or "", f"letter {args.id} was decided meanwhile")
    queued = " reply queued in the outbox" if result.reply is not None else " no reply"
    outcome = result.outcome or ""
    return _report(args, outcome, f"letter {args.id} decided: {outcome};{queued}")


def _report(args: argparse.Namespace, outcome: str, text: str) -> int:
    if args.format == "json":
        print(json.dumps({"letter_id": args.id, "outcome": outcome, "message": text}))
    else:
        print(text)
    return 0
