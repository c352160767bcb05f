"""Subscriber-directory CSV files of any size, in the format ``mailbot import`` accepts.

Every row is a distinct subscriber with a valid, distinct SNILS and a distinct
trusted address; the subscribers are spread over a few organisations with
valid INN and OGRN. Row *i* is always the same person, so a file written again
(or with an overlapping ``first``) updates rather than adds.
"""

from __future__ import annotations

import csv
import functools
from collections.abc import Callable
from pathlib import Path

from mailbot.directory.csv_import import COLUMNS
from mailbot.identifiers import IdentifierError, normalise_inn, normalise_ogrn, snils_checksum

#: The columns ``mailbot import`` reads, in its order.
HEADER = COLUMNS
SURNAMES = (
    "Иванов", "Петров", "Сидоров", "Кузнецов", "Смирнов", "Попов", "Волков", "Соколов",
    "Лебедев", "Козлов", "Новиков", "Морозов", "Егоров", "Павлов", "Семёнов", "Голубев",
    "Виноградов", "Богданов", "Воробьёв", "Фёдоров", "Михайлов", "Беляев", "Тарасов",
    "Белов", "Комаров",
)  # fmt: skip
FIRST_NAMES = (
    "Иван", "Пётр", "Сергей", "Андрей", "Алексей", "Дмитрий", "Михаил", "Николай", "Олег",
    "Павел", "Роман", "Юрий", "Борис", "Глеб", "Егор", "Илья", "Кирилл", "Лев", "Фёдор",
    "Ярослав",
)  # fmt: skip
PATRONYMICS = (
    "Иванович", "Петрович", "Сергеевич", "Андреевич", "Алексеевич", "Дмитриевич",
    "Михайлович", "Николаевич", "Олегович", "Павлович", "Романович", "Юрьевич", "Борисович",
    "Глебович", "Егорович", "Ильич", "Кириллович", "Львович", "Фёдорович", "Ярославич",
)  # fmt: skip
TITLES = ("врач", "главный врач", "медицинская сестра", "бухгалтер", "")
#: First nine SNILS digits of row 0; above 001-001-998, so checksums are verified.
SNILS_BASE = 100_000_000


def snils_of(index: int) -> str:
    """The valid SNILS (11 digits) of row *index*."""
    first_nine = f"{SNILS_BASE + index:09d}"
    if len(first_nine) != 9:
        raise ValueError(f"row {index} is past the SNILS range")
    return first_nine + snils_checksum(first_nine)


def address_of(index: int) -> str:
    """The trusted address of row *index*."""
    return f"user{index}@org{index % 97}.example"


def _with_check_digit(stem: str, normalise: Callable[[str], str]) -> str:
    """*stem* completed with the last digit the validator *normalise* accepts."""
    for digit in "0123456789":
        try:
            return normalise(stem + digit)
        except IdentifierError:
            continue
    raise ValueError(f"no check digit completes {stem}")


@functools.cache
def _organisation_columns(number: int) -> tuple[tuple[str, str], ...]:
    return tuple(
        {
            "organisation": f"ГБУЗ «Поликлиника № {number + 1}»",
            "organisation_code": f"{500001 + number}",
            "organisation_inn": _with_check_digit(f"77{number:07d}", normalise_inn),
            "organisation_ogrn": _with_check_digit(f"102770{number:06d}", normalise_ogrn),
        }.items()
    )


def organisation_of(number: int) -> dict[str, str]:
    """The organisation columns (name, code, INN, OGRN) of organisation *number*."""
    return dict(_organisation_columns(number))


def name_of(index: int, organisations: int) -> tuple[str, str]:
    """Surname and given names of row *index*, distinct within its organisation.

    Distinct names matter: the importer matches a subscriber without a known SNILS
    by name, so repeated names would turn new rows into updates.
    """
    number = index // organisations
    number, surname = divmod(number, len(SURNAMES))
    number, first = divmod(number, len(FIRST_NAMES))
    number, patronymic = divmod(number, len(PATRONYMICS))
    suffix = f"-{number + 1}" if number else ""  # past the 10,000 combinations
    return (
        SURNAMES[surname] + suffix,
        f"{FIRST_NAMES[first]} {PATRONYMICS[patronymic]}",
    )


def directory_row(index: int, organisations: int) -> dict[str, str]:
    """The CSV row of subscriber *index* (as column -> text)."""
    surname, given_names = name_of(index, organisations)
    return {
        **organisation_of(index % organisations),
        "surname": surname,
        "given_names": given_names,
        "title": TITLES[index % len(TITLES)],
        "snils": snils_of(index),
        "addresses": address_of(index),
        "active": "да",
    }


def write_directory_csv(
    path: Path,
    rows: int,
    *,
    organisations: int = 5,
    first: int = 0,
    encoding: str = "utf-8",
) -> Path:
    """Write rows ``first .. first + rows - 1`` to *path* (``;``-separated) and return it."""
    with path.open("w", encoding=encoding, newline="") as stream:
        writer = csv.DictWriter(stream, HEADER, delimiter=";")
        writer.writeheader()
        for index in range(first, first + rows):
            writer.writerow(directory_row(index, organisations))
    return path
