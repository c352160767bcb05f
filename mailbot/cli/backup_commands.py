"""``mailbot backup DEST`` and ``mailbot restore SRC``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from mailbot.app.backup import BackupError, make_backup, restore_backup
from mailbot.cli.common import CliError, add_config_option, config_from_args
from mailbot.cli.exit_codes import EX_FAILURE


def register(subparsers: Any) -> None:
    """Add ``backup`` and ``restore``."""
    backup = subparsers.add_parser(
        "backup",
        help="write a consistent backup of the installation into a new folder",
        description="Write the database (one snapshot), the certificate store, the "
        "quarantine, the CRL cache's state and a copy of the configuration file (no "
        "passwords) into the new folder DEST, with manifest.json (SHA-256 of every file). "
        "Safe while the daemon runs. Exits 1 when a file the database names is missing.",
    )
    backup.add_argument("dest", type=Path, metavar="DEST", help="a folder that does not exist yet")
    backup.add_argument(
        "--with-archive",
        action="store_true",
        help="also copy every archived raw letter (can be large; by default only the "
        "letters still waiting to be decided)",
    )
    add_config_option(backup)
    backup.set_defaults(handler=backup_command)

    restore = subparsers.add_parser(
        "restore",
        help="restore a backup into this installation (the daemon must be stopped)",
        description="Check every file of the backup SRC against its manifest, then replace "
        "the database and the folders of this installation with it. Refuses while a "
        "daemon holds the lease, and refuses a non-empty installation without --force. "
        "The configuration file is not restored: the copy in SRC/config is for reference.",
    )
    restore.add_argument("src", type=Path, metavar="SRC", help="a folder written by mailbot backup")
    restore.add_argument(
        "--force",
        action="store_true",
        help="replace the database and the store/quarantine/CRL files that are there",
    )
    add_config_option(restore)
    restore.set_defaults(handler=restore_command)


def backup_command(args: argparse.Namespace) -> int:
    """Write the backup; one summary line."""
    config = config_from_args(args)
    try:
        report = make_backup(config, args.dest, with_archive=args.with_archive)
    except BackupError as exc:
        raise CliError(str(exc)) from None
    rows = sum(report.tables.values())
    print(
        f"backup written to {report.path}: database revision {report.revision}, "
        f"{rows} rows in {len(report.tables)} tables, {report.files} files, {report.bytes} bytes"
    )
    for path in report.missing:
        print(f"mailbot: warning: the database names {path}, which is missing", file=sys.stderr)
    if report.missing:
        print(
            f"mailbot: {len(report.missing)} file(s) named by the database are missing "
            "(see `mailbot store verify`); the backup holds everything else",
            file=sys.stderr,
        )
        return EX_FAILURE
    return 0


def restore_command(args: argparse.Namespace) -> int:
    """Restore; one summary line and, for an older schema, the next step."""
    config = config_from_args(args)
    try:
        report = restore_backup(config, args.src, force=args.force)
    except BackupError as exc:
        raise CliError(str(exc)) from None
    print(
        f"restored {args.src}: {report.rows} rows at database revision {report.revision}, "
        f"{report.files} files"
    )
    if report.config_copy is not None:
        print(f"the backup's configuration file (not installed): {report.config_copy}")
    if report.needs_upgrade:
        print(
            f"the database schema is at {report.revision}, this mailbot needs {report.head}: "
            "run `mailbot db upgrade`"
        )
    return 0
