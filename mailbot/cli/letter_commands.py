"""``mailbot letter list|retry``: letters waiting for a CRL, and poison letters.

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
from mailbot.app.letters import RetryError
from mailbot.app.listings import deferred_letters, letters_in_state
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
from mailbot.directory.models import LetterRecord
from mailbot.directory.session import database
from mailbot.log import configure_logging
from mailbot.notices.templates import TemplateError
from mailbot.regulation.routes import RulesError

LIST_COLUMNS = ("id", "received_at", "state", "outcome", "attempts", "sender", "subject")
DEFERRED_COLUMNS = (
    "id", "received_at", "waiting", "retries", "sender", "ca", "reason", "problem",
)  # fmt: skip
STATES = tuple(state.value for state in LetterState)
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
        description="List journaled letters, newest first. --deferred lists the letters "
        "waiting for a CRL, oldest first, with the CA and the last problem.",
    )
    listing.add_argument(
        "--deferred", action="store_true", help="only letters waiting for a CRL (with details)"
    )
    listing.add_argument("--state", choices=STATES, help="only letters in this state")
    listing.add_argument("--limit", type=int, default=200, help="at most this many (default 200)")
    add_config_option(listing)
    add_format_option(listing, FORMATS)
    listing.set_defaults(handler=letter_list)

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


def letter_list(args: argparse.Namespace) -> int:
    """``letter list``."""
    if args.limit <= 0:
        raise CliError("--limit must be positive")
    if args.deferred and args.state not in (None, LetterState.DEFERRED):
        raise CliError("--deferred lists deferred letters; drop --state", exit_code=2)
    now = dt.datetime.now(dt.UTC)
    with transaction(args, commit=False) as session:
        if args.deferred:
            rows = [
                _deferred_row(DeferredLetter.from_row(row), now)
                for row in deferred_letters(session, args.limit)
            ]
            columns: tuple[str, ...] = DEFERRED_COLUMNS
        else:
            rows = [_row(letter) for letter in letters_in_state(session, args.limit, args.state)]
            columns = LIST_COLUMNS
    print(render_rows(rows, columns, args.format))
    return 0


def _row(letter: LetterRecord) -> dict[str, Any]:
    return {
        "id": letter.id,
        "received_at": letter.received_at.isoformat(timespec="seconds"),
        "state": letter.state,
        "outcome": letter.outcome,
        "attempts": letter.attempts,
        "sender": letter.sender,
        "subject": letter.subject,
    }


def _deferred_row(letter: DeferredLetter, now: dt.datetime) -> dict[str, Any]:
    minutes = int(letter.waited(now).total_seconds() // 60)
    return {
        "id": letter.id,
        "received_at": letter.received_at.isoformat(timespec="seconds"),
        "waiting": f"{minutes // 60}h{minutes % 60:02d}m",
        "retries": letter.retries,
        "sender": letter.sender,
        "ca": letter.ca_name,
        "reason": letter.reason,
        "problem": letter.problem,
        "urls": list(letter.urls),
        "since": letter.since.isoformat(timespec="seconds"),
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
