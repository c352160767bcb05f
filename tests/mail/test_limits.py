"""Letters beyond the reading limits: the header section is still read, the rest is ``invalid_files``."""

from __future__ import annotations

import pytest

from mailbot.mail import letter as letter_module
from mailbot.mail.letter import MAX_MIME_DEPTH, MAX_MIME_PARTS, parse_letter
from mailbot.regulation.decision import Outcome, Stage
from testkit import letters as L  # noqa: N812
from tests.regulation.helpers import run_checked
from tests.regulation.hostile import (
    append_headers,
    many_parts,
    nested_messages,
    nested_multipart,
    nested_unterminated,
    quadratic_content_types,
    set_header,
)

MESSAGE_ID = "<20250301101500.1@clinic.example>"


@pytest.mark.parametrize(
    "raw",
    [nested_multipart(1000), nested_messages(1000), nested_unterminated(3000)],
    ids=["multipart", "message_rfc822", "unterminated"],
)
def test_deeply_nested_letter_keeps_its_header_section(raw: bytes) -> None:
    letter = parse_letter(raw, 10**8)
    assert [m.address for m in letter.from_mailboxes] == [L.TRUSTED_SENDER]
    assert (letter.subject, letter.message_id) == ("ADD_CERT", MESSAGE_ID)
    assert letter.unreadable == f"MIME nesting deeper than {MAX_MIME_DEPTH} levels"
    decision = run_checked(raw)
    assert decision.outcome is Outcome.INVALID_FILES and decision.stage is Stage.ATTACHMENTS
    assert decision.reply_to == L.TRUSTED_SENDER
    assert decision.reason == letter.unreadable


def test_deeply_nested_letter_from_a_stranger_gets_no_reply() -> None:
    raw = set_header(nested_multipart(1000), b"From", b"stranger@evil.example")
    decision = run_checked(raw)
    assert decision.outcome is Outcome.NO_REPLY and decision.stage is Stage.SENDER_GATE
    assert decision.letter.message_id == MESSAGE_ID


def test_nesting_up_to_the_limit_is_read() -> None:
    assert run_checked(nested_multipart(MAX_MIME_DEPTH)).accepted
    assert parse_letter(nested_multipart(MAX_MIME_DEPTH + 1), 10**8).unreadable


def test_parts_up_to_the_limit_are_read() -> None:
    assert parse_letter(many_parts(MAX_MIME_PARTS, named=False), 10**8).unreadable is None
    too_many = many_parts(MAX_MIME_PARTS + 1, named=False)
    assert parse_letter(too_many, 10**8).unreadable == f"more than {MAX_MIME_PARTS} MIME parts"
    decision = run_checked(too_many)
    assert decision.outcome is Outcome.INVALID_FILES and decision.reply_to == L.TRUSTED_SENDER


def test_too_many_lines_are_not_parsed() -> None:
    raw = L.letter(b"Content-Type: text/plain\r\n\r\n" + b"\n" * (letter_module.MAX_LINES + 1))
    letter = parse_letter(raw, 10**8)
    assert letter.unreadable == f"more than {letter_module.MAX_LINES} lines"
    assert [m.address for m in letter.from_mailboxes] == [L.TRUSTED_SENDER]


def test_header_section_over_the_limit() -> None:
    junk = b"X-Junk: " + b"j" * letter_module.MAX_HEADER_BYTES + b"\r\n"
    after = parse_letter(append_headers(L.no_attachment_letter(), junk), 10**8)
    assert after.unreadable == f"header section over {letter_module.MAX_HEADER_BYTES} bytes"
    assert [m.address for m in after.from_mailboxes] == [L.TRUSTED_SENDER]
    before = run_checked(junk + L.no_attachment_letter())
    assert before.outcome is Outcome.NO_REPLY and before.letter.from_header_count == 0


def test_header_parsing_budget() -> None:
    raw = quadratic_content_types(300)
    decision = run_checked(raw)
    assert decision.outcome is Outcome.INVALID_FILES, decision.reason
    assert decision.reason == f"MIME headers over {letter_module.PARSED_HEADER_BUDGET} characters"
    # The sender is read even though the parts used the budget up.
    assert decision.reply_to == L.TRUSTED_SENDER


@pytest.mark.parametrize(
    ("content_type", "problem"),
    [
        (b"application/zip; x=" + b"a" * 2100, "Content-Type header over 2048 characters"),
        (b"application/zip " + b"(" * 1000 + b")" * 1000, "Content-Type header unreadable"),
    ],
)
def test_unparseable_part_header(content_type: bytes, problem: str) -> None:
    leaf = L.part(L.certificate_zip("a.cer"), content_type, b'attachment; filename="a.zip"')
    decision = run_checked(L.letter(L.multipart("mixed", [L.text_part("x"), leaf], "m")))
    assert (decision.outcome, decision.reason) == (Outcome.INVALID_FILES, problem)


def test_from_over_the_limit_is_no_address() -> None:
    raw = set_header(
        L.no_attachment_letter(), b"From", L.TRUSTED_SENDER.encode() + b" " * 3000 + b", x@y.z"
    )
    decision = run_checked(raw)
    assert decision.letter.from_mailboxes == () and decision.outcome is Outcome.NO_REPLY
