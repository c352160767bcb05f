"""``mailbot run``: the daemon, or one pass for cron (``--once``)."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from mailbot.cli.common import CliError, add_config_option, config_from_args
from mailbot.config import SecretError
from mailbot.directory.session import SchemaNotCurrent


def register(subparsers: Any) -> None:
    """Add ``run``."""
    parser = subparsers.add_parser(
        "run",
        help="run the daemon (or one pass with --once)",
        description=(
            "Watch the mailbox around the clock: process every letter exactly once, send "
            "replies, file letters. SIGTERM finishes the letter in hand, flushes the outbox "
            "and exits 0; SIGHUP reloads rules and templates. With --once: process what is "
            "there, flush the outbox and exit (for cron or a systemd timer)."
        ),
    )
    parser.add_argument("--once", action="store_true", help="one pass, then exit")
    add_config_option(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Start the daemon with the configuration."""
    from mailbot.daemon.runner import Daemon

    config = config_from_args(args)
    try:
        return asyncio.run(Daemon(config, once=args.once).run())
    except SchemaNotCurrent as exc:
        raise CliError(str(exc)) from None
    except SecretError as exc:
        raise CliError(f"cannot read a password: {exc}") from None
    except SQLAlchemyError as exc:
        raise CliError(f"database error: {str(exc).splitlines()[0]}") from None
