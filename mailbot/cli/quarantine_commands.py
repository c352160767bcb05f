"""``mailbot quarantine list|show|reject|retry``: certificates from unknown CAs.

Registering the CA itself is ``mailbot ca add``; it re-checks the waiting
certificates through :func:`recheck_for_cas` below.
"""

from __future__ import annotations

import argparse
import getpass
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy.orm import Session

from mailbot.app.ca_release import open_review, pending_for_cas
from mailbot.app.quarantine import (
    STATUSES,
    Decision,
    QuarantineReview,
    clean_reason,
    get_quarantined,
    list_quarantine,
    pending_ids,
    read_certificate,
)
from mailbot.app.states import QuarantineStatus
from mailbot.cli.common import (
    CliError,
    add_config_option,
    add_format_option,
    command_group,
    config_from_args,
    render_rows,
)
from mailbot.cli.directory_commands import FORMATS, transaction
from mailbot.directory.models import LetterRecord, QuarantinedCertificate
from mailbot.directory.session import database
from mailbot.directory.subscribers import DirectoryError
from mailbot.notices.templates import TemplateError
from mailbot.pki.certificate import Certificate

LIST_COLUMNS = (
    "id",
    "received_at",
    "status",
    "serial",
    "subject_cn",
    "sender",
    "issuer",
    "decided_by",
    "reason",
)
ID_HELP = "a quarantined certificate's id"
SHOW_COLUMNS = (
    *LIST_COLUMNS[:-2],
    "authority_key_id",
    "issuer_dn",
    "aia_urls",
    "not_before",
    "not_after",
    "snils",
    "thumbprint_sha1",
    "subscriber_id",
    "letter_id",
    "letter_subject",
    "letter_message_id",
    "path",
    "decided_by",
    "decided_at",
    "reason",
)


def default_decider() -> str:
    """Who decides when ``--by`` is not given: the OS user running the command."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name and no passwd entry (some containers)
        return "unknown"


def add_by_option(parser: argparse.ArgumentParser) -> None:
    """``--by WHO``, recorded as the quarantine row's ``decided_by``."""
    parser.add_argument(
        "--by", default=None, help="who decides (default: the OS user running the command)"
    )


def register(subparsers: Any) -> None:
    """Add ``quarantine list|show|reject|retry``."""
    group = command_group(
        subparsers,
        "quarantine",
        "certificates from unknown CAs",
        "The quarantine (технологическая папка): certificates from CAs not in the CA directory. "
        "Register the CA with 'mailbot ca add CA.cer' to re-check and answer them.",
    )
    listing = group.add_parser(
        "list", help="list quarantined certificates", description="List quarantined certificates."
    )
    listing.add_argument(
        "--status",
        choices=[*STATUSES, "all"],
        default="pending",
        help="only certificates in this status (default: pending)",
    )
    add_config_option(listing)
    add_format_option(listing, FORMATS)
    listing.set_defaults(handler=quarantine_list)

    show = group.add_parser("show", help="show one", description="Show a quarantined certificate.")
    show.add_argument("id", type=int, help=f"{ID_HELP} (see 'quarantine list')")
    add_config_option(show)
    add_format_option(show, FORMATS)
    show.set_defaults(handler=quarantine_show)

    reject = group.add_parser(
        "reject",
        help="reject and tell the participant",
        description="Reject pending certificates; each sender gets the 'unknown_ca_rejected' "
        "follow-up with REASON.",
    )
    reject.add_argument("id", type=int, nargs="+", help=f"{ID_HELP} (one or more)")
    reject.add_argument("--reason", required=True, help="the reason, as the participant reads it")
    add_by_option(reject)
    add_config_option(reject)
    reject.set_defaults(handler=quarantine_reject)

    retry = group.add_parser(
        "retry",
        help="re-check pending certificates",
        description="Run the checks again for pending certificates (all when no ID is given); "
        "those whose CA is now registered are decided and answered.",
    )
    retry.add_argument("id", type=int, nargs="*", help=f"{ID_HELP} (default: every pending one)")
    add_by_option(retry)
    add_config_option(retry)
    retry.set_defaults(handler=quarantine_retry)


