"""Helpers shared by the command modules: errors, config loading, output formats."""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from mailbot.cli.exit_codes import EX_CONFIG, CliError
from mailbot.config import Config, ConfigError, SecretError, load_config
from mailbot.display import spreadsheet_cell, terminal_text
from mailbot.log import configure_logging

__all__ = [
    "CONFIG_ENV",
    "DEFAULT_CONFIG",
    "CliError",
    "add_config_option",
    "add_format_option",
    "command_group",
    "config_from_args",
    "config_path",
    "render_rows",
    "unreadable_secrets",
]

#: Environment variable naming the configuration file when --config is not given.
CONFIG_ENV = "MAILBOT_CONFIG"
#: The configuration file used when neither --config nor $MAILBOT_CONFIG names one
#: (where scripts/install-production.sh puts it).
DEFAULT_CONFIG = Path("/etc/mailbot/config.toml")


def add_config_option(parser: argparse.ArgumentParser, inherit: bool = False) -> None:
    """``--config PATH`` (default: $MAILBOT_CONFIG, else /etc/mailbot/config.toml).

    With *inherit* the option leaves no default behind (SUPPRESS): a group that runs a
    command itself (``mailbot web``) and its actions (``mailbot web user list``) then all
    take ``--config``, and an action's parser never resets one given to the group.
    """
    parser.add_argument(
        "-c",
        "--config",
        type=Path,
        default=argparse.SUPPRESS if inherit else None,
        help=f"configuration file (default: ${CONFIG_ENV}, else {DEFAULT_CONFIG})",
    )


def config_path(explicit: Path | None) -> Path:
    """The configuration file to use: *explicit*, else ``$MAILBOT_CONFIG``, else the default.

    Refuses (:class:`CliError`, EX_CONFIG) when nothing names a file and the default
    does not exist: built-in defaults would quietly put a database in whatever
    folder the command was started from.
    """
    if explicit is not None:
        return explicit
    if os.environ.get(CONFIG_ENV):
        return Path(os.environ[CONFIG_ENV])
    try:
        present = DEFAULT_CONFIG.exists()
    except PermissionError:
        # /etc/mailbot is 0750 root:mailbot: the file may be there but not for this
        # user; loading it says so ("cannot read the file") better than "missing".
        present = True
    if present:
        return DEFAULT_CONFIG
    raise CliError(
        f"no configuration file: --config not given, ${CONFIG_ENV} not set, "
        f"{DEFAULT_CONFIG} does not exist",
        EX_CONFIG,
    )


def config_from_args(args: argparse.Namespace) -> Config:
    """Load the configuration named by ``--config``, ``$MAILBOT_CONFIG`` or the default."""
    path = config_path(getattr(args, "config", None))
    try:
        config = load_config(path)
    except ConfigError as exc:
        raise CliError(str(exc), EX_CONFIG) from None
    configure_logging(config.logging.format, config.logging.level)
    return config


def unreadable_secrets(config: Config) -> list[str]:
    """``key: why`` for every password this configuration needs but cannot read now."""
    problems = []
    for key, source in config.needed_secrets():
        try:
            source.resolve()
        except SecretError as exc:
            problems.append(f"{key}: {exc}")
    return problems


def add_format_option(parser: argparse.ArgumentParser, choices: Sequence[str]) -> None:
    """``--format`` with the given choices, the first being the default."""
    parser.add_argument(
        "--format",
        choices=list(choices),
        default=choices[0],
        help=f"output format (default: {choices[0]})",
    )


def render_rows(
    rows: Iterable[Mapping[str, Any]], columns: Sequence[str], output_format: str
) -> str:
    """Rows as an aligned table (``table``/``text``), ``csv`` or ``json``.

    Values may come from letters: the table shows control characters escaped,
    the CSV starts formula-like cells with ``'`` (JSON escapes by itself).
    """
    materialised = [{c: row.get(c) for c in columns} for row in rows]
    if output_format == "json":
        return json.dumps(materialised, ensure_ascii=False, indent=2, default=str)
    if output_format == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(columns), lineterminator="\n")
        writer.writeheader()
        for row in materialised:
            writer.writerow(
                {c: "" if v is None else spreadsheet_cell(str(v)) for c, v in row.items()}
            )
        return buffer.getvalue().rstrip("\n")
    cells = [
        [("" if row[c] is None else terminal_text(str(row[c]))) for c in columns]
        for row in materialised
    ]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    return "\n".join(lines)


_groups: dict[int, Any] = {}


def command_group(subparsers: Any, name: str, help_text: str, description: str) -> Any:
    """The sub-command group *name* (``cert``, ``crl``...), created on first use.

    Several command modules may add actions to one group (``cert list`` lives
    with the directory, ``cert inspect`` with the PKI).
    """
    parser = subparsers.choices.get(name)
    if parser is None:
        parser = subparsers.add_parser(name, help=help_text, description=description)
        _groups[id(parser)] = parser.add_subparsers(
            dest=f"{name}_command", metavar="ACTION", required=True
        )
    return _groups[id(parser)]
