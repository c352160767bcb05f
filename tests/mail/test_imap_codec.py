"""The pure helpers: quoting, modified UTF-7, UID sets, response parsing."""

from __future__ import annotations

import pytest

from mailbot.mail.imap_codec import (
    MAX_UIDS_PER_COMMAND,
    batches,
    check_keyword,
    check_uids,
    decode_mailbox_name,
    encode_mailbox_name,
    is_bye,
    mailbox_argument,
    parse_fetch,
    parse_search,
    parse_select,
    quote,
    uid_set,
)


def test_quote_escapes_backslash_and_double_quote() -> None:
    assert quote('My "big" fo\\lder') == '"My \\"big\\" fo\\\\lder"'
    with pytest.raises(ValueError):
        quote("two\r\nlines")


@pytest.mark.parametrize(
    ("name", "encoded"),
    [
        # RFC 3501 §5.1.3's own example.
        ("~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"),
        ("Tom & Jerry", "Tom &- Jerry"),
        ("INBOX", "INBOX"),
        ("Обработано", "&BB4EMQRABDAEMQQ+BEIEMAQ9BD4-"),
    ],
)
def test_modified_utf7_matches_the_rfc(name: str, encoded: str) -> None:
    assert encode_mailbox_name(name) == encoded
    assert decode_mailbox_name(encoded) == name


def test_mailbox_argument_is_encoded_then_quoted() -> None:
    assert mailbox_argument("Отказ / Rejected") == '"&BB4EQgQ6BDAENw- / Rejected"'
    with pytest.raises(ValueError):
        mailbox_argument("")


def test_uid_sets_compress_runs() -> None:
    assert uid_set([1, 2, 3, 7, 9, 10]) == "1:3,7,9:10"
    assert uid_set([5]) == "5"
    with pytest.raises(ValueError):
        uid_set([])


def test_check_uids_sorts_dedups_and_rejects_non_uids() -> None:
    assert check_uids([5, 3, 5, 1]) == [1, 3, 5]
    for bad in (0, -1, True, "7"):
        with pytest.raises(ValueError):
            check_uids([1, bad])  # type: ignore[list-item]


def test_batches_never_exceed_the_limit() -> None:
    uids = list(range(1, 1001))
    chunks = list(batches(uids))
    assert [len(c) for c in chunks] == [MAX_UIDS_PER_COMMAND] * 5
    assert [u for c in chunks for u in c] == uids


@pytest.mark.parametrize("bad", ["two words", "(paren)", "back\\slash", "", 'quo"te', "wild*"])
def test_keywords_must_be_atoms(bad: str) -> None:
    with pytest.raises(ValueError):
        check_keyword(bad)
    assert check_keyword("$MailbotDone") == "$MailbotDone"


def test_parse_select_reads_the_untagged_codes() -> None:
    lines = [
        b"FLAGS (\\Answered \\Seen)",
        b"3 EXISTS",
        b"0 RECENT",
        b"OK [UIDVALIDITY 1795324942] UIDs valid",
        b"OK [UIDNEXT 4] Predicted next UID",
        b"[READ-ONLY] Select completed.",
    ]
    state = parse_select("INBOX", lines)
    assert (state.uidvalidity, state.uidnext, state.exists, state.read_only) == (
        1795324942,
        4,
        3,
        True,
    )
    with pytest.raises(ValueError, match="UIDVALIDITY"):
        parse_select("INBOX", [b"1 EXISTS", b"Select completed."])


def test_parse_search_skips_the_tagged_line_and_modseq() -> None:
    assert parse_search([b"4 2 9", b"Search completed (1 secs)."]) == [2, 4, 9]
    assert parse_search([b"", b"Search completed."]) == []
    assert parse_search([b"3 (MODSEQ 17)", b"done"]) == [3]


def test_parse_fetch_keeps_literals_exact_even_when_they_look_like_protocol() -> None:
    body = b"Subject: x\r\n\r\nline {5}\r\n)\r\nA1 OK done\r\n"
    lines = [
        b"1 FETCH (UID 7 RFC822.SIZE 41 BODY[] {41}",
        bytearray(body),
        b")",
        b"2 FETCH (UID 9 BODY[HEADER] {3}",
        bytearray(b"a\r\n"),
        b" RFC822.SIZE 12)",
        b"Fetch completed.",
    ]
    first, second = parse_fetch(lines)
    assert (first.sequence, first.uid, first.size) == (1, 7, 41)
    assert first.literals == {"BODY[]": body}
    assert (second.uid, second.size, second.literals) == (9, 12, {"BODY[HEADER]": b"a\r\n"})
    assert parse_fetch([b"Fetch completed."]) == []


def test_bye_detection() -> None:
    assert is_bye([b"BYE Server shutting down."])
    assert is_bye([b"* BYE x"])
    assert not is_bye([b"3 EXISTS", b"1 RECENT"])
