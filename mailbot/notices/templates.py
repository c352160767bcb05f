"""Templates: one UTF-8 text file per key in ``templates/``, strict substitution.

Replies and notices to participants are ``templates/<outcome>.txt``; the
administrators' alerts are ``templates/alerts/<name>.txt`` (the body of an
alert kind, its ``<kind>.subject``, and fragments such as one line of a list,
``<kind>.item``). Each key has a declared placeholder set. Loading checks every file against
it: a placeholder the key does not declare, or a declared one the file lacks,
is an error at start, not a silent leftover in a participant's mailbox (the
trap of ``string.Template.safe_substitute``). Rendering demands exactly the
declared values. Placeholders are written ``{name}``; ``{{`` and ``}}`` are
literal braces. One trailing line break of a file is not part of the text.

Short phrases put into those texts (why a certificate is invalid, a CRL's
revocation reason) live in one file, ``templates/phrases.toml``: a section per
kind, a key per phrase. The code hands over the *key* (a rule's reason, an
RFC 5280 reason name); :meth:`Templates.render` puts the phrase in its place.
Every declared key must be there, no other, each a non-empty string. A phrase
that takes values (:data:`PHRASE_PLACEHOLDERS`, e.g. why an install failed)
must use exactly its declared placeholders, like a template file.
"""

from __future__ import annotations

import string
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from mailbot.regulation.decision import Outcome

