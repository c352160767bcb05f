"""``mailbot``: the entry point. Each command group lives in its own module.

A command module exposes ``register(subparsers)``; it adds its parsers and
sets ``handler`` to a function taking the parsed arguments and returning the
exit code. Errors meant for the user are raised as :class:`CliError`; any
other exception also ends as one line on stderr with a sysexits code (see
:mod:`mailbot.cli.exit_codes`), the traceback only with ``--debug``.
"""

from __future__ import annotations

import argparse
import importlib
import io
import sys
import traceback
from collections.abc import Sequence
from typing import Any

from mailbot import __version__
from mailbot.cli.exit_codes import EX_INTERRUPTED, EX_USAGE, EXIT_CODES_HELP, failure_for
from mailbot.files import restrict_umask
from mailbot.log import journal_prefix

#: Command modules, in the order their commands appear in ``mailbot --help``.
COMMAND_MODULES: tuple[str, ...] = (
    "mailbot.cli.config_commands",
    "mailbot.cli.doctor",
    "mailbot.cli.db_commands",
    "mailbot.cli.directory_commands",
    "mailbot.cli.ca_commands",
    "mailbot.cli.quarantine_commands",
    "mailbot.cli.store_commands",
    "mailbot.cli.journal_commands",
    "mailbot.cli.letter_commands",
    "mailbot.cli.process_commands",
    "mailbot.cli.run_commands",
    "mailbot.cli.reminder_commands",
    "mailbot.cli.report_commands",
    "mailbot.cli.pki_commands",
    "mailbot.cli.backup_commands",
    "mailbot.cli.web_commands",
)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every command registered."""
    parser = argparse.ArgumentParser(
        prog="mailbot",
        description=(
            "E-mail driven registration of GOST signature certificates "
            "(ADD_CERT letters to the reestrin@ mailbox)."
        ),
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"mailbot {__version__}")
    parser.add_argument(_DEBUG, **_DEBUG_OPTIONS, default=False)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    _accept_debug_everywhere(subparsers)
    return parser


_DEBUG = "--debug"
_DEBUG_OPTIONS: dict[str, Any] = {
    "action": "store_true",
    "help": "on an error, print the Python traceback too",
}


def _accept_debug_everywhere(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Let ``--debug`` follow the command too (``mailbot run --once --debug``)."""
    for parser in set(subparsers.choices.values()):
        # SUPPRESS: a command's parser must not reset a --debug given before it.
        parser.add_argument(_DEBUG, **_DEBUG_OPTIONS, default=argparse.SUPPRESS)
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                _accept_debug_everywhere(action)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return EX_USAGE
    try:
        return int(handler(args))
    except KeyboardInterrupt:
        return EX_INTERRUPTED
    except Exception as exc:  # the one place where every error becomes a line
        if getattr(args, "debug", False):
            traceback.print_exc()
        failure = failure_for(exc)
        # An error for `journalctl -p err` too, when stderr is the journal.
        prefix = journal_prefix("error", sys.stderr)
        print(f"{prefix}mailbot: {failure.message}", file=sys.stderr)
        return failure.exit_code


def run() -> None:
    """The ``mailbot`` program: :func:`main` in a process that keeps its files private."""
    # Letters, certificates and the database hold personal data: nothing this
    # process creates may be readable by others, whatever umask it inherited.
    # (Here, not in main(): tests call main() inside their own process.)
    restrict_umask()
    # A report may quote a stranger's undecodable bytes; writing it to a strict
    # UTF-8 stream must not crash the command (nor a log line the daemon).
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="backslashreplace")
    raise SystemExit(main())


if __name__ == "__main__":  # pragma: no cover
    run()
