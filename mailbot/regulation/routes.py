"""Step 3: the route table in ``rules/*.toml`` and subject matching.

Files are read in name order; their ``[[route]]`` entries form one ordered
table and the first match wins. Each route matches the decoded, trimmed
subject case-insensitively, exactly (``subject``) or by a regular expression
that must match the whole subject (``subject_regex``), and sends the letter to
a handler (``action = "add_cert"``) or leaves it in the mailbox for another
process of the fund (``action = "leave"``). ``Re:``/``Fwd:`` prefixes are kept
unless the route sets ``strip_reply_prefixes = true``. The table is validated
when loaded: every problem is reported with its file and route.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mailbot.regulation.decision import RuleHit

#: Actions a route may name. Handlers other than ``add_cert`` arrive with later issues.
HANDLER_ACTIONS = frozenset({"add_cert"})
LEAVE = "leave"
_ROUTE_KEYS = frozenset({"name", "subject", "subject_regex", "action", "strip_reply_prefixes"})
# Reply/forward prefixes of English and Russian clients, repeated: "Re: Fwd: RE[2]: Ответ:".
_REPLY_PREFIX = re.compile(
    r"^(?:\s*(?:re|fwd?|aw|wg|ответ|отв|пересл|ha)(?:\[\d+\])?\s*:\s*)+", re.IGNORECASE
)
#: Subjects are matched on at most this many characters (regexes are admin-written, input is not).
MAX_SUBJECT_CHARS = 1000


class RulesError(Exception):
    """The route table is unusable; ``problems`` lists every ``file: route: message``."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass(frozen=True)
class Route:
    """One entry of the route table."""

    name: str
    action: str
    source: str
    subject: str | None = None
    subject_regex: re.Pattern[str] | None = None
    strip_reply_prefixes: bool = False

    @property
    def leaves(self) -> bool:
        """Whether matching letters belong to another process and stay untouched."""
        return self.action == LEAVE

    def matches(self, subject: str) -> bool:
        """Whether this route takes a letter with the decoded *subject*."""
        text = normalize_subject(subject)
        if self.strip_reply_prefixes:
            text = _REPLY_PREFIX.sub("", text).strip()
        if self.subject is not None:
            return text.casefold() == self.subject.strip().casefold()
        return self.subject_regex is not None and self.subject_regex.fullmatch(text) is not None


@dataclass(frozen=True)
class RouteMatch:
    """The route a subject matched (``None``: no route), and every route tried."""

    route: Route | None
    hits: tuple[RuleHit, ...]


@dataclass(frozen=True)
class RouteTable:
    """The ordered routes; the first match wins."""

    routes: tuple[Route, ...]

    def match(self, subject: str) -> RouteMatch:
        """Find the first route for *subject*, recording the tried routes as rule hits."""
        hits: list[RuleHit] = []
        for route in self.routes:
            if route.matches(subject):
                hits.append(RuleHit(f"route:{route.name}", True, route.action))
                return RouteMatch(route, tuple(hits))
            hits.append(RuleHit(f"route:{route.name}", False, ""))
        return RouteMatch(None, tuple(hits))


def normalize_subject(subject: str) -> str:
    """The subject as routes see it: whitespace-trimmed, line breaks flattened, length-capped."""
    return " ".join(subject[:MAX_SUBJECT_CHARS].splitlines()).strip()


def load_routes(rules_dir: Path) -> RouteTable:
    """Read and validate every ``*.toml`` of *rules_dir*. Raises :class:`RulesError`."""
    if not rules_dir.is_dir():
        raise RulesError([f"{rules_dir}: not a directory"])
    files = sorted(rules_dir.glob("*.toml"))
    if not files:
        raise RulesError([f"{rules_dir}: no *.toml route files"])
    problems: list[str] = []
    routes: list[Route] = []
    for path in files:
        try:
            document = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            problems.append(f"{path}: cannot read: {exc}")
            continue
        routes.extend(routes_from_document(document, str(path), problems))
    names = [r.name for r in routes]
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"{rules_dir}: route name {name!r} is used more than once")
    if problems:
        raise RulesError(problems)
    return RouteTable(tuple(routes))


def routes_from_document(document: dict[str, Any], source: str, problems: list[str]) -> list[Route]:
    """The routes of one parsed TOML document; problems are appended to *problems*."""
    unknown = set(document) - {"route"}
    if unknown:
        problems.append(f"{source}: unknown top-level keys {sorted(unknown)} (expected [[route]])")
    entries = document.get("route", [])
    if not isinstance(entries, list):
        problems.append(f"{source}: 'route' must be an array of tables ([[route]])")
        return []
    routes = []
    for index, entry in enumerate(entries, start=1):
        where = f"{source}: route #{index}"
        route = _route(entry, where, source, problems)
        if route is not None:
            routes.append(route)
    return routes


def _route(entry: Any, where: str, source: str, problems: list[str]) -> Route | None:
    if not isinstance(entry, dict):
        problems.append(f"{where}: must be a table")
        return None
    before = len(problems)
    for key in sorted(set(entry) - _ROUTE_KEYS):
        problems.append(f"{where}: unknown key {key!r}")
    name = entry.get("name")
    if not isinstance(name, str) or not name.strip():
        problems.append(f"{where}: 'name' must be a non-empty string")
    else:
        where = f"{source}: route {name!r}"
    action = entry.get("action")
    if action not in HANDLER_ACTIONS | {LEAVE}:
        allowed = ", ".join(sorted(HANDLER_ACTIONS | {LEAVE}))
        problems.append(f"{where}: 'action' must be one of {allowed} (got {action!r})")
    subject, pattern = entry.get("subject"), entry.get("subject_regex")
    regex: re.Pattern[str] | None = None
    if (subject is None) == (pattern is None):
        problems.append(f"{where}: give exactly one of 'subject' or 'subject_regex'")
    elif subject is not None and (not isinstance(subject, str) or not subject.strip()):
        problems.append(f"{where}: 'subject' must be a non-empty string")
    elif pattern is not None:
        if not isinstance(pattern, str) or not pattern:
            problems.append(f"{where}: 'subject_regex' must be a non-empty string")
        else:
            try:
                regex = re.compile(pattern, re.IGNORECASE)
            except re.error as exc:
                problems.append(f"{where}: 'subject_regex' is not a valid regex: {exc}")
    strip = entry.get("strip_reply_prefixes", False)
    if not isinstance(strip, bool):
        problems.append(f"{where}: 'strip_reply_prefixes' must be true or false")
    if len(problems) > before:
        return None
    return Route(str(name), str(action), source, subject, regex, bool(strip))


def route_names(routes: Sequence[Route]) -> list[str]:
    """Names of *routes*, in order (for reports)."""
    return [r.name for r in routes]
