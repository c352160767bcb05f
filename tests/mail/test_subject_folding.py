"""Long Cyrillic subjects survive folding (Python 3.11 drops a space at a word boundary)."""

from __future__ import annotations

import datetime as dt
from email import message_from_bytes, policy

import pytest

from mailbot.mail.reply import ReplySettings, build_notice


@pytest.mark.parametrize(
    "subject",
    [
        "Сертификат 5A5A01 отозван удостоверяющим центром",  # the split fell on a space
        "Re: Сертификат 0191BEB900FCB08BA240275D9525313540 отозван удостоверяющим центром, "
        "действие сертификата прекращено досрочно по заявлению владельца",
        "Re: ADD_CERT",
    ],
)
def test_subject_round_trips(subject: str) -> None:
    message = build_notice(
        "ivanov@clinic.example", subject, "текст", ReplySettings("reestrin@fund.example", "t"),
        dt.datetime(2026, 3, 2, tzinfo=dt.UTC),
    )  # fmt: skip
    raw = bytes(message)
    header_lines = raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    assert all(len(line) <= 78 for line in header_lines)
    parsed = message_from_bytes(raw, policy=policy.default)
    assert parsed["Subject"] == subject