_Key = TypeVar("_Key", bound=str)

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
#: Letters mailbot sends on its own initiative: never a journaled letter's outcome.
OWN_INITIATIVE = OWN_SUBJECT | {Outcome.UNKNOWN_CA_REJECTED}
SUBJECT_SUFFIX = ".subject.txt"
TEMPLATE_SUFFIX = ".txt"
#: Alert templates (``templates/alerts/<name>.txt``) and their placeholders - all, no others.
#: A list of variable length is one placeholder filled with lines rendered from a fragment.
ALERT_DIR = "alerts"
_CERTIFICATE = frozenset(
    {"serial", "owner", "snils", "issuer", "aki", "valid_from", "valid_to", "thumbprint"}
)
#: A CA key as the list of accredited CAs describes it, with the list's version and date.
_LISTED_CA = frozenset(
    {"name", "status", "status_since", "registry_number", "inn", "ogrn", "version", "date"}
)
ALERT_PLACEHOLDERS: Mapping[str, frozenset[str]] = {
    # One participant's certificate, as quoted in several alerts.
    "certificate": _CERTIFICATE,
    "forgery": frozenset(
        {"letter_id", "sender", "sender_address", "detail", "certificate", "config"}
    ),
    "forgery.subject": frozenset({"serial"}),
    "forgery.no_sender": frozenset(),
    "install_error": frozenset(
        {"error_lines", "store", "command", "letter_id", "sender", "certificate", "config"}
    ),
    "install_error.subject": frozenset({"error"}),
    "install_error.error": frozenset({"error"}),
    "install_error.detail": frozenset({"detail"}),
    "install_error.no_command": frozenset(),
    "unknown_ca": frozenset(
        {"issuer_dn", "aki", "aia", "count", "certificates", "accreditation", "config"}
    ),
    "unknown_ca.subject": frozenset({"issuer", "count"}),
    "unknown_ca.item": frozenset({"id", "serial", "owner", "sender", "received", "attachment"}),
    "unknown_ca.missing_file": frozenset({"path"}),
    "unknown_ca.no_aki": frozenset(),
    "unknown_ca.no_aia": frozenset(),
    # What the list of accredited CAs says about the key: {accreditation} above.
    "unknown_ca.list_none": frozenset({"config"}),
    "unknown_ca.list_no_aki": frozenset({"version", "date"}),
    "unknown_ca.list_absent": frozenset({"version", "date"}),
    "unknown_ca.list_accredited": _LISTED_CA,
    "unknown_ca.list_listed": _LISTED_CA,
    "unknown_ca.list_gone": _LISTED_CA | {"listed_version", "listed_date"},
    "reply_cap": frozenset({"sender", "day", "cap", "config"}),
    "reply_cap.subject": frozenset({"sender"}),
    "poison_letter": frozenset({"letter_id", "starts", "failed_folder", "mailbox"}),
    "poison_letter.subject": frozenset({"letter_id"}),
    "crl_unavailable": frozenset(
        {"ca_name", "ca_key", "policy", "retry_minutes", "count", "oldest_wait"}
        | {"oldest_since", "letters", "urls", "last_try", "errors", "drop_dir"}
    ),
    "crl_unavailable.subject": frozenset({"ca", "count"}),
    "crl_unavailable.letter": frozenset({"id", "sender", "waited"}),
    "crl_unavailable.more": frozenset({"count"}),
    "crl_unavailable.error": frozenset({"error"}),
    "crl_unavailable.no_urls": frozenset(),
    "crl_unavailable.never": frozenset(),
    "crl_unavailable.duration": frozenset({"hours", "minutes"}),
    "crl_unavailable.duration_days": frozenset({"days", "hours", "minutes"}),
    "certificate_revoked": frozenset(
        {"crl_number", "ca_name", "this_update", "source", "count", "certificates"}
    ),
    "certificate_revoked.subject": frozenset({"ca_name", "count"}),
    "certificate_revoked.item": frozenset(
        {"serial", "owner", "subscriber_id", "revoked_at", "reason", "notice"}
    ),
    "certificate_revoked.notified": frozenset({"addresses"}),
    "certificate_revoked.not_notified": frozenset(),
    "outbox_failed": frozenset(
        {"kind", "recipients", "message_id", "outbox_id", "letter_id", "error"}
    ),
    "outbox_failed.subject": frozenset({"recipients"}),
    "smtp_auth_failed": frozenset({"host", "port", "tls", "user", "error"}),
    "smtp_auth_failed.subject": frozenset(),
    # The list of accredited CAs: keys it no longer vouches for; a download that failed.
    "trust_list_flags": frozenset({"version", "published", "count", "keys", "config"}),
    "trust_list_flags.subject": frozenset({"version", "count"}),
    "trust_list_flags.item": frozenset(
        {"id", "name", "ski", "source", "reason", "listed_name", "registry_number", "status"}
    ),
    "trust_list_flags.key_gone": frozenset(),
    "trust_list_flags.accreditation_lost": frozenset(),
    "trust_list_unavailable": frozenset({"url", "error", "current", "config"}),
    "trust_list_unavailable.subject": frozenset(),
    "trust_list_unavailable.none": frozenset(),
    # The periodic report (not an alert, but a letter to the same people).
    "report": frozenset(
        {"title", "period", "timezone", "attachment", "total", "outcomes", "senders"}
        | {"quarantine_count", "quarantine", "deferred_count", "deferred", "expiring_days"}
        | {"certificates_count", "certificates", "crls", "outbox_failed", "outbox_errors"}
        | {"config"}
    ),
    "report.subject": frozenset({"title", "period", "total"}),
    "report.period": frozenset({"first", "last"}),
    "report.period_day": frozenset({"day"}),
    "report.outcome": frozenset({"outcome", "count"}),
    "report.sender": frozenset({"sender", "count"}),
    "report.quarantine": frozenset({"id", "serial", "sender", "age"}),
    "report.deferred": frozenset({"id", "sender", "ca", "age"}),
    "report.certificate": frozenset({"id", "owner", "snils", "serial", "valid_to"}),
    "report.crl_missing": frozenset({"ca"}),
    "report.crl_expired": frozenset({"ca", "this_update", "next_update"}),
    "report.outbox_error": frozenset({"when", "kind", "recipients", "error"}),
    "report.more": frozenset({"count"}),
    "report.none": frozenset(),
}


