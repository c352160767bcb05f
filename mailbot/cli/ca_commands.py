"""``mailbot ca`` (the CA directory) and ``mailbot crl list|refresh`` (the CRL cache)."""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path
from typing import Any

from mailbot.app.adapters import parsed
from mailbot.app.assembly import crl_store
from mailbot.app.ca_catalogue import ca_fields
from mailbot.app.ca_release import ca_certificates, register_authorities
from mailbot.app.crl_refresh import caching_source, refresh_ca, watch_revocations
from mailbot.cli.common import (
    CliError,
    add_config_option,
    add_format_option,
    command_group,
    config_from_args,
    render_rows,
)
from mailbot.cli.directory_commands import FORMATS, transaction
from mailbot.cli.quarantine_commands import add_by_option, recheck_for_cas
from mailbot.cli.tsl_commands import add_import_parser
from mailbot.config import Config
from mailbot.directory.authorities import get_ca, list_cas, set_ca_active
from mailbot.directory.session import database
from mailbot.directory.subscribers import DirectoryError
from mailbot.notices.templates import TemplateError
from mailbot.pki.errors import PkiError

CA_COLUMNS = (
    "id", "name", "ski", "not_before", "not_after", "active", "origin", "accreditation", "crl_urls",
)  # fmt: skip
#: ``ca show``'s lines beyond the list's: the certificate's, then the list of accredited CAs'.
SHOW_COLUMNS = (
    *CA_COLUMNS, "subject", "thumbprint_sha1", "aia_urls", "source", "list_version",
    "list_flag", "list_flagged_at", "listed_as", "registry_number", "inn", "ogrn",
    "status_since", "status_until", "list_crl_urls", "listed_in", "status_history",
)  # fmt: skip
CRL_COLUMNS = ("ca_id", "ca", "crl_number", "this_update", "next_update", "entries", "source")


def register(subparsers: Any) -> None:
    """Add ``ca add|list|show|deactivate|reactivate`` and ``crl list|refresh``."""
    ca = command_group(
        subparsers, "ca", "the CA directory", "Manage registered CAs (справочник УЦ)."
    )
    add = ca.add_parser(
        "add",
        help="register CA certificate(s) from a file",
        description="Register every CA certificate in FILE (DER, PEM or PKCS#7), then "
        "re-check every quarantined certificate of those CAs and answer its sender.",
    )
    add.add_argument("file", type=Path, help="file with the CA certificate(s): DER, PEM or PKCS#7")
    add.add_argument(
        "--crl-url",
        action="append",
        default=[],
        help="extra CRL URL besides those in the certificate (repeat; default: none)",
    )
    add_by_option(add)
    add_config_option(add)
    add.set_defaults(handler=ca_add)
    listing = ca.add_parser("list", help="list CAs", description="List registered CAs.")
    add_config_option(listing)
    add_format_option(listing, FORMATS)
    listing.set_defaults(handler=ca_list)
    for action, text, handler in (
        ("show", "show one CA", ca_show),
        ("deactivate", "stop trusting a CA", ca_deactivate),
        ("reactivate", "trust a deactivated CA again", ca_reactivate),
    ):
        parser = ca.add_parser(action, help=text, description=text[0].upper() + text[1:] + ".")
        parser.add_argument("id", type=int, help="the CA's id (see 'ca list')")
        add_config_option(parser)
        if action == "show":
            add_format_option(parser, FORMATS)
        parser.set_defaults(handler=handler)
    add_import_parser(ca)

    crl = command_group(subparsers, "crl", "CRLs", "Inspect, list and refresh CRLs.")
    listing = crl.add_parser(
        "list", help="the cached CRL of every CA", description="Show the cached CRL of every CA."
    )
    add_config_option(listing)
    add_format_option(listing, FORMATS)
    listing.set_defaults(handler=crl_list)
    refresh = crl.add_parser(
        "refresh",
        help="fetch current CRLs now",
        description="Fetch a current CRL for every active CA whose cached one is not current "
        "(drop folder first, then the CA's URLs), then check registered certificates "
        "against the current CRLs: a revoked one is marked, its owner notified and "
        "administrators alerted (once). Exits 1 when some CA has no current CRL.",
    )
    add_config_option(refresh)
    refresh.set_defaults(handler=crl_refresh)


