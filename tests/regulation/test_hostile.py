"""Every hostile letter of the corpus gets its decision, in bounded time, from a real directory."""

from __future__ import annotations

import pytest

from .conftest import Directory
from .helpers import run_checked
from .hostile import Hostile, corpus


@pytest.mark.parametrize("hostile", corpus(), ids=lambda h: h.name)
def test_hostile_letter_is_decided_in_bounded_time(
    hostile: Hostile, db_directory: Directory
) -> None:
    decision = run_checked(
        hostile.build(), directory=db_directory.senders, counter=db_directory.replies
    )
    assert decision.outcome_key in hostile.expected, decision.reason