#: ``templates/phrases.toml``: its sections and the keys each must have - all, no others.
PHRASES_FILE = "phrases.toml"
PHRASES: Mapping[str, frozenset[str]] = {
    # A certificate's rule-level reason (mailbot.pki.validation.Reason) and the CRL policy.
    "invalid_cert_reasons": frozenset(
        {"expired", "not_yet_valid", "invalid_public_key", "revoked"}
        | {"bad_ca_signature", "ca_not_usable", "ca_not_accredited", "crl_unavailable"}
    ),
    # RFC 5280 reason names (mailbot.pki.crl.REASON_NAMES).
    "revocation_reasons": frozenset(
        {"unspecified", "keyCompromise", "cACompromise", "affiliationChanged", "superseded"}
        | {"cessationOfOperation", "certificateHold", "removeFromCRL", "privilegeWithdrawn"}
        | {"aACompromise"}
    ),
    "revoked_notice": frozenset({"unknown_date"}),
    # Why a certificate could not be installed (mailbot.directory.certstore.InstallError.key).
    "install_errors": frozenset(
        {"write_failed", "command_not_found", "command_timeout", "command_not_started"}
        | {"command_failed", "command_output", "taken_by_other", "no_subscriber"}
    ),
    # The operating system's error behind write_failed / command_not_started
    # (mailbot.directory.certstore.os_error_key); ``other`` for any errno not listed.
    "install_os_errors": frozenset(
        {"no_permission", "no_space", "quota", "read_only", "no_folder", "file_in_way"}
        | {"folder_in_way", "io_error", "other"}
    ),
    # The periodic report's title, by ``report.period``.
    "report_titles": frozenset({"weekly", "daily"}),
    # A journal outcome in the report and its CSV: the letters' verdicts, the
    # journal's own words (leave, deferred, failed) and ``processing`` (no outcome yet).
    "report_outcomes": frozenset(
        {o.value for o in Outcome} - {o.value for o in OWN_INITIATIVE}
        | {"leave", "deferred", "failed", "processing"}
    ),
    # The column headers of the report's CSV journal.
    "report_columns": frozenset({"id", "received", "sender", "subject", "outcome", "message_id"}),
}
#: Placeholders of the phrases that take values, by section and key - all, no others.
#: A phrase of a section not listed here takes none and is written as it stands.
PHRASE_PLACEHOLDERS: Mapping[str, Mapping[str, frozenset[str]]] = {
    "install_errors": {
        "write_failed": frozenset({"reason"}),
        "command_not_found": frozenset({"command"}),
        "command_timeout": frozenset({"seconds"}),
        "command_not_started": frozenset({"reason"}),
        "command_failed": frozenset({"code"}),
        # The install command's own words, passed on as they are.
        "command_output": frozenset({"output"}),
        "taken_by_other": frozenset(),
        "no_subscriber": frozenset(),
    },
    "install_os_errors": {
        key: frozenset({"code"}) if key == "other" else frozenset()
        for key in PHRASES["install_os_errors"]
    },
}
#: An ``install_errors`` value naming an ``install_os_errors`` phrase: the errno's
#: phrase key, or its name (``ELOOP``) when there is none - then ``other`` says it.
OS_ERROR_VALUE = "reason"
#: Placeholders whose value is a phrase key, by outcome: placeholder -> phrases section.
PHRASE_VALUES: Mapping[Outcome, Mapping[str, str]] = {
    Outcome.INVALID_CERT: {"reason": "invalid_cert_reasons"},
    Outcome.REVOKED_NOTICE: {"reason": "revocation_reasons"},
}


class TemplateError(Exception):
    """A template file is missing or malformed, or a render lacks or adds values."""


def render_phrase(
    phrases: Mapping[str, Mapping[str, str]], section: str, key: str, values: Mapping[str, str]
) -> str:
    """Phrase *key* of *section* with *values*, which must match its placeholders exactly."""
    try:
        text = phrases[section][key]
    except KeyError:
        raise TemplateError(f"no phrase {key!r} in [{section}] of {PHRASES_FILE}") from None
    expected = PHRASE_PLACEHOLDERS.get(section, {}).get(key, frozenset())
    if set(values) != expected:
        raise TemplateError(
            f"phrase {section}.{key} takes {sorted(expected)}, given {sorted(values)}"
        )
    return text.format_map(values) if section in PHRASE_PLACEHOLDERS else text


