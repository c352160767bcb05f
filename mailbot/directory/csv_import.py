"""Import and export of the subscriber directory as CSV.

Columns (header row required; order free; names case-insensitive):

==================== ==========================================================
organisation         organisation name (required)
organisation_code    the organisation's code in the fund's registry
organisation_inn     10-digit INN of the organisation
organisation_ogrn    13-digit OGRN
surname              subscriber's surname
given_names          first name and patronymic
title                position
snils                11 digits, separators allowed; checksum verified
addresses            trusted e-mail addresses separated by ``;`` or spaces
active               ``1``/``0``, ``yes``/``no``, ``да``/``нет`` (default: yes)
==================== ==========================================================

An organisation is matched by code, else by INN, else by exact name; a
subscriber by SNILS within the organisation, else by surname + given names.
The file is UTF-8 (with or without BOM) or CP1251 (what Russian Excel writes),
with ``;`` or ``,`` as separator. The import is all-or-nothing: any bad row
aborts it, and every bad row is reported with its line number.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailbot.directory.models import Organisation, Subscriber
from mailbot.directory.subscribers import (
    DirectoryError,
    add_address,
    add_organisation,
    add_subscriber,
    list_subscribers,
    normalise_address,
)
from mailbot.identifiers import IdentifierError, normalise_inn, normalise_ogrn, normalise_snils

COLUMNS = (
    "organisation",
    "organisation_code",
    "organisation_inn",
    "organisation_ogrn",
    "surname",
    "given_names",
    "title",
    "snils",
    "addresses",
    "active",
)
_TRUE = {"", "1", "yes", "y", "true", "да", "д"}
_FALSE = {"0", "no", "n", "false", "нет", "н"}


@dataclass
class ImportReport:
    """What an import did (or would do, with ``dry_run``)."""

    rows: int = 0
    organisations_created: int = 0
    subscribers_created: int = 0
    subscribers_updated: int = 0
    addresses_added: int = 0
    errors: list[str] = field(default_factory=list)
    encoding: str = "utf-8"


class CsvImportError(Exception):
    """The file cannot be imported; ``report.errors`` lists every bad row."""

    def __init__(self, report: ImportReport) -> None:
        super().__init__("\n".join(report.errors))
        self.report = report


def decode_csv(data: bytes) -> tuple[str, str]:
    """The text of a CSV file and its encoding (UTF-8 first, then CP1251)."""
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8"), "utf-8-sig"
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return data.decode("cp1251"), "cp1251"


@dataclass(frozen=True)
class _Row:
    line: int
    organisation: str
    organisation_code: str | None
    organisation_inn: str | None
    organisation_ogrn: str | None
    surname: str | None
    given_names: str | None
    title: str | None
    snils: str | None
    addresses: tuple[str, ...]
    active: bool


def _parse_rows(text: str, report: ImportReport) -> list[_Row]:
    sample = text[:4096]
    delimiter = ";" if sample.count(";") >= sample.count(",") else ","
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    if reader.fieldnames is None:
        report.errors.append("line 1: the file is empty")
        return []
    header = [name.strip().lower() for name in reader.fieldnames]
    unknown = [name for name in header if name not in COLUMNS]
    if unknown:
        report.errors.append(f"line 1: unknown column(s): {', '.join(unknown)}")
    if "organisation" not in header:
        report.errors.append("line 1: the column 'organisation' is required")
    if report.errors:
        return []
    reader.fieldnames = header
    rows = []
    for record in reader:
        report.rows += 1
        line = reader.line_num
        values = {k: (v or "").strip() for k, v in record.items() if k is not None}
        if None in record:
            report.errors.append(f"line {line}: more fields than columns")
            continue
        problems = []
        try:
            snils = normalise_snils(values["snils"]) if values.get("snils") else None
        except IdentifierError as exc:
            problems.append(str(exc))
            snils = None
        try:
            inn = (
                normalise_inn(values["organisation_inn"])
                if values.get("organisation_inn")
                else None
            )
        except IdentifierError as exc:
            problems.append(str(exc))
            inn = None
        try:
            ogrn = (
                normalise_ogrn(values["organisation_ogrn"])
                if values.get("organisation_ogrn")
                else None
            )
        except IdentifierError as exc:
            problems.append(str(exc))
            ogrn = None
        addresses = []
        for address in values.get("addresses", "").replace(";", " ").replace(",", " ").split():
            try:
                addresses.append(normalise_address(address))
            except DirectoryError as exc:
                problems.append(str(exc))
        active_text = values.get("active", "").lower()
        if active_text not in _TRUE | _FALSE:
            problems.append(f"active must be yes or no, got {values.get('active')!r}")
        if not values.get("organisation"):
            problems.append("organisation is empty")
        if not (values.get("surname") or snils):
            problems.append("a subscriber needs a surname or a SNILS")
        if problems:
            report.errors.extend(f"line {line}: {p}" for p in problems)
            continue
        rows.append(
            _Row(
                line=line,
                organisation=values["organisation"],
                organisation_code=values.get("organisation_code") or None,
                organisation_inn=inn,
                organisation_ogrn=ogrn,
                surname=values.get("surname") or None,
                given_names=values.get("given_names") or None,
                title=values.get("title") or None,
                snils=snils,
                addresses=tuple(addresses),
                active=active_text in _TRUE,
            )
        )
    return rows


def _find_organisation(session: Session, row: _Row) -> Organisation | None:
    if row.organisation_code:
        found = session.scalar(
            select(Organisation).where(Organisation.registry_code == row.organisation_code)
        )
        if found is not None:
            return found
    if row.organisation_inn:
        found = session.scalar(select(Organisation).where(Organisation.inn == row.organisation_inn))
        if found is not None:
            return found
    return session.scalar(select(Organisation).where(Organisation.name == row.organisation))


def _find_subscriber(session: Session, organisation_id: int, row: _Row) -> Subscriber | None:
    query = select(Subscriber).where(Subscriber.organisation_id == organisation_id)
    if row.snils:
        found = session.scalar(query.where(Subscriber.snils == row.snils))
        if found is not None:
            return found
    if row.surname:
        return session.scalar(
            query.where(
                Subscriber.surname == row.surname, Subscriber.given_names == row.given_names
            )
        )
    return None


def import_csv(session: Session, data: bytes) -> ImportReport:
    """Apply a CSV file to the directory inside *session* (the caller commits or rolls back).

    Raises :class:`CsvImportError` when any row is bad; nothing should be committed then.
    """
    text, encoding = decode_csv(data)
    report = ImportReport(encoding=encoding)
    rows = _parse_rows(text, report)
    if report.errors:
        raise CsvImportError(report)
    for row in rows:
        try:
            organisation = _find_organisation(session, row)
            if organisation is None:
                organisation = add_organisation(
                    session,
                    row.organisation,
                    inn=row.organisation_inn,
                    ogrn=row.organisation_ogrn,
                    registry_code=row.organisation_code,
                )
                report.organisations_created += 1
            subscriber = _find_subscriber(session, organisation.id, row)
            if subscriber is None:
                subscriber = add_subscriber(
                    session,
                    organisation.id,
                    surname=row.surname,
                    given_names=row.given_names,
                    title=row.title,
                    snils=row.snils,
                    active=row.active,
                )
                report.subscribers_created += 1
            else:
                for name in ("surname", "given_names", "title", "snils"):
                    value = getattr(row, name)
                    if value:
                        setattr(subscriber, name, value)
                subscriber.active = row.active
                report.subscribers_updated += 1
            known = {a.address for a in subscriber.addresses if a.active}
            for address in row.addresses:
                if address not in known:
                    add_address(session, subscriber.id, address)
                    report.addresses_added += 1
        except (DirectoryError, IdentifierError) as exc:
            report.errors.append(f"line {row.line}: {exc}")
    if report.errors:
        raise CsvImportError(report)
    return report


def export_rows(session: Session) -> list[dict[str, str]]:
    """The directory as rows with :data:`COLUMNS` (importable again)."""
    rows = []
    for subscriber in list_subscribers(session):
        organisation = subscriber.organisation
        rows.append(
            {
                "organisation": organisation.name,
                "organisation_code": organisation.registry_code or "",
                "organisation_inn": organisation.inn or "",
                "organisation_ogrn": organisation.ogrn or "",
                "surname": subscriber.surname or "",
                "given_names": subscriber.given_names or "",
                "title": subscriber.title or "",
                "snils": subscriber.snils or "",
                "addresses": ";".join(a.address for a in subscriber.addresses if a.active),
                "active": "yes" if subscriber.active else "no",
            }
        )
    return rows
