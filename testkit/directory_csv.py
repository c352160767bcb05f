"""A generated subscriber directory in the ``mailbot import`` CSV format, of any size.

For benchmarks and volume tests: every row is valid (a SNILS with its check
digits, one trusted address of its own), and subscribers come in
organisations of :data:`PER_ORGANISATION`, as a fund's registry export would.
"""

from __future__ import annotations

import csv
from pathlib import Path

from mailbot.identifiers import snils_checksum

#: Subscribers per generated organisation.
PER_ORGANISATION = 50
#: The first nine SNILS digits of row 0 (above 001-001-998, so the checksum applies).
_FIRST_SNILS = 200_000_000
_HEADER = ("organisation", "organisation_code", "surname", "given_names", "snils", "addresses")


def generated_snils(row: int) -> str:
    """The valid SNILS of generated row *row*."""
    first_nine = f"{_FIRST_SNILS + row:09d}"
    return first_nine + snils_checksum(first_nine)


def generated_address(row: int) -> str:
    """The trusted address of generated row *row* (unique, never a test mail user)."""
    return f"subscriber{row}@org{row // PER_ORGANISATION}.clinic.example"


def write_directory_csv(path: Path, rows: int) -> None:
    """Write a valid import CSV of *rows* subscribers (UTF-8, ``;``-separated) to *path*."""
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out, delimiter=";")
        writer.writerow(_HEADER)
        for row in range(rows):
            organisation = row // PER_ORGANISATION
            writer.writerow(
                (
                    f"ГБУЗ МО «Больница № {organisation}»",
                    f"ORG{organisation:06d}",
                    f"Фамилия{row}",
                    "Иван Иванович",
                    generated_snils(row),
                    generated_address(row),
                )
            )