def _row(row: QuarantinedCertificate, session: Session | None = None) -> dict[str, Any]:
    certificate = read_certificate(row)
    issuer = certificate.issuer.get("CN") if certificate is not None else None
    letter = (
        session.get(LetterRecord, row.letter_id) if session is not None and row.letter_id else None
    )
    return {
        "id": row.id,
        "received_at": row.created_at.isoformat(timespec="seconds"),
        "status": row.status,
        "serial": row.serial,
        "subject_cn": certificate.subject_cn if certificate is not None else None,
        "sender": row.sender,
        "issuer": issuer or row.issuer_dn,
        "authority_key_id": row.authority_key_id,
        "issuer_dn": row.issuer_dn,
        "aia_urls": " ".join(row.aia_urls),
        "not_before": certificate.not_before.isoformat() if certificate is not None else None,
        "not_after": certificate.not_after.isoformat() if certificate is not None else None,
        "snils": certificate.snils if certificate is not None else None,
        "thumbprint_sha1": row.thumbprint_sha1,
        "subscriber_id": row.subscriber_id,
        "letter_id": row.letter_id,
        "letter_subject": letter.subject if letter is not None else None,
        "letter_message_id": letter.message_id if letter is not None else None,
        "path": row.path if certificate is not None else f"{row.path} (missing or damaged)",
        "decided_by": row.decided_by,
        "decided_at": row.decided_at.isoformat(timespec="seconds") if row.decided_at else None,
        "reason": row.reason,
    }


def quarantine_list(args: argparse.Namespace) -> int:
    """``quarantine list``."""
    with transaction(args, commit=False) as session:
        rows = [_row(row) for row in list_quarantine(session, args.status)]
    print(render_rows(rows, LIST_COLUMNS, args.format))
    return 0


def quarantine_show(args: argparse.Namespace) -> int:
    """``quarantine show``."""
    with transaction(args, commit=False) as session:
        row = _row(get_quarantined(session, args.id), session)
    if args.format == "table":
        for column in SHOW_COLUMNS:
            print(f"{column:18} {'' if row[column] is None else row[column]}")
    else:
        print(render_rows([row], SHOW_COLUMNS, args.format))
    return 0


def quarantine_reject(args: argparse.Namespace) -> int:
    """``quarantine reject``: exits 1 when some certificate was not pending."""
    reason = clean_reason(args.reason)
    if not reason:
        raise CliError("--reason must not be empty: the participant reads it")
    decisions = run_review(
        args,
        lambda session: known_ids(session, args.id),
        lambda review, ids: review.reject(ids, reason, _by(args)),
    )
    _report(decisions)
    return 0 if all(d.status is QuarantineStatus.REJECTED and d.changed for d in decisions) else 1


def quarantine_retry(args: argparse.Namespace) -> int:
    """``quarantine retry``."""
    decisions = run_review(
        args,
        lambda session: known_ids(session, args.id) or pending_ids(session),
        lambda review, ids: review.recheck(ids, _by(args)),
    )
    if not decisions:
        print("no pending certificates")
    _report(decisions)
    return 0


def recheck_for_cas(args: argparse.Namespace, authorities: Sequence[Certificate]) -> None:
    """After ``ca add``: decide and answer every pending certificate of these CAs."""
    decisions = run_review(
        args,
        lambda session: pending_for_cas(session, authorities),
        lambda review, ids: review.recheck(ids, _by(args)),
    )
    if not decisions:
        print("no quarantined certificate waited for this CA")
    _report(decisions)


def known_ids(session: Session, ids: Sequence[int]) -> list[int]:
    """*ids* once each, after checking that every one exists.

    An unknown id refuses the whole command before anything is decided, rather
    than after the ids before it were decided and answered.
    """
    unique = list(dict.fromkeys(ids))
    for quarantine_id in unique:
        get_quarantined(session, quarantine_id)  # DirectoryError: "no quarantined ..."
    return unique


def _by(args: argparse.Namespace) -> str:
    return str(args.by or default_decider())[:200]


def _report(decisions: Sequence[Decision]) -> None:
    for decision in decisions:
        print(decision.line())


def run_review(
    args: argparse.Namespace,
    choose: Callable[[Session], list[int]],
    act: Callable[[QuarantineReview, list[int]], list[Decision]],
) -> list[Decision]:
    """Choose certificate ids in a short read-only session, then decide each in its own."""
    config = config_from_args(args)
    try:
        with database(config) as sessions:
            with sessions() as session:
                ids = choose(session)
                session.rollback()  # no read transaction stays open while others write
            return act(open_review(config, sessions), ids)
    except TemplateError as exc:
        raise CliError(f"templates: {exc}") from None
    except DirectoryError as exc:
        raise CliError(str(exc)) from None
