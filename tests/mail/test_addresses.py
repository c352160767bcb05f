"""Internationalised (RFC 6532) and undecodable From addresses: compared, never crashing."""

from __future__ import annotations

import pytest

from mailbot.addresses import normalize_address
from mailbot.mail.letter import parse_letter
from mailbot.regulation.decision import Outcome, Stage
from testkit import letters as L  # noqa: N812
from tests.regulation.conftest import Directory
from tests.regulation.helpers import run_checked
from tests.regulation.hostile import good_letter, set_header


def from_letter(value: bytes, **kwargs: object) -> bytes:
    """The good ADD_CERT letter with the raw From header *value*."""
    return set_header(good_letter(**kwargs), b"From", value)


@pytest.mark.parametrize(
    ("written", "key"),
    [
        ("Ivanov@Clinic.Example", "ivanov@clinic.example"),
        (" Иван@Пример.РФ ", "иван@xn--e1afmkfd.xn--p1ai"),
        ("иван@XN--E1AFMKFD.XN--P1AI", "иван@xn--e1afmkfd.xn--p1ai"),
        ("JDöe@Mächine.Example", "jdöe@xn--mchine-bua.example"),
        ("no-at-sign", "no-at-sign"),
        ("a@b@Пример.рф", "a@b@xn--e1afmkfd.xn--p1ai"),
        # Not an IDN: compared as written, lower-cased.
        ("x@пример..рф", "x@пример..рф"),
        ("x@" + "я" * 300, "x@" + "я" * 300),
    ],
)
def test_normalize_address(written: str, key: str) -> None:
    assert normalize_address(written) == key


def test_raw_utf8_from_is_read_as_utf8() -> None:
    letter = parse_letter(from_letter("Иван <Иван@Пример.РФ>".encode()), 10**7)
    (mailbox,) = letter.from_mailboxes
    assert (mailbox.display_name, mailbox.address) == ("Иван", "Иван@Пример.РФ")
    assert mailbox.is_well_formed
    assert mailbox.normalized == "иван@xn--e1afmkfd.xn--p1ai"


@pytest.mark.parametrize(
    "value",
    [b"iv\xffanov@clinic.example", b"ivanov@cl\xc0inic.example", b"\xd0@clinic.example"],
)
def test_invalid_utf8_from_is_malformed(value: bytes) -> None:
    letter = parse_letter(from_letter(value), 10**7)
    (mailbox,) = letter.from_mailboxes
    assert "\ufffd" in mailbox.address and not mailbox.is_well_formed


def test_cp1251_display_name_is_still_recovered() -> None:
    letter = parse_letter(from_letter("Иван".encode("cp1251") + b" <ivanov@clinic.example>"), 10**7)
    (mailbox,) = letter.from_mailboxes
    assert (mailbox.display_name, mailbox.address) == ("Иван", "ivanov@clinic.example")


def test_encoded_word_is_no_address() -> None:
    # RFC 2047 section 5: never in an addr-spec. The stdlib decodes it there anyway.
    for value in (b"=?utf-8?q?ivanov?=@clinic.example", b"x <ivanov@=?utf-8?q?clinic?=.example>"):
        (mailbox,) = parse_letter(from_letter(value), 10**7).from_mailboxes
        assert mailbox.address == L.TRUSTED_SENDER and not mailbox.is_well_formed
    (named,) = parse_letter(
        from_letter(b"=?utf-8?b?0JjQstCw0L0=?= <a@b.example>"), 10**7
    ).from_mailboxes
    assert (named.display_name, named.is_well_formed) == ("Иван", True)


def test_no_string_of_a_letter_carries_surrogates_or_nul() -> None:
    raw = (
        b"From: \xd0\x98\xff <iv\xffanov@clinic.example>\r\n"
        b"Subject: \xff\x00ADD_CERT =?unknown-8bit?q?=FF?=\r\n"
        b"Message-ID: <\xd0\xb8\xd0\xb4@\xd0\xbf.\xd1\x80\xd1\x84>\r\n"
        b"In-Reply-To: <\xff@x> <a\x00b@y> <ok@z>\r\n"
        b"References: <\xd0\xb8@x> <\xfe@y>\r\n\r\nbody"
    )
    letter = parse_letter(raw, 10**7)
    strings = [
        letter.subject,
        letter.message_id or "",
        *letter.in_reply_to,
        *letter.references,
        *(m.address for m in letter.from_mailboxes),
        *(m.display_name for m in letter.from_mailboxes),
    ]
    assert all(s.isprintable() for s in strings), strings
    assert not any("\ud800" <= c <= "\udfff" or c == "\x00" for s in strings for c in s)
    assert letter.message_id == "<ид@п.рф>"
    assert letter.in_reply_to == ("<ok@z>",)
    assert letter.references == ("<и@x>",)


# --- the gate against the database directory (SQLite and PostgreSQL) ------------------------


@pytest.mark.parametrize(
    "sender",
    [
        "Иван@Пример.РФ",  # trusted as typed
        "иван@пример.рф",
        "иван@xn--e1afmkfd.xn--p1ai",  # the same domain in punycode
        "petrov@пример.рф",  # trusted in punycode, written in Unicode
        "PETROV@XN--E1AFMKFD.XN--P1AI",
        "jdöe@mächine.example",
        "JDÖE@MÄCHINE.EXAMPLE",
        "jdöe@xn--mchine-bua.example",
    ],
)
def test_trusted_internationalised_address_passes_the_gate(
    db_directory: Directory, sender: str
) -> None:
    decision = run_checked(
        from_letter(sender.encode()), directory=db_directory.senders, counter=db_directory.replies
    )
    assert decision.accepted, decision.reason
    assert decision.sender == sender and decision.reply_to == sender
    assert [c.subscriber_id for c in decision.subscribers] == [str(db_directory.subscriber_id)]


@pytest.mark.parametrize(
    "value",
    [
        "пётр@пример.рф".encode(),  # valid, not trusted
        b"\xd0\x98\xd0\xb2\xd0\xb0\xff@\xd0\xbf\xd1\x80\xd0\xb8\xd0\xbc\xd0\xb5\xd1\x80.\xd1\x80\xd1\x84",
        b"ivanov\xff@clinic.example",
        b"ivanov@clinic.example\xff",
        b"=?utf-8?q?ivanov?=@clinic.example",
        b"ivanov\x00@clinic.example",
    ],
)
def test_other_and_undecodable_addresses_get_no_reply(
    db_directory: Directory, value: bytes
) -> None:
    decision = run_checked(
        from_letter(value), directory=db_directory.senders, counter=db_directory.replies
    )
    assert decision.outcome is Outcome.NO_REPLY and decision.stage is Stage.SENDER_GATE
    assert decision.reply_to is None and decision.subscribers == ()
