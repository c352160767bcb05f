"""The shared header factory: each header class made once, headers written as the stdlib does."""

from __future__ import annotations

import datetime as dt
from email import policy

import pytest

from mailbot.mail import policies
from mailbot.mail.letter import parse_letter
from mailbot.mail.reply import ReplySettings, build_notice
from testkit import letters

SETTINGS = ReplySettings("reestr@fund.example", "mailbot-test")
NOW = dt.datetime(2026, 12, 7, 12, 0, 5, tzinfo=dt.UTC)


def test_header_classes_are_made_once() -> None:
    first = build_notice("a@clinic.example", "Re: тема", "текст", SETTINGS, NOW)
    second = build_notice("b@clinic.example", "Re: другая", "текст", SETTINGS, NOW)
    for name in ("To", "From", "Date", "Message-ID", "Content-Type"):
        assert type(first[name]) is type(second[name]), name
    # Any number of unknown names share the default class: the cache stays bounded.
    assert policies.HEADER_FACTORY["X-One"] is policies.HEADER_FACTORY["X-Two"]


def test_letters_are_parsed_with_the_shared_factory() -> None:
    one = parse_letter(letters.no_attachment_letter(message_id="<one@clinic.example>"), 10**6)
    two = parse_letter(letters.no_attachment_letter(message_id="<two@clinic.example>"), 10**6)
    assert one.message_id == "<one@clinic.example>"
    assert type(one.message["Message-ID"]) is type(two.message["Message-ID"])


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("To", "врач@больница.рф"),
        ("From", "Реестр сертификатов <reestr@fund.example>"),
        ("Subject", "Re: " + "слово " * 40),
        ("References", " ".join(f"<id{n}@host.example>" for n in range(10))),
        ("Date", "Mon, 07 Dec 2026 12:00:05 +0000"),
        ("X-Mailbot-Loop", "mailbot-test"),
    ],
)
def test_headers_fold_as_the_stdlib_folds_them(name: str, value: str) -> None:
    for ours, stdlib in ((policies.SMTP, policy.SMTP), (policies.SMTPUTF8, policy.SMTPUTF8)):
        theirs = stdlib.fold_binary(name, stdlib.header_store_parse(name, value)[1])
        assert ours.fold_binary(name, ours.header_store_parse(name, value)[1]) == theirs


def test_short_values_are_parsed_once_and_long_ones_every_time() -> None:
    factory = policies.CachedHeaderRegistry()
    assert factory("To", "a@clinic.example") is factory("To", "a@clinic.example")
    assert factory("To", "a@clinic.example") is not factory("To", "b@clinic.example")
    long_value = "x" * (policies.MAX_KEPT_VALUE_CHARS + 1)
    assert factory("Subject", long_value) is not factory("Subject", long_value)
    assert factory("Subject", long_value) == long_value
