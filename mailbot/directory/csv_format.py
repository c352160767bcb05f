"""What kind of file an administrator handed to ``mailbot import``: encoding and separator.

Excel saves a table as CSV in several forms, and administrators also pick the
workbook itself by mistake. :func:`sniff` tells them apart without holding the
file in memory:

1. Workbooks and other binary files are refused by their first bytes: ZIP
   (``PK\\x03\\x04``: ``.xlsx``, ``.ods``), OLE (``D0 CF 11 E0``: ``.xls``), or
   any NUL character anywhere in the decoded text.
2. A byte order mark decides the encoding: UTF-8 (Excel's "CSV UTF-8"), UTF-16
   LE or BE (Excel's "Unicode text", TAB-separated). The whole file must then
   decode strictly.
3. Without a mark: strict UTF-8 if the whole file decodes as such, else CP1251
   (Excel's plain "CSV" in a Russian Windows). UTF-8 goes first because CP1251
   decodes almost any bytes (all but ``0x98``) and would turn UTF-8 Cyrillic into
   mojibake, while Cyrillic CP1251 text is practically never valid UTF-8 (its
   letters are UTF-8 lead bytes without the continuation bytes they need).
4. The separator is whichever of ``;``, ``,`` and TAB splits the header line
   into the most known column names (``;`` wins a tie: Russian Excel's choice).
"""

from __future__ import annotations

import codecs
import csv
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

#: Bytes read at a time while checking the file's encoding.
READ_BYTES = 1 << 20
#: The header line is looked for within this many characters.
HEADER_CHARS = 1 << 16
DELIMITERS = (";", ",", "\t")
#: Readable names of the separators (``tab`` as the ``export --delimiter`` option spells it).
DELIMITER_NAMES = {";": ";", ",": ",", "\t": "tab"}

_SAVE_AS = "in Excel use File → Save As → CSV UTF-8 (or CSV) and import that file"
#: Leading bytes of files that are not text: what they are, for the refusal.
_SIGNATURES = (
    (
        b"PK\x03\x04",
        f"this is an Excel workbook (.xlsx) or another ZIP archive, not CSV: {_SAVE_AS}",
    ),
    (
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",
        f"this is an Excel 97-2003 workbook (.xls) or another OLE document, not CSV: {_SAVE_AS}",
    ),
)
_BINARY = "this is a binary file (it contains NUL bytes), not CSV text"
#: Byte order marks -> (codec that reads past the mark, name shown to the administrator).
_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig", "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16", "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16", "utf-16-be"),
)
_BOM_TEXT = {"utf-8-sig": "UTF-8", "utf-16-le": "UTF-16 LE", "utf-16-be": "UTF-16 BE"}


class NotCsvError(Exception):
    """The file is not CSV text this importer reads; the message says what it is."""


@dataclass(frozen=True)
class CsvFormat:
    """How to read a CSV file."""

    #: Codec to open the file with (it skips a byte order mark).
    encoding: str
    #: The encoding as the administrator knows it (``utf-16-le``, ``cp1251``...).
    name: str
    delimiter: str


def _decodes_as(path: Path, encoding: str) -> bool:
    """Whether the whole file is text in *encoding* (read in pieces, nothing kept).

    Raises :class:`NotCsvError` on a NUL character: no CSV text has one, a
    binary file (or UTF-16 without its byte order mark) has many.
    """
    decoder = codecs.getincrementaldecoder(encoding)()
    try:
        with path.open("rb") as stream:
            while piece := stream.read(READ_BYTES):
                if "\0" in decoder.decode(piece):
                    raise NotCsvError(_BINARY)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def detect_encoding(path: Path) -> tuple[str, str]:
    """(codec, name) of the file's text; :class:`NotCsvError` if it is not text."""
    with path.open("rb") as stream:
        head = stream.read(8)
    for signature, what in _SIGNATURES:
        if head.startswith(signature):
            raise NotCsvError(what)
    for bom, codec, name in _BOMS:
        if head.startswith(bom):
            if not _decodes_as(path, codec):
                text = _BOM_TEXT[name]
                raise NotCsvError(
                    f"the file starts with a {text} byte order mark but is not {text} text"
                )
            return codec, name
    for codec in ("utf-8", "cp1251"):
        if _decodes_as(path, codec):
            return codec, codec
    raise NotCsvError("the file is neither UTF-8 nor CP1251 text")


def _header_line(path: Path, encoding: str) -> str:
    with path.open(encoding=encoding, newline="") as stream:
        return stream.readline(HEADER_CHARS)


def detect_delimiter(header_line: str, columns: Collection[str]) -> str:
    """The separator that splits *header_line* into the most names from *columns*."""

    def known(delimiter: str) -> int:
        names = next(csv.reader([header_line], delimiter=delimiter), [])
        return sum(name.strip().lower() in columns for name in names)

    return max(DELIMITERS, key=known)  # max keeps the first of equals: ';'


def sniff(path: Path, columns: Collection[str]) -> CsvFormat:
    """How to read the CSV file at *path* whose header names some of *columns*.

    Reads the whole file once (in pieces). Raises :class:`NotCsvError` for a
    workbook, a binary file or undecodable text, :class:`OSError` if unreadable.
    """
    codec, name = detect_encoding(path)
    delimiter = detect_delimiter(_header_line(path, codec), columns)
    return CsvFormat(codec, name, delimiter)
