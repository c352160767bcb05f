"""Russian personal and organisation identifiers: SNILS, INN, OGRN.

Each ``normalise_*`` function keeps digits only and checks length and
checksum, returning the canonical digit string or raising
:class:`IdentifierError` with a reason a person can act on.
"""

from __future__ import annotations

import re


class IdentifierError(ValueError):
    """An identifier is malformed or fails its checksum."""


def digits_only(text: str) -> str:
    """Strip separators (spaces, dashes) people write in identifiers."""
    return re.sub(r"[\s\-]", "", text)


def snils_checksum(first_nine: str) -> str:
    """The two check digits of a SNILS whose first nine digits are given.

    Digits are weighted 9..1; a sum under 100 is the check number itself,
    100 and 101 give 00, larger sums are taken modulo 101 (100 again gives 00).
    """
    total = sum(int(d) * w for d, w in zip(first_nine, range(9, 0, -1), strict=True))
    if total < 100:
        return f"{total:02d}"
    if total in (100, 101):
        return "00"
    remainder = total % 101
    return "00" if remainder == 100 else f"{remainder:02d}"


def normalise_snils(text: str) -> str:
    """Eleven digits of a valid SNILS (``112-233-445 95`` -> ``11223344595``)."""
    value = digits_only(text)
    if not value.isdigit() or len(value) != 11:
        raise IdentifierError(f"SNILS must have 11 digits, got {text!r}")
    # Numbers up to 001-001-998 were issued before checksums existed.
    if int(value[:9]) > 1001998 and snils_checksum(value[:9]) != value[9:]:
        raise IdentifierError(f"SNILS {text!r} fails its checksum")
    return value


def format_snils(value: str) -> str:
    """``11223344595`` -> ``112-233-445 95`` (as printed on the card)."""
    return f"{value[0:3]}-{value[3:6]}-{value[6:9]} {value[9:11]}"


def _inn_digit(digits: str, weights: tuple[int, ...]) -> str:
    return str(sum(int(d) * w for d, w in zip(digits, weights, strict=False)) % 11 % 10)


def normalise_inn(text: str) -> str:
    """A valid INN: 10 digits (organisation) or 12 digits (person), checksums verified.

    Pre-2021 certificates carry an organisation's INN as 12 digits with a
    ``00`` prefix; that form is returned as the 10-digit INN.
    """
    value = digits_only(text)
    if len(value) == 12 and value.startswith("00"):
        value = value[2:]
    if not value.isdigit() or len(value) not in (10, 12):
        raise IdentifierError(f"INN must have 10 or 12 digits, got {text!r}")
    if len(value) == 10:
        if _inn_digit(value[:9], (2, 4, 10, 3, 5, 9, 4, 6, 8)) != value[9]:
            raise IdentifierError(f"INN {text!r} fails its checksum")
        return value
    first = _inn_digit(value[:10], (7, 2, 4, 10, 3, 5, 9, 4, 6, 8))
    second = _inn_digit(value[:11], (3, 7, 2, 4, 10, 3, 5, 9, 4, 6, 8))
    if value[10:] != first + second:
        raise IdentifierError(f"INN {text!r} fails its checksum")
    return value


def normalise_ogrn(text: str) -> str:
    """A valid OGRN (13 digits) or OGRNIP (15 digits), check digit verified."""
    value = digits_only(text)
    if not value.isdigit() or len(value) not in (13, 15):
        raise IdentifierError(f"OGRN must have 13 (or OGRNIP 15) digits, got {text!r}")
    body, check = value[:-1], int(value[-1])
    modulus = 11 if len(value) == 13 else 13
    if int(body) % modulus % 10 != check:
        raise IdentifierError(f"OGRN {text!r} fails its checksum")
    return value
