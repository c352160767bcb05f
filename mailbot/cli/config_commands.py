"""``mailbot check-config``: validate a configuration file before deploying it."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from mailbot.cli.common import CliError
from mailbot.config import ConfigError, SecretError, load_config


def register(subparsers: Any) -> None:
    """Add ``check-config``."""
    parser = subparsers.add_parser(
        "check-config",
        help="validate a configuration file",
        description=(
            "Validate a configuration file: unknown keys, wrong types, bad values and "
            "missing password sources are reported with the file and the key. "
            "Exits non-zero on any error."
        ),
    )
    parser.add_argument("path", type=Path, help="the TOML configuration file")
    parser.add_argument(
        "--no-secrets",
        action="store_true",
        help="do not try to read the configured passwords (e.g. on a build host)",
    )
    parser.set_defaults(handler=check_config)


def check_config(args: argparse.Namespace) -> int:
    """Load the file, then try to read every configured secret."""
    try:
        config = load_config(args.path)
    except ConfigError as exc:
        raise CliError(f"configuration is invalid:\n{exc}") from None
    if not args.no_secrets:
        problems = []
        sources = [("imap.password", config.imap.password)]
        if config.smtp.user:
            sources.append(("smtp.password", config.smtp.password))
        if config.database.password.configured:
            sources.append(("database.password", config.database.password))
        for key, source in sources:
            try:
                source.resolve()
            except SecretError as exc:
                problems.append(f"{args.path}: {key}: {exc}")
        if problems:
            raise CliError("configuration is invalid:\n" + "\n".join(problems))
    print(f"{args.path}: OK")
    print(f"  database: {config.database_url}")
    imap = config.imap
    print(f"  mailbox:  {imap.user}@{imap.host}:{imap.port} ({imap.tls})")
    print(f"  rules:    {config.rules_dir}")
    print(f"  templates:{' '}{config.templates_dir}")
    return 0
