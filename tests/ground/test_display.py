"""Text from letters shown to administrators stays inert: terminals and spreadsheets."""

from __future__ import annotations

import csv
import io

from mailbot.cli.common import render_rows
from mailbot.display import spreadsheet_cell, terminal_text

HOSTILE = "Счёт\x1b]0;owned\x07\x1b[2J\u202eexe.cod\u202c\nBcc: x"


def test_terminal_text_escapes_controls_and_bidi_overrides() -> None:
    shown = terminal_text(HOSTILE)
    assert shown == "Счёт\\x1b]0;owned\\x07\\x1b[2J\\u202eexe.cod\\u202c\\x0aBcc: x"
    assert terminal_text("табуляция\tостаётся") == "табуляция\tостаётся"
    assert terminal_text("\x9b31m") == "\\x9b31m"  # the 8-bit CSI


def test_spreadsheet_cell_defuses_formulas_only() -> None:
    assert spreadsheet_cell('=HYPERLINK("http://x","y")') == '\'=HYPERLINK("http://x","y")'
    for start in "+-@\t\r":
        assert spreadsheet_cell(start + "1") == "'" + start + "1"
    assert spreadsheet_cell("ADD_CERT") == "ADD_CERT"


def test_listing_table_escapes_and_csv_defuses() -> None:
    rows = [{"id": 1, "subject": HOSTILE}, {"id": 2, "subject": "=1+2"}]
    table = render_rows(rows, ("id", "subject"), "table")
    assert "\x1b" not in table and "\u202e" not in table
    assert len(table.splitlines()) == 4  # header, rule, two rows: no injected line
    cells = list(csv.reader(io.StringIO(render_rows(rows, ("id", "subject"), "csv"))))
    assert cells[2] == ["2", "'=1+2"]
    assert render_rows(rows, ("id", "subject"), "json").count("\\u001b") == 2
