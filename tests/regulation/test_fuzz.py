"""Hypothesis: whatever bytes arrive, the intake decides, never raises, takes bounded time and
leaves nothing in the letter that the journal would refuse (see :func:`run_checked`)."""

from __future__ import annotations

import io
import zipfile

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailbot.config.schema import LimitsConfig
from mailbot.mail.tnef import TnefError, unpack_tnef
from mailbot.mail.ziparchive import sniff_certificate
from mailbot.regulation.attachment_rules import inspect_zip
from testkit import letters as L  # noqa: N812

from .helpers import run_checked

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
VALID_ZIP = L.certificate_zip("a.cer")
VALID_TNEF = L.build_tnef([("a.zip", VALID_ZIP)])

header_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=60).map(
    lambda s: s.encode("utf-8", "surrogatepass")
)
raw_header_value = st.one_of(
    header_text,
    st.binary(max_size=60),
    st.sampled_from(
        [b"=?utf-8?B?0KHQtdGA0YI=?=", b"=?koi8-r?Q?=F3?=", b"=?bogus?X?zz?=", b'"unterminated',
         b"a@b, c@d", b"<>", b"auto-replied", b"bulk", b"((", b";;;=", b"\xd1\xe5\xf0\xf2"]
    ),
)  # fmt: skip
header_name = st.sampled_from(
    [b"From", b"Subject", b"Content-Type", b"Content-Disposition", b"Auto-Submitted",
     b"Precedence", b"Return-Path", b"Message-ID", b"References", b"Sender", b"Reply-To",
     b"Content-Transfer-Encoding", b"Authentication-Results", b"X-Mailbot-Loop"]
)  # fmt: skip


def mutate(data: bytes, edits: list[tuple[int, int]]) -> bytes:
    buffer = bytearray(data)
    for position, value in edits:
        if buffer:
            buffer[position % len(buffer)] = value
    return bytes(buffer)


edits = st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=8)


@FAST
@given(st.binary(max_size=2000))
def test_random_bytes_are_decided(raw: bytes) -> None:
    run_checked(raw)


@FAST
@given(st.lists(st.tuples(header_name, raw_header_value), max_size=12), st.binary(max_size=300))
def test_random_headers_are_decided(headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    raw = b"".join(n + b": " + v.replace(b"\n", b" ") + b"\r\n" for n, v in headers)
    run_checked(raw + b"\r\n" + body)


@FAST
@given(raw_header_value, raw_header_value, st.sampled_from([VALID_ZIP, VALID_TNEF, b"x"]))
def test_random_attachment_headers_are_decided(
    content_type: bytes, disposition: bytes, payload: bytes
) -> None:
    leaf = L.part(payload, content_type.replace(b"\n", b" "), disposition.replace(b"\n", b" "))
    raw = L.letter(L.multipart("mixed", [L.text_part("x"), leaf], "b"))
    run_checked(raw)


@FAST
@given(edits, st.integers(0, len(L.outlook_letter("a.zip", VALID_ZIP))))
def test_mutated_letters_are_decided(changes: list[tuple[int, int]], cut: int) -> None:
    raw = mutate(L.outlook_letter("a.zip", VALID_ZIP), changes)[: cut or None]
    run_checked(raw)


OUTLOOK = L.outlook_letter("a.zip", VALID_ZIP)
HEADER_END = OUTLOOK.index(b"\r\n\r\n")


@FAST
@given(
    st.lists(
        st.tuples(
            st.integers(0, len(OUTLOOK)), st.integers(0, 8), st.binary(min_size=1, max_size=40)
        ),
        min_size=1,
        max_size=4,
    )
)
def test_bytes_spliced_into_a_letter_are_decided(splices: list[tuple[int, int, bytes]]) -> None:
    """Arbitrary bytes put anywhere in a valid letter, replacing a few of its own."""
    raw = OUTLOOK
    for position, replaced, data in splices:
        raw = raw[:position] + data + raw[position + replaced :]
    run_checked(raw)


@FAST
@given(st.integers(0, HEADER_END), st.binary(min_size=1, max_size=200))
def test_bytes_spliced_into_the_header_section_are_decided(position: int, data: bytes) -> None:
    """The header section is where most of the parsing is: hit it more often."""
    decision = run_checked(OUTLOOK[:position] + data + OUTLOOK[position:])
    for mailbox in decision.letter.from_mailboxes:
        assert "\ufffd" not in mailbox.address or not mailbox.is_well_formed


@FAST
@given(edits, st.integers(1, len(VALID_ZIP)))
def test_mutated_zips_never_raise(changes: list[tuple[int, int]], cut: int) -> None:
    result = inspect_zip("a.zip", mutate(VALID_ZIP, changes)[:cut], LimitsConfig())
    assert (result.certificate is None) != (result.outcome is None)


@FAST
@given(
    st.lists(
        st.tuples(st.binary(min_size=1, max_size=12), st.binary(max_size=64), st.booleans()),
        min_size=1,
        max_size=4,
    )
)
def test_random_zip_entries_never_raise(entries: list[tuple[bytes, bytes, bool]]) -> None:
    data = L.build_zip([L.ZipEntry(n, d, utf8_flag=f) for n, d, f in entries])
    result = inspect_zip("a.zip", data, LimitsConfig())
    assert result.outcome is not None or result.certificate is not None


@FAST
@given(st.binary(max_size=64), st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED]))
def test_zipfile_made_archives_never_raise(content: bytes, method: int) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as archive:
        archive.writestr("a.cer", content)
    result = inspect_zip("a.zip", buffer.getvalue(), LimitsConfig())
    assert result.certificate is None  # random bytes are no certificate


@FAST
@given(edits, st.integers(1, len(VALID_TNEF)))
def test_mutated_tnef_raises_only_tnef_error(changes: list[tuple[int, int]], cut: int) -> None:
    try:
        files = unpack_tnef(mutate(VALID_TNEF, changes)[:cut])
    except TnefError:
        return
    assert all(isinstance(f.data, bytes) for f in files)


@FAST
@given(st.binary(max_size=300))
def test_sniff_never_raises(data: bytes) -> None:
    assert sniff_certificate(data) in (None, "der", "pem", "base64")
