"""SNILS, INN and OGRN validation."""

from __future__ import annotations

import pytest

from mailbot.identifiers import (
    IdentifierError,
    format_snils,
    normalise_inn,
    normalise_ogrn,
    normalise_snils,
    snils_checksum,
)


@pytest.mark.parametrize(
    ("first_nine", "check"),
    [("112233445", "95"), ("123456789", "64"), ("087654303", "00")],
)
def test_snils_checksum_worked_examples(first_nine: str, check: str) -> None:
    assert snils_checksum(first_nine) == check


def test_snils_accepts_separators_and_rejects_bad_checksums() -> None:
    assert normalise_snils("112-233-445 95") == "11223344595"
    assert format_snils("11223344595") == "112-233-445 95"
    with pytest.raises(IdentifierError, match="checksum"):
        normalise_snils("112-233-445 96")
    with pytest.raises(IdentifierError, match="11 digits"):
        normalise_snils("1122334459")
    # Old numbers (up to 001-001-998) carry no checksum.
    assert normalise_snils("00100199812") == "00100199812"


def test_inn() -> None:
    assert normalise_inn("7710474375") == "7710474375"
    assert normalise_inn("007710474375") == "7710474375"  # pre-2021 certificate form
    assert normalise_inn("500100732259") == "500100732259"
    with pytest.raises(IdentifierError, match="checksum"):
        normalise_inn("7710474376")
    with pytest.raises(IdentifierError, match="10 or 12"):
        normalise_inn("123")


def test_ogrn() -> None:
    assert normalise_ogrn("1027700132195") == "1027700132195"
    assert normalise_ogrn("304500116000157") == "304500116000157"
    with pytest.raises(IdentifierError, match="checksum"):
        normalise_ogrn("1027700132196")
