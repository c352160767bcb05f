"""``mailbot check-config``: validate a configuration file before deploying it."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from mailbot.app.assembly import load_rules_and_templates
from mailbot.cli.common import CONFIG_ENV, DEFAULT_CONFIG, CliError, config_path, unreadable_secrets
from mailbot.cli.exit_codes import EX_CONFIG
from mailbot.config import ConfigError, load_config
from mailbot.notices.templates import TemplateError
from mailbot.regulation.routes import RulesError


def register(subparsers: Any) -> None:
    """Add ``check-config``."""
    parser = subparsers.add_parser(
        "check-config",
        help="validate a configuration file",
        description=(
            "Validate a configuration file: unknown keys, wrong types, bad values and "
            "missing password sources are reported with the file and the key; the "
            "routing rules and reply templates it names are loaded too. "
            "Exits 78 (EX_CONFIG) on any error, so it can guard a systemd unit "
            "(ExecStartPre=mailbot check-config --check-secrets ...)."
        ),
    )
    parser.add_argument(
        "path",
        type=Path,
        nargs="?",
        default=None,
        help=f"the TOML configuration file (default: ${CONFIG_ENV}, else {DEFAULT_CONFIG})",
    )
    parser.add_argument(
        "--check-secrets",
        action="store_true",
        help="also read every configured password; an unreadable one is an error "
        "(without this flag it is only noted, since secrets often live only on the server)",
    )
    parser.set_defaults(handler=check_config)


def check_config(args: argparse.Namespace) -> int:
    """Load the file, its rules and templates, then try to read every configured secret."""
    path = config_path(args.path)
    try:
        config = load_config(path)
    except ConfigError as exc:
        raise CliError(f"configuration is invalid:\n{exc}", EX_CONFIG) from None
    # The daemon loads rules and templates at start: a missing or broken folder fails here.
    for what, folder in (("rules", config.rules_dir), ("templates", config.templates_dir)):
        if not folder.is_dir():
            raise CliError(f"{path}: the {what} folder {folder} does not exist", EX_CONFIG)
    try:
        load_rules_and_templates(config)
    except (RulesError, TemplateError) as exc:
        raise CliError(f"{path}: rules or templates are invalid:\n{exc}", EX_CONFIG) from None
    problems = [f"{path}: {problem}" for problem in unreadable_secrets(config)]
    if problems and args.check_secrets:
        raise CliError("configuration is invalid:\n" + "\n".join(problems), EX_CONFIG)
    print(f"{path}: OK")
    print(f"  database:  {config.database_url}")
    print(
        f"  mailbox:   {config.imap.user}@{config.imap.host}:{config.imap.port} ({config.imap.tls})"
    )
    print(f"  rules:     {config.rules_dir}")
    print(f"  templates: {config.templates_dir}")
    for problem in problems:
        print(f"  note: {problem} (an error with --check-secrets)")
    return 0
