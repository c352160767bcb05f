"""Reply templates: one UTF-8 text file per key in ``templates/``, strict substitution.

Each key has a declared placeholder set. Loading checks every file against
it: a placeholder the key does not declare, or a declared one the file lacks,
is an error at start, not a silent leftover in a participant's mailbox (the
trap of ``string.Template.safe_substitute``). Rendering demands exactly the
declared values. Placeholders are written ``{name}``; ``{{`` and ``}}`` are
literal braces. One trailing line break of a file is not part of the text.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from mailbot.regulation.decision import Outcome

#: The placeholders each template must use - all of them, and no others.
PLACEHOLDERS: Mapping[Outcome, frozenset[str]] = {
    Outcome.NO_CER: frozenset(),
    Outcome.INVALID_FILES: frozenset(),
    Outcome.INVALID_CERT: frozenset({"serial", "reason"}),
    Outcome.UNKNOWN_CA: frozenset({"serial"}),
    Outcome.SNILS_MISMATCH: frozenset(),
    Outcome.INSTALL_ERROR: frozenset({"error"}),
    Outcome.SUCCESS: frozenset({"subject_cn", "valid_from", "valid_to"}),
    Outcome.UNKNOWN_SUBJECT: frozenset({"subject"}),
    Outcome.UNKNOWN_CA_REJECTED: frozenset({"serial", "reason"}),
    Outcome.EXPIRY_REMINDER: frozenset({"serial", "subject_cn", "valid_to", "days"}),
    Outcome.REVOKED_NOTICE: frozenset({"serial", "subject_cn", "revoked_at", "reason"}),
}
#: Letters not answering a participant's letter need their own subject line
#: (``<key>.subject.txt``, same placeholders as the body, any subset).
OWN_SUBJECT = frozenset({Outcome.EXPIRY_REMINDER, Outcome.REVOKED_NOTICE})
SUBJECT_SUFFIX = ".subject.txt"
TEMPLATE_SUFFIX = ".txt"
#: Dates in replies: ДД.ММ.ГГГГ ЧЧ:ММ:СС.
REPLY_DATE_FORMAT = "%d.%m.%Y %H:%M:%S"


class TemplateError(Exception):
    """A template file is missing or malformed, or a render lacks or adds values."""


@dataclass(frozen=True)
class Templates:
    """The loaded, validated templates, by outcome."""

    texts: Mapping[Outcome, str]
    subjects: Mapping[Outcome, str] = field(default_factory=dict)

    def render_subject(self, outcome: Outcome, values: Mapping[str, str]) -> str:
        """The subject line of a letter of *outcome* that answers no letter."""
        if outcome not in self.subjects:
            raise TemplateError(f"no subject template for {outcome.value!r}")
        self._check_values(outcome, values)
        return " ".join(self.subjects[outcome].format_map(dict(values)).split())

    def _check_values(self, outcome: Outcome, values: Mapping[str, str]) -> None:
        expected = PLACEHOLDERS[outcome]
        if set(values) != expected:
            raise TemplateError(
                f"template {outcome.value!r} takes {sorted(expected)}, given {sorted(values)}"
            )

    def render(self, outcome: Outcome, values: Mapping[str, str]) -> str:
        """The reply text for *outcome*; *values* must match its placeholders exactly."""
        if outcome not in self.texts:
            raise TemplateError(f"no template for {outcome.value!r}")
        self._check_values(outcome, values)
        return self.texts[outcome].format_map({k: str(v) for k, v in values.items()})


def placeholders_of(text: str) -> set[str]:
    """The ``{name}`` fields of *text*. Raises :class:`TemplateError` on anything fancier."""
    found: set[str] = set()
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as exc:  # a lone "{" or "}"
        raise TemplateError(f"bad braces: {exc} (write {{{{ and }}}} for literal braces)") from None
    for _literal, field_name, format_spec, conversion in parsed:
        if field_name is None:
            continue
        if not field_name.isidentifier() or format_spec or conversion:
            raise TemplateError(f"placeholder {{{field_name}}} must be a plain {{name}}")
        found.add(field_name)
    return found


def check_template(outcome: Outcome, text: str) -> list[str]:
    """Problems of one template text (empty list: fine)."""
    try:
        used = placeholders_of(text)
    except TemplateError as exc:
        return [str(exc)]
    expected = PLACEHOLDERS[outcome]
    problems = [f"unknown placeholder {{{n}}}" for n in sorted(used - expected)]
    problems += [f"missing placeholder {{{n}}}" for n in sorted(expected - used)]
    if not text.strip():
        problems.append("empty template")
    return problems


def load_templates(templates_dir: Path) -> Templates:
    """Load and check every template of *templates_dir*. Raises :class:`TemplateError`."""
    problems: list[str] = []
    texts: dict[Outcome, str] = {}
    for outcome in PLACEHOLDERS:
        path = templates_dir / f"{outcome.value}{TEMPLATE_SUFFIX}"
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            problems.append(f"{path}: missing")
            continue
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(f"{path}: cannot read as UTF-8: {exc}")
            continue
        text = text.removesuffix("\n").removesuffix("\r")
        problems += [f"{path}: {p}" for p in check_template(outcome, text)]
        texts[outcome] = text
    subjects: dict[Outcome, str] = {}
    for outcome in OWN_SUBJECT:
        path = templates_dir / f"{outcome.value}{SUBJECT_SUFFIX}"
        try:
            subject = path.read_text(encoding="utf-8").strip()
            used = placeholders_of(subject)
        except FileNotFoundError:
            problems.append(f"{path}: missing")
            continue
        except (OSError, UnicodeDecodeError, TemplateError) as exc:
            problems.append(f"{path}: {exc}")
            continue
        problems += [
            f"{path}: unknown placeholder {{{n}}}" for n in sorted(used - PLACEHOLDERS[outcome])
        ]
        if not subject:
            problems.append(f"{path}: empty template")
        subjects[outcome] = subject
    if problems:
        raise TemplateError("\n".join(problems))
    return Templates(texts, subjects)


def format_reply_datetime(moment: datetime, timezone: str) -> str:
    """A date for a reply, ``ДД.ММ.ГГГГ ЧЧ:ММ:СС`` in *timezone*. Naive datetimes are refused."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("a naive datetime has no defined local time; pass an aware one")
    return moment.astimezone(ZoneInfo(timezone)).strftime(REPLY_DATE_FORMAT)