def ca_add(args: argparse.Namespace) -> int:
    """Register the CA certificates found in a file."""
    try:
        authorities = ca_certificates(args.file.read_bytes())
    except OSError as exc:
        raise CliError(f"cannot read {args.file}: {exc.strerror or exc}") from None
    except (PkiError, DirectoryError) as exc:
        raise CliError(f"{args.file}: {exc}") from None
    with transaction(args) as session:
        for row, created in register_authorities(session, authorities, args.crl_url):
            verb = "registered" if created else "already registered; refreshed"
            print(f"CA {row.id} {verb}: {row.name}")
            print(f"  SKI:                {row.ski}")
            print(f"  thumbprint (SHA-1): {row.thumbprint_sha1}")
    # After the commit: each waiting certificate is then decided in its own transaction.
    recheck_for_cas(args, authorities)
    return 0


def ca_list(args: argparse.Namespace) -> int:
    """``ca list``."""
    with transaction(args, commit=False) as session:
        rows = [ca_fields(session, row) for row in list_cas(session)]
    print(render_rows(rows, CA_COLUMNS, args.format))
    return 0


def ca_show(args: argparse.Namespace) -> int:
    """``ca show``."""
    with transaction(args, commit=False) as session:
        row = ca_fields(session, get_ca(session, args.id), details=True)
    columns = [c for c in SHOW_COLUMNS if c in row]
    if args.format == "table":
        for column in columns:
            value = row[column]
            if isinstance(value, list):  # the status history: one line each
                print(f"{column:16} {value[0] if value else '-'}")
                for item in value[1:]:
                    print(f"{'':16} {item}")
            else:
                print(f"{column:16} {'-' if value is None else value}")
    else:
        print(render_rows([row], columns, args.format))
    return 0


def ca_deactivate(args: argparse.Namespace) -> int:
    """``ca deactivate``."""
    with transaction(args) as session:
        set_ca_active(session, args.id, active=False)
    print(f"CA {args.id} deactivated: its certificates now count as from an unknown CA")
    return 0


def ca_reactivate(args: argparse.Namespace) -> int:
    """``ca reactivate``."""
    with transaction(args) as session:
        set_ca_active(session, args.id, active=True)
    print(f"CA {args.id} reactivated: its certificates are trusted again")
    return 0


def crl_list(args: argparse.Namespace) -> int:
    """``crl list``."""
    config = config_from_args(args)
    store = crl_store(config)
    rows = []
    with transaction(args, commit=False) as session:
        for row in list_cas(session):
            certificate = parsed(row)
            index = store.current(certificate) if certificate is not None else None
            meta = index.meta if index is not None else None
            rows.append(
                {
                    "ca_id": row.id,
                    "ca": row.name,
                    "crl_number": meta.crl_number if meta else None,
                    "this_update": meta.this_update if meta else None,
                    "next_update": meta.next_update if meta else None,
                    "entries": meta.entries if meta else None,
                    "source": meta.source_url if meta else "(none cached)",
                }
            )
    print(render_rows(rows, CRL_COLUMNS, args.format))
    return 0


def crl_refresh(args: argparse.Namespace) -> int:
    """``crl refresh``."""
    config = config_from_args(args)
    now = dt.datetime.now(dt.UTC)
    missing = 0
    with transaction(args, commit=False) as session:
        source = caching_source(config, session)
        for row in list_cas(session):
            refreshed = refresh_ca(source, row, now) if row.active else None
            if refreshed is None:
                continue
            if refreshed.problem is None and refreshed.this_update is not None:
                print(
                    f"CA {row.id} {row.name}: CRL {refreshed.crl_number}, "
                    f"next update {_iso(refreshed.next_update)}"
                )
            else:
                missing += 1
                print(f"CA {row.id} {row.name}: NO CURRENT CRL: {refreshed.problem or 'no CRL'}")
    _watch(config)
    return 1 if missing else 0


def _iso(moment: dt.datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _watch(config: Config) -> None:
    """The revocation watch over the CRLs now current (idempotent: status is the record)."""
    try:
        with database(config) as sessions:
            report = watch_revocations(config, sessions)
    except TemplateError as exc:
        raise CliError(f"templates are invalid:\n{exc}") from None
    for item in report.revoked:
        to = ", ".join(item.notified) or "nobody (no active trusted address)"
        print(
            f"certificate {item.certificate_id} (serial {item.serial}) REVOKED "
            f"({item.reason or 'unspecified'}); notice queued to {to}; administrators alerted"
        )
