"""``mailbot run``: the daemon, or one pass for cron (``--once``)."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from mailbot.cli.common import CliError, add_config_option, config_from_args, unreadable_secrets
from mailbot.cli.exit_codes import EX_CONFIG


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
    """Start the daemon with the configuration.

    Errors end up in :func:`mailbot.cli.exit_codes.failure_for`: an unreachable
    IMAP server or database on ``--once`` exits 69, a schema to migrate 78.
    """
    from mailbot.daemon.runner import Daemon

    config = config_from_args(args)
    # Checked once here: the daemon's reconnect loop would retry a missing
    # password for ever, and systemd would restart a unit that cannot work.
    problems = unreadable_secrets(config)
    if problems:
        raise CliError(f"cannot read a password: {'; '.join(problems)}", EX_CONFIG)
    return asyncio.run(Daemon(config, once=args.once).run())