def install_error_text(
    phrases: Mapping[str, Mapping[str, str]], key: str, values: Mapping[str, str]
) -> str:
    """The ``install_errors`` phrase *key*, its ``reason`` an ``install_os_errors`` phrase."""
    resolved = dict(values)
    takes_os_error = OS_ERROR_VALUE in PHRASE_PLACEHOLDERS["install_errors"].get(key, ())
    if takes_os_error and OS_ERROR_VALUE in resolved:
        reason = resolved[OS_ERROR_VALUE]
        if reason in PHRASES["install_os_errors"] and reason != "other":
            resolved[OS_ERROR_VALUE] = render_phrase(phrases, "install_os_errors", reason, {})
        else:
            resolved[OS_ERROR_VALUE] = render_phrase(
                phrases, "install_os_errors", "other", {"code": reason}
            )
    return render_phrase(phrases, "install_errors", key, resolved)


@dataclass(frozen=True)
class Templates:
    """The loaded, validated templates, by outcome."""

    texts: Mapping[Outcome, str]
    subjects: Mapping[Outcome, str] = field(default_factory=dict)
    #: The alert templates and the phrases of ``phrases.toml`` loaded with them.
    alerts: AlertTemplates = field(default_factory=lambda: AlertTemplates({}))

    @property
    def phrases(self) -> Mapping[str, Mapping[str, str]]:
        """The phrases of ``phrases.toml``, by section and key (see :data:`PHRASES`)."""
        return self.alerts.phrases

    def phrase(self, section: str, key: str) -> str:
        """The phrase *key* of *section* (no placeholders); raises :class:`TemplateError`."""
        return render_phrase(self.phrases, section, key, {})

    def resolve(self, outcome: Outcome, values: Mapping[str, str]) -> dict[str, str]:
        """*values* with every phrase key (see :data:`PHRASE_VALUES`) replaced by its phrase."""
        resolved = {k: str(v) for k, v in values.items()}
        for name, section in PHRASE_VALUES.get(outcome, {}).items():
            if name in resolved:
                resolved[name] = self.phrase(section, resolved[name])
        return resolved

    def render_subject(self, outcome: Outcome, values: Mapping[str, str]) -> str:
        """The subject line of a letter of *outcome* that answers no letter."""
        if outcome not in self.subjects:
            raise TemplateError(f"no subject template for {outcome.value!r}")
        self._check_values(outcome, values)
        return " ".join(self.subjects[outcome].format_map(self.resolve(outcome, values)).split())

    def _check_values(self, outcome: Outcome, values: Mapping[str, str]) -> None:
        expected = PLACEHOLDERS[outcome]
        if set(values) != expected:
            raise TemplateError(
                f"template {outcome.value!r} takes {sorted(expected)}, given {sorted(values)}"
            )

    def render(self, outcome: Outcome, values: Mapping[str, str]) -> str:
        """The reply text for *outcome*; *values* must match its placeholders exactly.

        A value listed in :data:`PHRASE_VALUES` is a phrase key; its phrase is written.
        """
        if outcome not in self.texts:
            raise TemplateError(f"no template for {outcome.value!r}")
        self._check_values(outcome, values)
        return self.texts[outcome].format_map(self.resolve(outcome, values))


@dataclass(frozen=True)
class AlertTemplates:
    """The loaded, validated alert templates, by name (see :data:`ALERT_PLACEHOLDERS`)."""

    texts: Mapping[str, str]
    #: The phrases of ``phrases.toml`` (see :data:`PHRASES`), for the texts alerts quote.
    phrases: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    def install_error(self, key: str, values: Mapping[str, str]) -> str:
        """The text of an install failure (see :func:`install_error_text`)."""
        return install_error_text(self.phrases, key, values)

    def render(self, name: str, values: Mapping[str, object]) -> str:
        """The text of *name*; *values* must match its placeholders exactly."""
        if name not in self.texts:
            raise TemplateError(f"no alert template {name!r}")
        expected = ALERT_PLACEHOLDERS[name]
        if set(values) != expected:
            raise TemplateError(
                f"alert template {name!r} takes {sorted(expected)}, given {sorted(values)}"
            )
        return self.texts[name].format_map({k: str(v) for k, v in values.items()})

    def subject(self, kind: str, values: Mapping[str, object]) -> str:
        """The subject line of an alert of *kind* (``<kind>.subject``), on one line."""
        return " ".join(self.render(f"{kind}.subject", values).split())


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
    return check_text(text, PLACEHOLDERS[outcome])


