"""``mailbot``: the entry point. Each command group lives in its own module.

A command module exposes ``register(subparsers)``; it adds its parsers and
sets ``handler`` to a function taking the parsed arguments and returning the
exit code. Errors meant for the user are raised as :class:`CliError`.
"""

from __future__ import annotations

import argparse
import importlib
import io
import sys
from collections.abc import Sequence

from mailbot import __version__
from mailbot.cli.common import CliError
from mailbot.files import restrict_umask

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
    "mailbot.cli.pki_commands",
)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every command registered."""
    parser = argparse.ArgumentParser(
        prog="mailbot",
        description=(
            "E-mail driven registration of GOST signature certificates "
            "(ADD_CERT letters to the reestrin@ mailbox)."
        ),
    )
    parser.add_argument("--version", action="version", version=f"mailbot {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        return int(handler(args))
    except CliError as exc:
        print(f"mailbot: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


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
