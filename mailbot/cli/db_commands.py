"""``mailbot db``: create or upgrade the database schema."""

from __future__ import annotations

import argparse
from typing import Any

from mailbot.cli.common import add_config_option, config_from_args
from mailbot.directory import migrate
from mailbot.directory.engine import engine_from_config


def register(subparsers: Any) -> None:
    """Add ``db upgrade`` and ``db current``."""
    parser = subparsers.add_parser(
        "db", help="database schema", description="Create, upgrade or inspect the schema."
    )
    commands = parser.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    upgrade = commands.add_parser(
        "upgrade",
        help="create or upgrade the schema to the newest revision",
        description="Apply every pending migration (safe to run on every start).",
    )
    add_config_option(upgrade)
    upgrade.set_defaults(handler=db_upgrade)
    current = commands.add_parser(
        "current",
        help="show the schema revision",
        description="Print the database's schema revision and the newest one available.",
    )
    add_config_option(current)
    current.set_defaults(handler=db_current)


def db_upgrade(args: argparse.Namespace) -> int:
    """Migrate to head."""
    config = config_from_args(args)
    engine = engine_from_config(config)
    try:
        migrate.upgrade(engine)
        revision = migrate.current_revision(engine)
    finally:
        engine.dispose()
    print(f"{config.database_url}: at revision {revision}")
    return 0


def db_current(args: argparse.Namespace) -> int:
    """Print the revision."""
    config = config_from_args(args)
    engine = engine_from_config(config)
    try:
        revision = migrate.current_revision(engine)
    finally:
        engine.dispose()
    head = migrate.head_revision()
    state = "up to date" if revision == head else f"behind (newest: {head})"
    print(f"{config.database_url}: revision {revision or 'none (empty)'}, {state}")
    return 0 if revision == head else 1
