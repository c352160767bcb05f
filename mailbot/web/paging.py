"""Page numbers of the console's paginated lists (``?page=N``)."""

from __future__ import annotations


def page_number(text: str) -> int:
    """The 1-based page number in *text*; 1 for anything else (bounded: no huge offsets)."""
    return max(int(text), 1) if text.isdigit() and len(text) < 7 else 1
