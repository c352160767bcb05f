"""The Jinja2 environment of the console's pages (``templates/web``), autoescaping everything.

The templates are the program's own (not reply texts a fund edits), so they are
always the shipped ones, whatever ``paths.templates_dir`` says.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from mailbot.config.schema import shipped_dir
from mailbot.display import terminal_text
from mailbot.web.roles import ROLE_TITLES, Role


def web_dir() -> Path:
    """The shipped folder of the console's templates; ``static/`` inside it."""
    return shipped_dir("templates") / "web"


def environment(folder: Path | None = None) -> Environment:
    """Templates from *folder* (default :func:`web_dir`); every ``{{ }}`` is HTML-escaped."""
    env = Environment(
        loader=FileSystemLoader(folder or web_dir()),
        # Every template, whatever its name: letter data is hostile.
        autoescape=True,
        finalize=inert,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["moment"] = moment
    env.globals["role_title"] = lambda role: ROLE_TITLES.get(Role(role), role)
    return env


def inert(value: object) -> object:
    """Every ``{{ }}`` output: controls and bidi overrides shown as escapes, line by line.

    Autoescaping keeps markup out; this keeps a stranger's right-to-left override
    or control character from disguising what a page shows (as on the terminal,
    :func:`mailbot.display.terminal_text`). Line breaks stay; safe markup passes.
    """
    if isinstance(value, str) and not isinstance(value, Markup):
        return "\n".join(terminal_text(line) for line in value.split("\n"))
    return value


def moment(value: dt.datetime | None, zone: str | None = None) -> str:
    """A time as ``ДД.ММ.ГГГГ ЧЧ:ММ`` in *zone* (default: the zone it carries), ``—`` for none."""
    if value is None:
        return "—"
    if zone is not None:
        value = value.astimezone(ZoneInfo(zone))
    return value.strftime("%d.%m.%Y %H:%M")
