"""``mailbot ca import-tsl``: import the list of accredited CAs."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from mailbot.app.ca_catalogue import SOURCE_NAMES
from mailbot.app.trust_list_import import Download, ImportRefused, import_trust_list
from mailbot.app.trust_list_refresh import import_from_url
from mailbot.cli.common import CliError, add_config_option, config_from_args
from mailbot.cli.directory_commands import transaction
from mailbot.cli.exit_codes import EX_FAILURE, EX_IOERR, EX_TEMPFAIL
from mailbot.pki.errors import CrlFetchError
from mailbot.trustlist import TrustListError
from mailbot.trustlist.changes import DirectoryChange, ImportReport


def add_import_parser(ca: Any) -> None:
    """``ca import-tsl``."""
    parser = ca.add_parser(
        "import-tsl",
        help="import the official list of accredited CAs (file or URL)",
        description="Import the Ministry's list of accredited CAs (the TSL XML file) from "
        "FILE or an http(s) URL (through [crl]'s proxy, with [trust_list]'s deadline and "
        "size cap), in one transaction, and print what changed: CAs added and gone, keys "
        "added and gone, status changes, new certificates of known keys. With [trust_list] "
        'register = "accredited" the CA directory gains every key of every CA whose status '
        "is «Действует»; keys the list no longer vouches for are flagged (never removed) "
        "and the administrators alerted once. The same file again changes nothing; an "
        "older version is refused. Exit codes: 0 imported (or unchanged), 1 refused or "
        "unreadable file, 74 file error, 75 download timed out.",
    )
    parser.add_argument("source", metavar="FILE|URL", help="the list's XML file, or its URL")
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="read the list and report what would change; write nothing",
    )
    parser.add_argument(
        "--only-status",
        metavar="TEXT",
        help="report only CAs with this accreditation status, e.g. «Действует» "
        "(case-insensitive; default: all)",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="import even an older version than the current one (it becomes current), "
        "or the current version with other content",
    )
    parser.add_argument(
        "--format", choices=["text", "json"], default="text", help="output format (default: text)"
    )
    add_config_option(parser)
    parser.set_defaults(handler=ca_import_tsl)


def ca_import_tsl(args: argparse.Namespace) -> int:
    """``ca import-tsl``."""
    config = config_from_args(args)
    source: str = args.source
    is_url = source.lower().startswith(("http://", "https://"))
    with transaction(args, commit=not args.dry_run, config=config) as session:
        try:
            if is_url:
                report = import_from_url(
                    session, config, source, force=args.force, dry_run=args.dry_run
                )
                assert report is not None  # no validators sent: never "not modified"
            else:
                path = Path(source)
                if not path.is_file():
                    raise CliError(f"{source}: no such file", EX_IOERR)
                report = import_trust_list(
                    session,
                    path,
                    config,
                    Download(str(path.resolve())),
                    force=args.force,
                    dry_run=args.dry_run,
                )
        except ImportRefused as exc:
            raise CliError(f"refused: {exc}") from None
        except TrustListError as exc:
            raise CliError(f"{source}: not imported, nothing written: {exc}") from None
        except CrlFetchError as exc:
            timed_out = "timed out" in str(exc)
            raise CliError(
                f"download failed: {exc}", EX_TEMPFAIL if timed_out else EX_FAILURE
            ) from None
        except OSError as exc:
            raise CliError(f"{source}: {exc.strerror or exc}", EX_IOERR) from None
        if args.dry_run:
            session.rollback()
    if args.only_status:
        report = report.only_status(args.only_status)
    if args.format == "json":
        print(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
    else:
        print("\n".join(report_lines(report)))
    return 0


def report_lines(report: ImportReport) -> list[str]:
    """The report for people (English, one item a line)."""
    head = f"version {report.version} of {report.published_at.isoformat()} from {report.source}"
    lines = [f"trust list {head}", f"  SHA-256: {report.sha256}"]
    if report.unchanged:
        lines.append("already imported: nothing changed")
        return lines
    before = report.previous_version
    lines.append(f"  previous version: {before if before is not None else '(none)'}")
    lines.append(
        f"  read: {report.authorities} CAs, {report.keys} keys, {report.certificates} certificates"
    )
    if report.dry_run:
        lines.append("DRY RUN: nothing was written")
    sections: list[tuple[str, list[str]]] = [
        ("CAs added", [_ca(c.name, c.registry_number, c.status) for c in report.cas_added]),
        ("CAs gone", [_ca(c.name, c.registry_number, c.status) for c in report.cas_gone]),
        (
            "status changes",
            [
                f"{_ca(s.ca.name, s.ca.registry_number, None)}: {s.old} -> {s.new}"
                for s in report.status_changes
            ],
        ),
        (
            "keys added",
            [f"{k.ski} of {_ca(k.ca.name, k.ca.registry_number, None)}" for k in report.keys_added],
        ),
        (
            "keys gone",
            [f"{k.ski} of {_ca(k.ca.name, k.ca.registry_number, None)}" for k in report.keys_gone],
        ),
        (
            "certificates added",
            [
                f"{c.thumbprint_sha1} (key {c.ski}) of {_ca(c.ca.name, c.ca.registry_number, None)}"
                for c in report.certificates_added
            ],
        ),
        ("CA directory: registered", [_directory(d) for d in report.registered]),
        ("CA directory: flagged", [_directory(d) for d in report.flagged]),
        ("CA directory: flag cleared", [_directory(d) for d in report.unflagged]),
        ("problems (entries left out)", report.problems),
    ]
    for title, items in sections:
        lines.append(f"{title}: {len(items)}")
        lines += [f"  {item}" for item in items]
    if report.alert_queued:
        lines.append("administrators alerted about the flagged keys")
    if not report.changed:
        lines.append("no changes")
    return lines


def _ca(name: str, registry_number: str | None, status: str | None = None) -> str:
    text = f"«{name}»"
    if registry_number:
        text += f" (no. {registry_number})"
    return f"{text} [{status}]" if status else text


def _directory(item: DirectoryChange) -> str:
    flag = f" {item.flag}" if item.flag else ""
    source = SOURCE_NAMES.get(item.source, "list")
    return f"CA {item.ca_id} {item.name} key {item.ski}{flag} ({source})"
