"""Showing text that may come from a letter to people, inert.

A subject or a sender is written by a stranger. On an administrator's terminal
its control characters could move the cursor, retitle the window or hide what
follows (ANSI escapes, bidirectional overrides); in a spreadsheet, a cell that
starts like a formula would be evaluated (CSV injection).
"""

from __future__ import annotations

import re

#: C0 and C1 controls (but not the tab), DEL, and the bidirectional overrides and
#: isolates that reorder what a terminal shows ("Trojan Source").
_TERMINAL_UNSAFE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
#: Cells Excel would evaluate as a formula start with one of these.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def terminal_text(text: str) -> str:
    """``text`` with every control character shown as an escape (``\\x1b``, ``\\u202e``)."""
    return _TERMINAL_UNSAFE.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def spreadsheet_cell(text: str) -> str:
    """A CSV cell Excel shows as text and never evaluates."""
    return "'" + text if text.startswith(_FORMULA_START) else text
