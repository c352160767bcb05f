"""Export of the subscriber directory as CSV that Excel opens and ``mailbot import`` reads back.

One row per subscriber, and one row (subscriber columns empty) per organisation
without subscribers, with the organisation's ``organisation_active`` on every
row: an export imported again changes nothing. SNILS is written with its
separators (``123-456-789 64``): Excel then keeps it as text instead of a number
that loses its leading zeros.
"""

from __future__ import annotations

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
    query = (
        select(Organisation, Subscriber)
        .outerjoin(Subscriber, Subscriber.organisation_id == Organisation.id)
        .order_by(Organisation.name, Organisation.id, Subscriber.id)
        .execution_options(yield_per=1000)
    )
    for organisation, joined in session.execute(query):
        subscriber: Subscriber | None = joined  # None: the outer join found nobody
        values = {
            "organisation": organisation.name,
            "organisation_code": organisation.registry_code or "",
            "organisation_inn": organisation.inn or "",
            "organisation_ogrn": organisation.ogrn or "",
            "organisation_active": _yes_no(organisation.active),
        }
        if subscriber is None:
            empty = dict.fromkeys((*SUBSCRIBER_COLUMNS, "active"), "")
            yield ExportRow(f"organisation {organisation.id}", values | empty)
            continue
        values |= {
            "surname": subscriber.surname or "",
            "given_names": subscriber.given_names or "",
            "title": subscriber.title or "",
            "snils": _snils_text(subscriber.snils) if subscriber.snils else "",
            "addresses": ";".join(addresses.get(subscriber.id, ())),
            "active": _yes_no(subscriber.active),
        }
        yield ExportRow(f"subscriber {subscriber.id}", values)


def encode_csv(rows: Iterator[ExportRow], encoding: str, delimiter: str) -> bytes:
    """The rows as a CSV file (header first, CRLF lines as Excel writes them) in *encoding*.

    Raises :class:`ExportEncodingError` naming the row, column and character
    when *encoding* (CP1251) cannot write a value: a ``?`` in its place would be
    imported back as a changed name.
    """
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, COLUMNS, delimiter=delimiter, lineterminator="\r\n")
    writer.writeheader()
    for line, row in enumerate(rows, start=2):
        for column, value in row.values.items():
            try:
                value.encode(encoding)
            except UnicodeEncodeError as exc:
                char = value[exc.start]
                raise ExportEncodingError(
                    f"line {line} ({row.label}), column {column}: {encoding} has no "
                    f"{char!r} (U+{ord(char):04X}); export with --encoding utf-8-sig"
                ) from None
        writer.writerow(row.values)
    return buffer.getvalue().encode(encoding)
