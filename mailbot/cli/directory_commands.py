"""``mailbot org|subscriber|address|import|export``: the subscriber directory."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from mailbot.cli.common import (
    CliError,
    add_config_option,
    add_format_option,
    config_from_args,
    render_rows,
)
from mailbot.config import Config
from mailbot.directory import subscribers as directory
from mailbot.directory.csv_export import (
    DEFAULT_DELIMITER,
    DEFAULT_ENCODING,
    ENCODINGS,
    ExportEncodingError,
    encode_csv,
    export_rows,
)
from mailbot.directory.csv_format import DELIMITER_NAMES, NotCsvError
from mailbot.directory.csv_import import (
    COLUMNS,
    PROGRESS_EVERY,
    CsvImportError,
    Progress,
    import_csv,
)
from mailbot.directory.models import Organisation, Subscriber
from mailbot.directory.session import database
from mailbot.identifiers import IdentifierError

FORMATS = ("table", "csv", "json")
SUBSCRIBER_ID_HELP = "the subscriber's id (see 'subscriber list')"
#: ``export --delimiter`` values -> the separator.
_DELIMITERS = {name: delimiter for delimiter, name in DELIMITER_NAMES.items()}


@contextmanager
def transaction(
    args: argparse.Namespace, commit: bool = True, config: Config | None = None
) -> Iterator[Session]:
    """One session and transaction for a command; user errors become :class:`CliError`.

    *config* is the configuration the command loaded already (else it is loaded here).
    """
    config = config or config_from_args(args)
    try:
        with database(config) as sessions, sessions() as session:
            try:
                yield session
            except BaseException:
                session.rollback()
                raise
            if commit:
                session.commit()
            else:
                session.rollback()
    except (directory.DirectoryError, IdentifierError) as exc:
        raise CliError(str(exc)) from None


def organisation_row(organisation: Organisation) -> dict[str, Any]:
    """An organisation for output."""
    return {
        "id": organisation.id,
        "name": organisation.name,
        "code": organisation.registry_code,
        "inn": organisation.inn,
        "ogrn": organisation.ogrn,
        "active": organisation.active,
    }


def subscriber_row(subscriber: Subscriber) -> dict[str, Any]:
    """A subscriber for output."""
    return {
        "id": subscriber.id,
        "organisation_id": subscriber.organisation_id,
        "surname": subscriber.surname,
        "given_names": subscriber.given_names,
        "title": subscriber.title,
        "snils": subscriber.snils,
        "active": subscriber.active,
        "addresses": " ".join(a.address for a in subscriber.addresses if a.active),
    }


ORG_COLUMNS = ("id", "name", "code", "inn", "ogrn", "active")
SUBSCRIBER_COLUMNS = (
    "id",
    "organisation_id",
    "surname",
    "given_names",
    "title",
    "snils",
    "active",
    "addresses",
)


def _command(
    commands: Any, name: str, help_text: str, handler: Callable[[argparse.Namespace], int]
) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = commands.add_parser(
        name, help=help_text, description=help_text[0].upper() + help_text[1:] + "."
    )
    add_config_option(parser)
    parser.set_defaults(handler=handler)
    return parser


def register(subparsers: Any) -> None:
    """Add the directory commands."""
    org = subparsers.add_parser(
        "org", help="organisations", description="Manage organisations (участники)."
    )
    org_commands = org.add_subparsers(dest="org_command", metavar="ACTION", required=True)
    add = _command(org_commands, "add", "add an organisation", org_add)
    add.add_argument("--name", required=True, help="the organisation's name (required)")
    add.add_argument("--inn", help="the organisation's INN, 10 or 12 digits (default: none)")
    add.add_argument("--ogrn", help="the organisation's OGRN, 13 or 15 digits (default: none)")
    add.add_argument(
        "--code", help="the organisation's code in the fund's registry (default: none)"
    )
    add_format_option(_command(org_commands, "list", "list organisations", org_list), FORMATS)
    for action, text in (
        ("show", "show an organisation and its subscribers"),
        ("activate", "mark an organisation active"),
        ("deactivate", "mark an organisation inactive (its subscribers' letters go unanswered)"),
    ):
        parser = _command(org_commands, action, text, org_show if action == "show" else org_state)
        parser.add_argument("id", type=int, help="the organisation's id (see 'org list')")
        if action == "show":
            add_format_option(parser, FORMATS)

    sub = subparsers.add_parser(
        "subscriber", help="subscribers", description="Manage subscribers (абоненты)."
    )
    sub_commands = sub.add_subparsers(dest="subscriber_command", metavar="ACTION", required=True)
    add = _command(sub_commands, "add", "add a subscriber", subscriber_add)
    add.add_argument("--org", type=int, required=True, help="the organisation's id (required)")
    add.add_argument("--surname", help="surname (default: none)")
    add.add_argument("--given-names", help="given name and patronymic (default: none)")
    add.add_argument("--title", help="job title (default: none)")
    add.add_argument("--snils", help="SNILS, 11 digits, separators allowed (default: none)")
    add.add_argument(
        "--address", action="append", default=[], help="trusted address (repeat; default: none)"
    )
    listing = _command(sub_commands, "list", "list subscribers", subscriber_list)
    listing.add_argument(
        "--org", type=int, help="only this organisation's subscribers (default: all)"
    )
    add_format_option(listing, FORMATS)
    for action, text in (
        ("show", "show a subscriber"),
        ("activate", "mark a subscriber active"),
        ("deactivate", "mark a subscriber inactive (letters go unanswered)"),
    ):
        parser = _command(
            sub_commands, action, text, subscriber_show if action == "show" else subscriber_state
        )
        parser.add_argument("id", type=int, help=SUBSCRIBER_ID_HELP)
        if action == "show":
            add_format_option(parser, FORMATS)
    snils = _command(sub_commands, "set-snils", "set or clear a subscriber's SNILS", set_snils)
    snils.add_argument("id", type=int, help=SUBSCRIBER_ID_HELP)
    group = snils.add_mutually_exclusive_group(required=True)
    group.add_argument("snils", nargs="?", help="the new SNILS, 11 digits, separators allowed")
    group.add_argument("--clear", action="store_true", help="remove the SNILS")

    address = subparsers.add_parser(
        "address", help="trusted addresses", description="Manage trusted addresses."
    )
    address_commands = address.add_subparsers(
        dest="address_command", metavar="ACTION", required=True
    )
    for action, text, handler in (
        ("add", "trust an address for a subscriber", address_add),
        ("remove", "stop trusting an address", address_remove),
    ):
        parser = _command(address_commands, action, text, handler)
        parser.add_argument("subscriber", type=int, help=SUBSCRIBER_ID_HELP)
        parser.add_argument("address", help="the e-mail address")
    listing = _command(address_commands, "list", "list trusted addresses", address_list)
    listing.add_argument(
        "--subscriber", type=int, help="only this subscriber's addresses (default: all)"
    )
    add_format_option(listing, FORMATS)

    importer = _command(
        subparsers,
        "import",
        "import organisations, subscribers and addresses from CSV (all or nothing)",
        import_command,
    )
    importer.description = (
        "Import the subscriber directory from CSV as Excel saves it: UTF-8 (with or "
        "without BOM), UTF-16 with BOM (Excel's 'Unicode text') or CP1251; ';', ',' or "
        f"TAB, found from the header. Columns: {', '.join(COLUMNS)}. Any bad row aborts "
        "the whole import; every bad row is reported with its line number. The rows are "
        f"applied in one transaction; a progress line goes to stderr every "
        f"{PROGRESS_EVERY:,} rows. The summary counts rows added, updated and unchanged."
    )
    importer.add_argument("file", type=Path, help="the CSV file to import")
    importer.add_argument("--dry-run", action="store_true", help="check and report, change nothing")
    importer.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help=f"no progress lines on stderr (every {PROGRESS_EVERY:,} rows); the summary stays",
    )
    exporter = _command(
        subparsers, "export", "export the subscriber directory (CSV importable again)", export
    )
    exporter.description = (
        "Export the subscriber directory to stdout: one row per subscriber and one per "
        "organisation without subscribers. The CSV opens in a Russian Excel by "
        f"double-click ({DEFAULT_ENCODING}, '{DEFAULT_DELIMITER}') and imports back unchanged."
    )
    add_format_option(exporter, ("csv", "json", "table"))
    exporter.add_argument(
        "--encoding",
        choices=ENCODINGS,
        help=f"CSV encoding (default: {DEFAULT_ENCODING}; cp1251 refuses a name it cannot hold)",
    )
    exporter.add_argument(
        "--delimiter",
        choices=list(_DELIMITERS),
        metavar="';'|','|tab",
        help=f"CSV separator (default: {DEFAULT_DELIMITER})",
    )


def org_add(args: argparse.Namespace) -> int:
    """``org add``."""
    with transaction(args) as session:
        organisation = directory.add_organisation(
            session, args.name, inn=args.inn, ogrn=args.ogrn, registry_code=args.code
        )
        print(f"organisation {organisation.id} added: {organisation.name}")
    return 0


def org_list(args: argparse.Namespace) -> int:
    """``org list``."""
    with transaction(args, commit=False) as session:
        rows = [organisation_row(o) for o in directory.list_organisations(session)]
    print(render_rows(rows, ORG_COLUMNS, args.format))
    return 0


def org_show(args: argparse.Namespace) -> int:
    """``org show``."""
    with transaction(args, commit=False) as session:
        organisation = directory.get_organisation(session, args.id)
        row = organisation_row(organisation)
        members = [subscriber_row(s) for s in directory.list_subscribers(session, args.id)]
    print(render_rows([row], ORG_COLUMNS, args.format))
    if args.format == "table":
        print()
        print(render_rows(members, SUBSCRIBER_COLUMNS, args.format))
    return 0


def org_state(args: argparse.Namespace) -> int:
    """``org activate|deactivate``."""
    active = args.org_command == "activate"
    with transaction(args) as session:
        directory.set_organisation_active(session, args.id, active)
    print(f"organisation {args.id} {'activated' if active else 'deactivated'}")
    return 0


def subscriber_add(args: argparse.Namespace) -> int:
    """``subscriber add``."""
    with transaction(args) as session:
        subscriber = directory.add_subscriber(
            session,
            args.org,
            surname=args.surname,
            given_names=args.given_names,
            title=args.title,
            snils=args.snils,
            addresses=args.address,
        )
        print(f"subscriber {subscriber.id} added")
    return 0


def subscriber_list(args: argparse.Namespace) -> int:
    """``subscriber list``."""
    with transaction(args, commit=False) as session:
        if args.org is not None:
            directory.get_organisation(session, args.org)  # refuse an unknown id
        rows = [subscriber_row(s) for s in directory.list_subscribers(session, args.org)]
    print(render_rows(rows, SUBSCRIBER_COLUMNS, args.format))
    return 0


def subscriber_show(args: argparse.Namespace) -> int:
    """``subscriber show``."""
    with transaction(args, commit=False) as session:
        subscriber = directory.get_subscriber(session, args.id)
        row = subscriber_row(subscriber)
        certificates = [
            {
                "serial": c.serial,
                "subject_cn": c.subject_cn,
                "not_after": c.not_after.isoformat(),
                "status": c.status,
                "thumbprint_sha1": c.thumbprint_sha1,
            }
            for c in subscriber.certificates
        ]
    print(render_rows([row], SUBSCRIBER_COLUMNS, args.format))
    if args.format == "table" and certificates:
        print()
        columns = ("serial", "subject_cn", "not_after", "status", "thumbprint_sha1")
        print(render_rows(certificates, columns, "table"))
    return 0


def subscriber_state(args: argparse.Namespace) -> int:
    """``subscriber activate|deactivate``."""
    active = args.subscriber_command == "activate"
    with transaction(args) as session:
        directory.set_subscriber_active(session, args.id, active)
    print(f"subscriber {args.id} {'activated' if active else 'deactivated'}")
    return 0


def set_snils(args: argparse.Namespace) -> int:
    """``subscriber set-snils``."""
    with transaction(args) as session:
        subscriber = directory.set_snils(session, args.id, None if args.clear else args.snils)
        print(f"subscriber {subscriber.id}: SNILS {subscriber.snils or 'cleared'}")
    return 0


def address_add(args: argparse.Namespace) -> int:
    """``address add``."""
    with transaction(args) as session:
        trusted = directory.add_address(session, args.subscriber, args.address)
        print(f"{trusted.address} trusted for subscriber {args.subscriber}")
    return 0


def address_remove(args: argparse.Namespace) -> int:
    """``address remove``."""
    with transaction(args) as session:
        directory.get_subscriber(session, args.subscriber)  # "no subscriber", not "not trusted"
        directory.remove_address(session, args.subscriber, args.address)
    print(f"{args.address.lower()} no longer trusted for subscriber {args.subscriber}")
    return 0


def address_list(args: argparse.Namespace) -> int:
    """``address list``."""
    with transaction(args, commit=False) as session:
        if args.subscriber is not None:
            directory.get_subscriber(session, args.subscriber)  # refuse an unknown id
        rows = [
            {"subscriber_id": a.subscriber_id, "address": a.address, "active": a.active}
            for a in directory.list_addresses(session, args.subscriber)
        ]
    print(render_rows(rows, ("subscriber_id", "address", "active"), args.format))
    return 0


def import_progress(dry_run: bool) -> Progress:
    """Reports ``imported 20000/100000 rows`` (``checked`` for a dry run) on stderr."""
    verb = "checked" if dry_run else "imported"

    def report(done: int, total: int) -> None:
        print(f"{verb} {done}/{total} rows", file=sys.stderr, flush=True)

    return report


def import_command(args: argparse.Namespace) -> int:
    """``import FILE.csv``."""
    progress = None if args.quiet else import_progress(args.dry_run)
    try:
        with transaction(args, commit=not args.dry_run) as session:
            report = import_csv(session, args.file, progress)
    except OSError as exc:
        raise CliError(f"cannot read {args.file}: {exc.strerror or exc}") from None
    except NotCsvError as exc:
        raise CliError(f"{args.file}: {exc}") from None
    except CsvImportError as exc:
        for error in exc.report.errors:
            print(f"{args.file}: {error}")
        raise CliError(
            f"{args.file}: {len(exc.report.errors)} problem(s); nothing was imported"
        ) from None
    verb = "would import" if args.dry_run else "imported"
    print(
        f"{args.file} ({report.encoding}, '{report.delimiter}'): {verb} {report.rows} row(s): "
        f"{report.rows_added} added, {report.rows_updated} updated, "
        f"{report.rows_unchanged} unchanged; "
        f"{report.organisations_created} organisation(s) created, "
        f"{report.organisations_updated} organisation(s) updated, "
        f"{report.addresses_added} address(es) added"
    )
    return 0


def export(args: argparse.Namespace) -> int:
    """``export``: CSV bytes in the chosen encoding, or JSON/table text."""
    if args.format != "csv" and (args.encoding or args.delimiter):
        raise CliError("--encoding and --delimiter apply to --format csv only")
    with transaction(args, commit=False) as session:
        rows = export_rows(session)
        if args.format != "csv":
            print(render_rows([row.values for row in rows], COLUMNS, args.format))
            return 0
        try:
            lines = encode_csv(
                rows,
                args.encoding or DEFAULT_ENCODING,
                _DELIMITERS[args.delimiter or DEFAULT_DELIMITER],
            )
        except ExportEncodingError as exc:
            raise CliError(f"nothing exported: {exc}") from None
    sys.stdout.flush()
    sys.stdout.buffer.writelines(lines)
    sys.stdout.buffer.flush()
    return 0
