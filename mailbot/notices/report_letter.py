"""The periodic report letter to the administrators: its text and its CSV journal.

The application layer (:mod:`mailbot.app.report`) gathers what happened in a
period into :class:`ReportContents`; this module writes it with the templates
``templates/alerts/report*.txt`` and the phrases ``[report_titles]``,
``[report_outcomes]`` and ``[report_columns]`` of ``templates/phrases.toml``,
and builds the letter like an alert (:func:`mailbot.notices.alerts.build_alert_letter`).

The journal goes along as a CSV file for Excel: UTF-8 with a byte order mark
(without one Russian Excel reads it as CP1251), ``;`` between fields (what
Excel expects where the decimal separator is a comma), CRLF line ends. Senders
and subjects are a stranger's bytes: a field that Excel would take for a
formula is prefixed with ``'``.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Protocol, TypeVar

from mailbot.config import Config
from mailbot.dates import format_reply_datetime
from mailbot.directory.models import (
    CertificateRecord,
    LetterRecord,
    OutboxMessage,
    QuarantinedCertificate,
)
from mailbot.display import spreadsheet_cell
from mailbot.log import mask_identifier
from mailbot.notices.alerts import Attachment, build_alert_letter
from mailbot.notices.certificate_alerts import alert_texts, config_hint
from mailbot.notices.crl_alerts import WaitingLetter, duration_text
from mailbot.notices.templates import AlertTemplates, render_phrase

#: Each list of the letter shows at most this many entries, then "... and N more".
MAX_LISTED = 50
#: An outbox error or a sender is cut to this many characters in the letter.
MAX_FIELD_CHARS = 300
#: The outcome phrase of a journal row that has none yet.
PROCESSING = "processing"
CSV_MIME = "text/csv"
_T = TypeVar("_T")
_CSV_COLUMNS = ("id", "received", "sender", "subject", "outcome", "message_id")


class StaleCrl(Protocol):
    """A CA without a current CRL (:class:`mailbot.app.crl_status.CaCrl`)."""

    @property
    def ca_name(self) -> str: ...
    @property
    def this_update(self) -> dt.datetime | None: ...
    @property
    def next_update(self) -> dt.datetime | None: ...


@dataclass(frozen=True)
class ReportContents:
    """Everything one report says, as gathered by :mod:`mailbot.app.report`."""

    #: ``weekly`` or ``daily``.
    kind: str
    first_day: dt.date
    last_day: dt.date
    #: The period's journal, oldest first (the CSV's rows).
    letters: Sequence[LetterRecord]
    #: ``(outcome key or "processing", count)``, most frequent first.
    outcomes: Sequence[tuple[str, int]]
    #: ``(sender, rejected letters)``, most first (at most ten).
    senders: Sequence[tuple[str, int]]
    #: Pending quarantined certificates, oldest first.
    quarantine: Sequence[QuarantinedCertificate]
    #: Letters waiting for a CRL, oldest first.
    deferred: Sequence[WaitingLetter]
    expiring_days: int
    #: Valid certificates expiring within ``expiring_days``, soonest first, owners loaded.
    certificates: Sequence[CertificateRecord]
    crls: Sequence[StaleCrl]
    #: Letters of the period the SMTP server refused for good, and the newest of them.
    outbox_failed: int
    outbox_errors: Sequence[OutboxMessage]


@dataclass(frozen=True)
class ReportLetter:
    """The rendered report: subject and body as queued, the CSV attachment."""

    subject: str
    body: str
    attachment: Attachment

    def message(self, config: Config, now: dt.datetime) -> EmailMessage:
        """The letter to ``admin.alert_addresses``, built like every alert."""
        return build_alert_letter(config, self.subject, self.body, [self.attachment], now)


def render_report(config: Config, contents: ReportContents, now: dt.datetime) -> ReportLetter:
    """Write *contents* with the report templates; ages are counted to *now*."""
    texts = alert_texts(config)
    zone = config.general.timezone
    phrases = texts.phrases
    title = render_phrase(phrases, "report_titles", contents.kind, {})
    period = _period(texts, contents, zone)
    total = len(contents.letters)
    attachment = _csv_attachment(texts, contents, zone)

    def listed(items: Sequence[_T], line: Callable[[_T], str]) -> str:
        return _listed(texts, items, line)

    def outcome(item: tuple[str, int]) -> str:
        key, count = item
        return texts.render("report.outcome", {"outcome": outcome_text(texts, key), "count": count})

    def sender(item: tuple[str, int]) -> str:
        address, count = item
        return texts.render("report.sender", {"sender": _field(address), "count": count})

    def quarantined(row: QuarantinedCertificate) -> str:
        return texts.render("report.quarantine", {
            "id": row.id, "serial": row.serial, "sender": _field(row.sender),
            "age": duration_text(texts, now - row.created_at),
        })  # fmt: skip

    def deferred(letter: WaitingLetter) -> str:
        return texts.render("report.deferred", {
            "id": letter.id, "sender": _field(letter.sender or "-"),
            "ca": letter.ca_name or "?", "age": duration_text(texts, letter.waited(now)),
        })  # fmt: skip

    def outbox_error(row: OutboxMessage) -> str:
        return texts.render("report.outbox_error", {
            "when": format_reply_datetime(row.created_at, zone),
            "kind": row.kind,
            "recipients": _field(", ".join(str(r) for r in row.recipients) or "-"),
            "error": _field(row.last_error or "-"),
        })  # fmt: skip

    values = {
        "title": title,
        "period": period,
        "timezone": zone,
        "attachment": attachment[0],
        "total": total,
        "outcomes": listed(contents.outcomes, outcome),
        "senders": listed(contents.senders, sender),
        "quarantine_count": len(contents.quarantine),
        "quarantine": listed(contents.quarantine, quarantined),
        "deferred_count": len(contents.deferred),
        "deferred": listed(contents.deferred, deferred),
        "expiring_days": contents.expiring_days,
        "certificates_count": len(contents.certificates),
        "certificates": listed(contents.certificates, lambda r: _certificate(texts, r, zone)),
        "crls": listed(contents.crls, lambda crl: _crl(texts, crl, zone)),
        "outbox_failed": contents.outbox_failed,
        "outbox_errors": listed(contents.outbox_errors, outbox_error),
        "config": config_hint(config),
    }
    body = texts.render("report", values) + "\n"
    subject = texts.subject("report", {"title": title, "period": period, "total": total})
    return ReportLetter(subject, body, attachment)


def outcome_text(texts: AlertTemplates, key: str) -> str:
    """The ``[report_outcomes]`` phrase of a journal outcome; an unknown one stays a key."""
    section = texts.phrases.get("report_outcomes", {})
    return section.get(key, key)


def journal_csv(texts: AlertTemplates, letters: Sequence[LetterRecord], timezone: str) -> bytes:
    """The journal rows as a CSV file for Excel (see the module's docstring)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
    writer.writerow([render_phrase(texts.phrases, "report_columns", c, {}) for c in _CSV_COLUMNS])
    for letter in letters:
        writer.writerow(
            [
                str(letter.id),
                format_reply_datetime(letter.received_at, timezone),
                spreadsheet_cell(letter.sender or ""),
                spreadsheet_cell(letter.subject or ""),
                outcome_text(texts, letter.outcome or PROCESSING),
                spreadsheet_cell(letter.message_id or ""),
            ]
        )
    return buffer.getvalue().encode("utf-8-sig")


def _csv_attachment(texts: AlertTemplates, contents: ReportContents, zone: str) -> Attachment:
    name = f"mailbot-journal-{contents.first_day.isoformat()}"
    if contents.last_day != contents.first_day:
        name += f"-{contents.last_day.isoformat()}"
    return f"{name}.csv", journal_csv(texts, contents.letters, zone), CSV_MIME


def _period(texts: AlertTemplates, contents: ReportContents, zone: str) -> str:
    first, last = f"{contents.first_day:%d.%m.%Y}", f"{contents.last_day:%d.%m.%Y}"
    if first == last:
        return texts.render("report.period_day", {"day": first})
    return texts.render("report.period", {"first": first, "last": last})


def _certificate(texts: AlertTemplates, row: CertificateRecord, zone: str) -> str:
    subscriber = row.subscriber
    owner = " ".join(p for p in (subscriber.surname, subscriber.given_names) if p)
    snils = row.snils or subscriber.snils
    return texts.render(
        "report.certificate",
        {
            "id": row.id,
            "owner": owner or row.subject_cn or "?",
            # The letter leaves the server: the last two digits tell people apart.
            "snils": mask_identifier(snils) if snils else "-",
            "serial": row.serial,
            "valid_to": format_reply_datetime(row.not_after, zone),
        },
    )


def _crl(texts: AlertTemplates, crl: StaleCrl, zone: str) -> str:
    if crl.this_update is None:
        return texts.render("report.crl_missing", {"ca": crl.ca_name})
    return texts.render(
        "report.crl_expired",
        {
            "ca": crl.ca_name,
            "this_update": format_reply_datetime(crl.this_update, zone),
            "next_update": (
                format_reply_datetime(crl.next_update, zone) if crl.next_update else "?"
            ),
        },
    )


def _listed(texts: AlertTemplates, items: Sequence[_T], line: Callable[[_T], str]) -> str:
    """The first :data:`MAX_LISTED` *items* a line each, then how many more; ``none`` for none."""
    if not items:
        return texts.render("report.none", {})
    shown = [line(item) for item in items[:MAX_LISTED]]
    if len(items) > MAX_LISTED:
        shown.append(texts.render("report.more", {"count": len(items) - MAX_LISTED}))
    return "\n".join(shown)


def _field(text: str) -> str:
    """A stranger's text on one line of the letter, cut to :data:`MAX_FIELD_CHARS`."""
    one_line = " ".join(text.split())
    if len(one_line) <= MAX_FIELD_CHARS:
        return one_line
    return one_line[:MAX_FIELD_CHARS] + "…"
