"""``mailbot store verify``: compare the certificate store's files with the directory."""

from __future__ import annotations

import argparse
from typing import Any

from mailbot.app.listings import store_rows
from mailbot.cli.common import add_config_option, config_from_args
from mailbot.cli.directory_commands import transaction
from mailbot.directory.certstore import CertificateStore


def register(subparsers: Any) -> None:
    """Add ``store verify``."""
    parser = subparsers.add_parser(
        "store", help="certificate store", description="Inspect the certificate store."
    )
    commands = parser.add_subparsers(dest="store_command", metavar="ACTION", required=True)
    verify = commands.add_parser(
        "verify",
        help="report rows without files and files without rows",
        description="Compare the store folder with the registered certificates; "
        "exits 1 when they differ.",
    )
    add_config_option(verify)
    verify.set_defaults(handler=store_verify)


def store_verify(args: argparse.Namespace) -> int:
    """Print every difference; exit 1 when there is one."""
    config = config_from_args(args)
    store = CertificateStore(config.certificate_store)
    with transaction(args, commit=False) as session:
        rows = store_rows(session)
    report = store.verify(rows)
    for line in report.rows_without_files:
        print(f"row without file: {line}")
    for line in report.files_without_rows:
        print(f"file without row: {line}")
    for line in report.unreadable_files:
        print(f"unreadable file: {line}")
    print(
        f"{config.certificate_store}: {len(rows)} registered certificate(s), "
        + ("consistent" if report.consistent else "INCONSISTENT")
    )
    return 0 if report.consistent else 1
