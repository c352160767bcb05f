"""Export of the subscriber directory as CSV that Excel opens and ``mailbot import`` reads back.

One row per subscriber, and one row (subscriber columns empty) per organisation
without subscribers, with the organisation's ``organisation_active`` on every
row: an export imported again changes nothing. SNILS is written with its
separators (``123-456-789 64``): Excel then keeps it as text instead of a number
that loses its leading zeros.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailbot.directory.csv_import import COLUMNS, SUBSCRIBER_COLUMNS
from mailbot.directory.models import Organisation, Subscriber, TrustedAddress

#: What ``mailbot export`` writes unless told otherwise: a Russian Excel opens it by
#: double-click (it reads the UTF-8 byte order mark; ``;`` is its list separator),
#: and unlike CP1251 it holds every character a name may have.
DEFAULT_ENCODING = "utf-8-sig"
DEFAULT_DELIMITER = ";"
ENCODINGS = ("utf-8-sig", "cp1251", "utf-8")


class ExportEncodingError(Exception):
    """A value has a character the chosen encoding cannot write."""


@dataclass(frozen=True)
class ExportRow:
    """One row of the export, with what it is about (for messages)."""

    #: ``subscriber 42`` or ``organisation 7``: ids, no personal data.
    label: str
    values: dict[str, str]


def _yes_no(value: bool) -> str:
    return "yes" if value else "no"


def _snils_text(snils: str) -> str:
    return f"{snils[:3]}-{snils[3:6]}-{snils[6:9]} {snils[9:]}" if len(snils) == 11 else snils


def _addresses(session: Session) -> dict[int, list[str]]:
    """Active trusted addresses by subscriber id, oldest first."""
    query = (
        select(TrustedAddress.subscriber_id, TrustedAddress.address)
        .where(TrustedAddress.active.is_(True))
        .order_by(TrustedAddress.subscriber_id, TrustedAddress.id)
    )
    found: dict[int, list[str]] = {}
    for subscriber_id, address in session.execute(query):
        found.setdefault(subscriber_id, []).append(address)
    return found


def export_rows(session: Session) -> Iterator[ExportRow]:
    """The directory as rows with :data:`COLUMNS`, organisations by name, then by id."""
    addresses = _addresses(session)
    # Core columns, not ORM objects: 100,000 subscribers export in seconds.
    query = (
        select(
            Organisation.id,
            Organisation.name,
            Organisation.registry_code,
            Organisation.inn,
            Organisation.ogrn,
            Organisation.active,
            Subscriber.id,
            Subscriber.surname,
            Subscriber.given_names,
            Subscriber.title,
            Subscriber.snils,
            Subscriber.active,
        )
        .outerjoin(Subscriber, Subscriber.organisation_id == Organisation.id)
        .order_by(Organisation.name, Organisation.id, Subscriber.id)
        .execution_options(yield_per=1000)
    )
    for row in session.execute(query):
        (organisation_id, name, code, inn, ogrn, organisation_active, subscriber_id,
         surname, given_names, title, snils, active) = row  # fmt: skip
        values = {
            "organisation": name,
            "organisation_code": code or "",
            "organisation_inn": inn or "",
            "organisation_ogrn": ogrn or "",
            "organisation_active": _yes_no(organisation_active),
        }
        if not subscriber_id:  # None: the outer join found no subscriber (ids start at 1)
            empty = dict.fromkeys((*SUBSCRIBER_COLUMNS, "active"), "")
            yield ExportRow(f"organisation {organisation_id}", values | empty)
            continue
        values |= {
            "surname": surname or "",
            "given_names": given_names or "",
            "title": title or "",
            "snils": _snils_text(snils) if snils else "",
            "addresses": ";".join(addresses.get(subscriber_id, ())),
            "active": _yes_no(active),
        }
        yield ExportRow(f"subscriber {subscriber_id}", values)


def encode_csv(rows: Iterator[ExportRow], encoding: str, delimiter: str) -> list[bytes]:
    """The rows as the lines of a CSV file (header first, CRLF as Excel writes) in *encoding*.

    Nothing is written before every row is encoded: raises
    :class:`ExportEncodingError` naming the row, column and character when
    *encoding* (CP1251) cannot hold a value, since a ``?`` in its place would be
    imported back as a changed name.
    """
    encoder = codecs.getincrementalencoder(encoding)()  # one BOM (utf-8-sig), not one a line
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, COLUMNS, delimiter=delimiter, lineterminator="\r\n")
    writer.writeheader()
    lines = [encoder.encode(buffer.getvalue())]
    for number, row in enumerate(rows, start=2):
        buffer.seek(0)
        buffer.truncate()
        writer.writerow(row.values)
        try:
            lines.append(encoder.encode(buffer.getvalue()))
        except UnicodeEncodeError:
            raise ExportEncodingError(_unencodable(number, row, encoding)) from None
    return lines


def _unencodable(number: int, row: ExportRow, encoding: str) -> str:
    """Which value of *row* (line *number*) *encoding* cannot hold, and what to do."""
    for column, value in row.values.items():
        try:
            value.encode(encoding)
        except UnicodeEncodeError as exc:
            char = value[exc.start]
            return (
                f"line {number} ({row.label}), column {column}: {encoding} has no "
                f"{char!r} (U+{ord(char):04X}); export with --encoding utf-8-sig"
            )
    raise AssertionError("the row encoded as a whole but not value by value")
