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

The file is streamed, never held whole in memory: one pass checks every row,
a second applies them through :class:`~mailbot.directory.bulk_load.DirectoryLoader`
(lookups in preloaded dicts, inserts and updates in chunks).
"""

from __future__ import annotations

import codecs
import csv
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.orm import Session

from mailbot.directory.bulk_load import DirectoryLoader, DirectoryRow
from mailbot.directory.subscribers import DirectoryError, list_subscribers, normalise_address
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
#: Rows resolved in memory before their changes are written with one executemany per table.
CHUNK_ROWS = 2_000
#: Rows between two progress reports.
PROGRESS_EVERY = 10_000
#: Bytes read at a time while checking the file's encoding.
_READ_BYTES = 1 << 20

#: ``progress(rows_done, rows_total)``, called every :data:`PROGRESS_EVERY` rows written.
Progress = Callable[[int, int], None]


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


def _decodes_as(path: Path, encoding: str) -> bool:
    """Whether the whole file is text in *encoding* (read in pieces, nothing kept)."""
    decoder = codecs.getincrementaldecoder(encoding)()
    try:
        with path.open("rb") as stream:
            while piece := stream.read(_READ_BYTES):
                decoder.decode(piece)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def detect_encoding(path: Path) -> str | None:
    """``utf-8-sig`` (with BOM), ``utf-8``, ``cp1251`` (what Russian Excel writes) or None."""
    with path.open("rb") as stream:
        bom = stream.read(3) == codecs.BOM_UTF8
    for encoding in ("utf-8-sig" if bom else "utf-8", "cp1251"):
        if _decodes_as(path, encoding):
            return encoding
    return None


@dataclass(frozen=True)
class _Line:
    """One data line of the file: a valid row, or what is wrong with it."""

    number: int
    row: DirectoryRow | None
    problems: tuple[str, ...] = ()


def _validate(values: dict[str, str]) -> DirectoryRow | list[str]:
    """The row in *values* (column -> stripped text), or its problems."""
    problems = []
    try:
        snils = normalise_snils(values["snils"]) if values.get("snils") else None
    except IdentifierError as exc:
        problems.append(str(exc))
        snils = None
    try:
        inn = normalise_inn(values["organisation_inn"]) if values.get("organisation_inn") else None
    except IdentifierError as exc:
        problems.append(str(exc))
        inn = None
    try:
        ogrn = (
            normalise_ogrn(values["organisation_ogrn"]) if values.get("organisation_ogrn") else None
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
        return problems
    return DirectoryRow(
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


def _header_problems(header: list[str]) -> list[str]:
    unknown = [name for name in header if name not in COLUMNS]
    problems = []
    if unknown:
        problems.append(f"unknown column(s): {', '.join(unknown)}")
    if "organisation" not in header:
        problems.append("the column 'organisation' is required")
    return problems


def _lines(path: Path, encoding: str) -> Iterator[_Line]:
    """Every data line of the file, read as a stream; header problems come as line 1."""
    with path.open(encoding=encoding, newline="") as stream:
        sample = stream.read(4096)
        stream.seek(0)
        delimiter = ";" if sample.count(";") >= sample.count(",") else ","
        reader = csv.reader(stream, delimiter=delimiter)
        try:
            first = next(reader, None)
            if first is None:
                yield _Line(1, None, ("the file is empty",))
                return
            header = [name.strip().lower() for name in first]
            if problems := _header_problems(header):
                yield _Line(1, None, tuple(problems))
                return
            for record in reader:
                if not record:  # a blank line
                    continue
                if len(record) > len(header):
                    yield _Line(reader.line_num, None, ("more fields than columns",))
                    continue
                values = {name: value.strip() for name, value in zip(header, record, strict=False)}
                checked = _validate(values)
                if isinstance(checked, list):
                    yield _Line(reader.line_num, None, tuple(checked))
                else:
                    yield _Line(reader.line_num, checked)
        except csv.Error as exc:  # e.g. a field over the csv module's size limit
            yield _Line(reader.line_num, None, (f"unreadable CSV: {exc}",))


def _check(path: Path, report: ImportReport) -> None:
    """First pass: count the rows and collect every problem, touching no database."""
    encoding = detect_encoding(path)
    if encoding is None:
        report.errors.append("line 1: the file is neither UTF-8 nor CP1251 text")
        return
    report.encoding = encoding
    for line in _lines(path, encoding):
        if line.number > 1:
            report.rows += 1
        report.errors.extend(f"line {line.number}: {problem}" for problem in line.problems)


def import_csv(
    session: Session,
    path: Path,
    progress: Progress | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> ImportReport:
    """Apply the CSV file at *path* to the directory inside *session* (the caller commits).

    The file is read twice as a stream: first every row is checked, and
    :class:`CsvImportError` lists every problem before anything is written; then
    the rows are applied in chunks of *chunk_rows*. *progress* hears of every
    :data:`PROGRESS_EVERY` rows written. Raises :class:`OSError` if the file
    cannot be read.
    """
    report = ImportReport()
    _check(path, report)
    if report.errors:
        raise CsvImportError(report)
    loader = DirectoryLoader(session)
    done = 0
    for line in _lines(path, report.encoding):
        if line.row is None:  # the file changed since it was checked
            report.errors.extend(f"line {line.number}: {problem}" for problem in line.problems)
            continue
        loader.apply(line.row)
        done += 1
        if done % chunk_rows == 0 or done % PROGRESS_EVERY == 0:
            loader.flush()
            if progress is not None and done % PROGRESS_EVERY == 0:
                progress(done, report.rows)
    if report.errors:
        raise CsvImportError(report)
    loader.flush()
    session.expire_all()  # objects loaded before were changed behind the ORM's back
    report.organisations_created = loader.counts.organisations_created
    report.subscribers_created = loader.counts.subscribers_created
    report.subscribers_updated = loader.counts.subscribers_updated
    report.addresses_added = loader.counts.addresses_added
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