def check_text(text: str, expected: frozenset[str]) -> list[str]:
    """Problems of a template text that must use exactly the *expected* placeholders."""
    try:
        used = placeholders_of(text)
    except TemplateError as exc:
        return [str(exc)]
    problems = [f"unknown placeholder {{{n}}}" for n in sorted(used - expected)]
    problems += [f"missing placeholder {{{n}}}" for n in sorted(expected - used)]
    if not text.strip():
        problems.append("empty template")
    return problems


def load_templates(templates_dir: Path) -> Templates:
    """Load and check every template of *templates_dir*. Raises :class:`TemplateError`."""
    problems: list[str] = []
    texts = _load_texts(templates_dir, PLACEHOLDERS, problems)
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
    alerts = _load_alerts(templates_dir, problems)
    if problems:
        raise TemplateError("\n".join(problems))
    _ALERTS[templates_dir.resolve()] = alerts
    return Templates(texts, subjects, alerts)


def alert_templates(templates_dir: Path) -> AlertTemplates:
    """The alert templates of *templates_dir*: as loaded at start, else loaded (and checked) now.

    Alerts are raised deep in the daemon (the outbox, the scheduler) where no
    :class:`Templates` is at hand; :func:`load_templates` at start fills this
    cache, so an edit takes effect at the next start, as for reply texts.
    Raises :class:`TemplateError`.
    """
    key = templates_dir.resolve()
    cached = _ALERTS.get(key)
    if cached is None:
        problems: list[str] = []
        cached = _load_alerts(templates_dir, problems)
        if problems:
            raise TemplateError("\n".join(problems))
        _ALERTS[key] = cached
    return cached


#: Alert templates by resolved templates folder (see :func:`alert_templates`).
_ALERTS: dict[Path, AlertTemplates] = {}


def _load_alerts(templates_dir: Path, problems: list[str]) -> AlertTemplates:
    return AlertTemplates(
        _load_texts(templates_dir / ALERT_DIR, ALERT_PLACEHOLDERS, problems),
        _load_phrases(templates_dir / PHRASES_FILE, problems),
    )


def _load_texts(
    folder: Path, placeholders: Mapping[_Key, frozenset[str]], problems: list[str]
) -> dict[_Key, str]:
    """``<name>.txt`` of *folder* for every declared name, checked; problems are appended."""
    texts: dict[_Key, str] = {}
    for name, expected in placeholders.items():
        path = folder / f"{name}{TEMPLATE_SUFFIX}"
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            problems.append(f"{path}: missing")
            continue
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(f"{path}: cannot read as UTF-8: {exc}")
            continue
        text = text.removesuffix("\n").removesuffix("\r")
        problems += [f"{path}: {p}" for p in check_text(text, expected)]
        texts[name] = text
    return texts


def _load_phrases(path: Path, problems: list[str]) -> dict[str, dict[str, str]]:
    """The sections of *path* (see :data:`PHRASES`), checked; problems are appended."""
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        problems.append(f"{path}: missing")
        return {}
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        problems.append(f"{path}: cannot read as UTF-8 TOML: {exc}")
        return {}
    unknown = sorted(set(document) - set(PHRASES))
    problems += [f"{path}: unknown section [{name}]" for name in unknown]
    phrases: dict[str, dict[str, str]] = {}
    for section, expected in PHRASES.items():
        table = document.get(section)
        if not isinstance(table, dict):
            problems.append(f"{path}: missing section [{section}]")
            continue
        problems += [f"{path}: unknown phrase {section}.{k}" for k in sorted(set(table) - expected)]
        problems += [f"{path}: missing phrase {section}.{k}" for k in sorted(expected - set(table))]
        declared = PHRASE_PLACEHOLDERS.get(section)
        for key in sorted(expected & set(table)):
            value = table[key]
            if not isinstance(value, str) or not value.strip():
                problems.append(f"{path}: phrase {section}.{key} must be a non-empty string")
            elif declared is not None:
                problems += [
                    f"{path}: phrase {section}.{key}: {p}" for p in check_text(value, declared[key])
                ]
        phrases[section] = {k: v for k, v in table.items() if isinstance(v, str)}
    return phrases
