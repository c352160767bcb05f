"""``mailbot doctor``: can this installation work? One line per check, exit 1 if any fails.

The checks themselves are in :mod:`mailbot.doctor`.
"""

from __future__ import annotations

import argparse
from typing import Any

from mailbot import __version__
from mailbot.cli.common import add_config_option, config_from_args
from mailbot.cli.exit_codes import EX_FAILURE, EX_OK
from mailbot.doctor import CHECK_SECONDS, run_checks


def register(subparsers: Any) -> None:
    """Add ``doctor``."""
    parser = subparsers.add_parser(
        "doctor",
        help="check that this installation can work",
        description=(
            "Check versions, the database and its schema, the working folders (a file is "
            "written and deleted in each), the IMAP mailbox (LOGIN and folders), the SMTP "
            "server (EHLO, STARTTLS and AUTH as configured), the registered CAs' CRL URLs, "
            "the GOST backend with a known-answer self-test and the metrics endpoint. "
            "One line per check: '[ok] what' or '[FAIL] what: cause — what to do'. "
            f"Every check stops after {CHECK_SECONDS:g} s. Exits 1 when a check fails."
        ),
    )
    add_config_option(parser)
    parser.set_defaults(handler=doctor)


def doctor(args: argparse.Namespace) -> int:
    """Run every check and print one line each."""
    config = config_from_args(args)
    print(f"mailbot {__version__}")
    report = run_checks(config)
    for name, finding in report:
        print(f"  {finding.line(name)}", flush=True)
    return EX_OK if all(finding.ok for _name, finding in report) else EX_FAILURE
