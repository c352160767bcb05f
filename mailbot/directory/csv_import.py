"""Import of the subscriber directory from CSV.

Columns (header row required; order free; names case-insensitive):

==================== ==========================================================
organisation         organisation name (required)
organisation_code    the organisation's code in the fund's registry
organisation_inn     10-digit INN of the organisation
organisation_ogrn    13-digit OGRN
organisation_active  ``1``/``0``, ``yes``/``no``, ``да``/``нет``; empty or no such
                     column: a new organisation is active, an existing one keeps its flag
surname              subscriber's surname
given_names          first name and patronymic
title                position
snils                11 digits, separators allowed; checksum verified
addresses            trusted e-mail addresses separated by ``;``, ``,`` or spaces
active               ``1``/``0``, ``yes``/``no``, ``да``/``нет`` (default: yes)
==================== ==========================================================

An organisation is matched by code, else by INN, else by exact name; a
subscriber by SNILS within the organisation, else by surname + given names. A
row without any subscriber column (surname, given names, title, SNILS,
addresses) names just an organisation: so the export writes organisations
without subscribers. The file's encoding and separator are detected
(:mod:`mailbot.directory.csv_format`: what Excel writes, workbooks refused). The
import is all-or-nothing: any bad row aborts it, and every bad row is reported
with its line number; quoting is parsed strictly, so an unclosed quote is an
error rather than rows silently swallowed into one field.

The file is streamed, never held whole in memory: one pass checks every row,
a second applies them through :class:`~mailbot.directory.bulk_load.DirectoryLoader`
(lookups in preloaded dicts, inserts and updates in chunks, unchanged rows not written).
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.orm import Session

from mailbot.directory.bulk_load import (
    DirectoryLoader,
    DirectoryRow,
    LoadCounts,
    RowConflict,
    RowOutcome,
)
from mailbot.directory.csv_format import DELIMITER_NAMES, CsvFormat, sniff
from mailbot.directory.subscribers import DirectoryError, normalise_address
from mailbot.identifiers import IdentifierError, normalise_inn, normalise_ogrn, normalise_snils

COLUMNS = (
    "organisation",
    "organisation_code",
    "organisation_inn",
    "organisation_ogrn",
    "organisation_active",
    "surname",
    "given_names",
    "title",
    "snils",
    "addresses",
    "active",
)
#: Columns of the subscriber: a row with all of them empty names only an organisation.
SUBSCRIBER_COLUMNS = ("surname", "given_names", "title", "snils", "addresses")
_TRUE = {"1", "yes", "y", "true", "да", "д"}
_FALSE = {"0", "no", "n", "false", "нет", "н"}
#: Rows resolved in memory before their changes are written with one executemany per table.
CHUNK_ROWS = 2_000
#: Rows between two progress reports.
PROGRESS_EVERY = 10_000
#: csv module errors -> what they mean to someone who edited the file in Excel.
_CSV_ERRORS = {
    "unexpected end of data": "unclosed quote: the quoted field that starts in this row "
    "runs to the end of the file",
    "expected after '\"'": 'text after a closing quote (a quote inside a field is written "")',
    "field larger than field limit": "a field longer than {limit:,} characters "
    "(an unclosed quote?)",
}

#: ``progress(rows_done, rows_total)``, called every :data:`PROGRESS_EVERY` rows written.
Progress = Callable[[int, int], None]
#: ``on_row(line_number, row, outcome)``, called by :func:`preview_csv` for every row.
RowSeen = Callable[[int, DirectoryRow, RowOutcome], None]


@dataclass
class ImportReport(LoadCounts):
    """What an import did (or would do, with ``dry_run``): the loader's counts and more.

    Every row is counted once as added (a new subscriber, or a new organisation
    on an organisation-only row), updated or unchanged.
    """

    rows: int = 0
    errors: list[str] = field(default_factory=list)
    encoding: str = "utf-8"
    #: The separator as ``export --delimiter`` names it (``;``, ``,``, ``tab``).
    delimiter: str = ";"


class CsvImportError(Exception):
    """The file cannot be imported; ``report.errors`` lists every bad row."""

    def __init__(self, report: ImportReport) -> None:
        super().__init__("\n".join(report.errors))
        self.report = report


@dataclass(frozen=True)
class _Line:
    """One data line of the file: a valid row, or what is wrong with it."""

    number: int
    row: DirectoryRow | None
    problems: tuple[str, ...] = ()


def _flag(values: dict[str, str], column: str, problems: list[str]) -> bool | None:
    """The yes/no in *column* (None when empty), or a problem."""
    text = values.get(column, "")
    if not text:
        return None
    if text.lower() in _TRUE:
        return True
    if text.lower() in _FALSE:
        return False
    problems.append(f"{column} must be yes or no, got {text!r}")
    return None


def _validate(values: dict[str, str]) -> DirectoryRow | list[str]:
    """The row in *values* (column -> stripped text), or its problems."""
    problems: list[str] = []
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
    active = _flag(values, "active", problems)
    organisation_active = _flag(values, "organisation_active", problems)
    if not values.get("organisation"):
        problems.append("organisation is empty")
    organisation_only = not any(values.get(column) for column in SUBSCRIBER_COLUMNS)
    if not (organisation_only or values.get("surname") or snils):
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
        active=active is not False,
        organisation_active=organisation_active,
    )


def _header_problems(header: list[str]) -> list[str]:
    unknown = [name for name in header if name not in COLUMNS]
    problems = []
    if unknown:
        shown = ", ".join(repr(name[:40]) for name in unknown[:5])
        more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        problems.append(f"unknown column(s): {shown}{more} (known: {', '.join(COLUMNS)})")
    if "organisation" not in header:
        problems.append("the column 'organisation' is required")
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        problems.append(f"repeated column(s): {', '.join(repeated)}")
    return problems


def _csv_problem(exc: csv.Error) -> str:
    """A csv module error in words for someone who edited the file in Excel."""
    for fragment, text in _CSV_ERRORS.items():
        if fragment in str(exc):
            return text.format(limit=csv.field_size_limit())
    return f"unreadable CSV: {exc}"


def _lines(path: Path, encoding: str, delimiter: str) -> Iterator[_Line]:
    """Every data line of the file, read as a stream; header problems come as line 1.

    A quoting error ends the file: after it the parser cannot tell where rows start.
    """
    with path.open(encoding=encoding, newline="") as stream:
        reader = csv.reader(stream, delimiter=delimiter, strict=True)
        start = 1
        try:
            first = next(reader, None)
            if first is None:
                yield _Line(1, None, ("the file is empty",))
                return
            header = [name.strip().lower() for name in first]
            # Excel writes empty columns at the right of a sheet's used range as
            # trailing separators: unnamed columns there hold nothing.
            while header and not header[-1]:
                header.pop()
            if problems := _header_problems(header):
                yield _Line(1, None, tuple(problems))
                return
            while True:
                start = reader.line_num + 1  # where the next record begins
                record = next(reader, None)
                if record is None:
                    return
                if not record:  # a blank line
                    continue
                if reader.line_num != start:
                    # No directory field holds a line break; a quote left open has
                    # swallowed the lines after it (Excel writes them as they came).
                    problem = "a quoted field runs over several lines (an unclosed quote?)"
                    yield _Line(start, None, (problem,))
                    continue
                if len(record) > len(header) and any(v.strip() for v in record[len(header) :]):
                    yield _Line(start, None, ("more fields than columns",))
                    continue
                values = {name: value.strip() for name, value in zip(header, record, strict=False)}
                checked = _validate(values)
                if isinstance(checked, list):
                    yield _Line(start, None, tuple(checked))
                else:
                    yield _Line(start, checked)
        except csv.Error as exc:
            yield _Line(start, None, (_csv_problem(exc),))


def _check(path: Path, report: ImportReport) -> CsvFormat:
    """First pass: how to read the file, with its rows counted and every problem in
    ``report.errors``, touching no database. :class:`NotCsvError` if it is no CSV text."""
    found = sniff(path, COLUMNS)
    report.encoding = found.name
    report.delimiter = DELIMITER_NAMES[found.delimiter]
    for line in _lines(path, found.encoding, found.delimiter):
        if line.number > 1:
            report.rows += 1
        report.errors.extend(f"line {line.number}: {problem}" for problem in line.problems)
    return found


def import_csv(
    session: Session,
    path: Path,
    progress: Progress | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> ImportReport:
    """Apply the CSV file at *path* to the directory inside *session* (the caller commits).

    The file is read twice as a stream: first every row is checked, and
    :class:`CsvImportError` lists every problem before anything is written; then
    the rows are applied in chunks of *chunk_rows* (a row contradicting an
    earlier one is found only then: the caller's rollback undoes the rest).
    *progress* hears of every :data:`PROGRESS_EVERY` rows written. Raises
    :class:`~mailbot.directory.csv_format.NotCsvError` for a workbook, a binary
    file or text in no known encoding, :class:`OSError` if the file cannot be read.
    """
    return _run(session, path, write=True, progress=progress, chunk_rows=chunk_rows)


def preview_csv(session: Session, path: Path, on_row: RowSeen | None = None) -> ImportReport:
    """What :func:`import_csv` would do with *path*, writing nothing to the database.

    The same checks and the same resolution of every row (through the loader's
    memory, never flushed); *on_row* hears of each row with its line number and
    outcome. Raises as :func:`import_csv` does, with the same problems.
    """
    return _run(session, path, write=False, on_row=on_row)


def _run(
    session: Session,
    path: Path,
    write: bool,
    progress: Progress | None = None,
    chunk_rows: int = CHUNK_ROWS,
    on_row: RowSeen | None = None,
) -> ImportReport:
    report = ImportReport()
    found = _check(path, report)
    if report.errors:
        raise CsvImportError(report)
    loader = DirectoryLoader(session, counts=report)
    done = 0
    for line in _lines(path, found.encoding, found.delimiter):
        if line.row is None:  # the file changed since it was checked
            report.errors.extend(f"line {line.number}: {problem}" for problem in line.problems)
            continue
        try:
            outcome = loader.apply(line.row)
        except RowConflict as exc:
            report.errors.append(f"line {line.number}: {exc}")
        else:
            if on_row is not None:
                on_row(line.number, line.row, outcome)
        done += 1
        if write and (done % chunk_rows == 0 or done % PROGRESS_EVERY == 0):
            loader.flush()
            if progress is not None and done % PROGRESS_EVERY == 0:
                progress(done, report.rows)
    if report.errors:
        raise CsvImportError(report)
    if write:
        loader.flush()
        session.expire_all()  # objects loaded before were changed behind the ORM's back
    return report
