"""winmail.dat (TNEF) read byte for byte: data in MAPI properties, empty files, hostile streams."""

from __future__ import annotations

import struct
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailbot.mail.attachments import find_attachments
from mailbot.mail.letter import parse_letter
from mailbot.mail.tnef import MAX_OBJECTS, TnefError, unpack_tnef
from mailbot.regulation.decision import Outcome
from testkit import letters as L  # noqa: N812
from tests.regulation.helpers import hit_rules, run

GOOD_ZIP = L.certificate_zip("Иванов.cer")
#: A stored ZIP of a .cer that itself ends in zeros: both the entry and the archive end in NULs.
ZEROS_ZIP = L.build_zip([L.ZipEntry("a.cer", L.certificate_der() + b"\x00" * 7, method=L.STORED)])
SIGNATURE = struct.pack("<IH", 0x223E9F78, 0x0001)
REND_DATA = L.tnef_object(2, 0x9002, 0x0006, b"\x01\x00\xff\xff\xff\xff" + b"\x00" * 8)
IID_ISTORAGE = bytes.fromhex("0b0d020000000000c000000000000046")

#: Properties Outlook writes into attAttachment besides the name and the data (MS-OXTNEF 3.1):
#: every fixed, counted, named and multi-valued shape the reader has to walk over exactly.
OUTLOOK_PROPERTIES = (
    L.mapi_property(0x0003, 0x0E20, struct.pack("<I", len(GOOD_ZIP))),  # PR_ATTACH_SIZE
    L.mapi_property(0x0102, 0x0FF9, bytes(range(16))),  # PR_RECORD_KEY
    L.mapi_property(0x001F, 0x3001, L.utf16z("Иванов.zip")),  # PR_DISPLAY_NAME
    L.mapi_property(0x001E, 0x3703, b".zip\x00"),  # PR_ATTACH_EXTENSION (8-bit)
    L.mapi_property(0x0003, 0x3705, struct.pack("<I", 1)),  # PR_ATTACH_METHOD: by value
    L.mapi_property(0x0003, 0x370B, struct.pack("<i", -1)),  # PR_RENDERING_POSITION
    L.mapi_property(0x0040, 0x3007, struct.pack("<Q", 133_000_000_000_000_000)),  # creation
    L.mapi_property(0x000B, 0x7FFE, struct.pack("<H", 0)),  # PR_ATTACHMENT_HIDDEN (2+2 bytes)
    L.mapi_property(0x0048, 0x8001, bytes(16), name="ContentClassId"),  # named, fixed
    L.mapi_property(0x101F, 0x8002, L.utf16z("a"), L.utf16z("bcd"), name="Keywords"),
    L.mapi_property(0x1003, 0x8003, b"\x01\x00\x00\x00", b"\x02\x00\x00\x00", name="Flags"),
)


def winmail_letter(blob: bytes, **kwargs: object) -> bytes:
    tnef = L.part(blob, b'application/ms-tnef; name="winmail.dat"')
    return L.letter(L.multipart("mixed", [L.text_part("См. вложение"), tnef], "tn"), **kwargs)  # type: ignore[arg-type]


def names_and_sizes(blob: bytes) -> list[tuple[str, int]]:
    return [(f.name, len(f.data)) for f in unpack_tnef(blob)]


def with_attachment(*objects: bytes) -> bytes:
    """A stream of one attachment made of *objects* (after its attAttachRendData)."""
    return SIGNATURE + REND_DATA + b"".join(objects)


def attachment_properties(*properties: bytes, count: int | None = None) -> bytes:
    body = struct.pack("<I", len(properties) if count is None else count) + b"".join(properties)
    return L.tnef_object(2, 0x9005, 0x0006, body)


# --- the bytes, exactly ----------------------------------------------------------------------


@pytest.mark.parametrize("data_in", ["attAttachData", "mapi"])
@pytest.mark.parametrize(
    "payload",
    [GOOD_ZIP, ZEROS_ZIP, b"\x00" * 5, b"PK\x05\x06" + bytes(18)],
    ids=["deflated-zip", "stored-zip-of-zeros", "zeros", "empty-zip"],
)
def test_file_bytes_arrive_whole_wherever_they_are(data_in: str, payload: bytes) -> None:
    assert payload.endswith(b"\x00")  # what tnefparse used to strip from PR_ATTACH_DATA_BIN
    blob = L.build_tnef([("Иванов.zip", payload)], data_in=data_in)
    (file,) = unpack_tnef(blob)
    assert (file.name, file.data) == ("Иванов.zip", payload)


def test_outlook_property_shapes_around_the_data_are_walked_exactly() -> None:
    blob = L.build_tnef(
        [("Длинное имя.zip", GOOD_ZIP)], data_in="mapi", extra_properties=OUTLOOK_PROPERTIES
    )
    (file,) = unpack_tnef(blob)
    assert (file.name, file.data) == ("Длинное имя.zip", GOOD_ZIP)


def test_the_encapsulated_property_wins_over_the_attribute() -> None:
    # MS-OXTNEF 2.1.3: values of encapsulated properties are used instead of conflicting attributes.
    blob = with_attachment(
        L.tnef_object(2, 0x800F, 0x0006, b"attribute"),
        attachment_properties(L.mapi_property(0x0102, 0x3701, GOOD_ZIP)),
    )
    assert unpack_tnef(blob)[0].data == GOOD_ZIP


def test_attach_data_object_loses_only_its_interface_id() -> None:
    # PR_ATTACH_DATA_OBJ (PT_OBJECT): the value size includes the 16-byte interface id.
    blob = with_attachment(
        L.tnef_object(2, 0x8010, 0x0001, "Отчёт.doc".encode("cp1251") + b"\x00"),
        attachment_properties(L.mapi_property(0x000D, 0x3701, IID_ISTORAGE + ZEROS_ZIP)),
    )
    assert names_and_sizes(blob) == [("Отчёт.doc", len(ZEROS_ZIP))]
    with pytest.raises(TnefError, match="interface id"):
        unpack_tnef(with_attachment(attachment_properties(L.mapi_property(0x000D, 0x3701, b"x"))))


def test_trusted_add_cert_letter_with_data_in_mapi_reaches_the_certificate_checks() -> None:
    blob = L.build_tnef(
        [("Иванов.zip", GOOD_ZIP)], data_in="mapi", extra_properties=OUTLOOK_PROPERTIES
    )
    decision = run(winmail_letter(blob))
    assert decision.accepted, decision.reason
    assert decision.certificate is not None
    assert decision.certificate.file_name == "Иванов.cer"
    assert decision.certificate.data == L.certificate_der()


# --- what counts as a file -------------------------------------------------------------------


def test_empty_file_beside_a_zip_is_a_second_attachment() -> None:
    blob = L.build_tnef([("Иванов.zip", GOOD_ZIP), ("пусто.txt", b"")], data_in="mapi")
    assert names_and_sizes(blob) == [("Иванов.zip", len(GOOD_ZIP)), ("пусто.txt", 0)]
    message = parse_letter(winmail_letter(blob), 10**8).message
    assert [a.filename for a in find_attachments(message, 10**6)] == ["Иванов.zip", "пусто.txt"]
    decision = run(winmail_letter(blob))
    assert decision.outcome is Outcome.INVALID_FILES and "one_attachment" in hit_rules(decision)


@pytest.mark.parametrize("data_in", ["attAttachData", "mapi"])
def test_an_empty_file_alone_is_an_attachment_not_none(data_in: str) -> None:
    decision = run(winmail_letter(L.build_tnef([("Иванов.zip", b"")], data_in=data_in)))
    assert decision.outcome is Outcome.INVALID_FILES, decision.reason
    assert "zip_attachment" in hit_rules(decision)


def test_an_attachment_without_contents_is_no_file() -> None:
    # A link (PR_ATTACH_METHOD 7, by web reference) carries no bytes: nothing to count or check.
    link = attachment_properties(
        L.mapi_property(0x001F, 0x3707, L.utf16z("Иванов.zip")),
        L.mapi_property(0x0003, 0x3705, struct.pack("<I", 7)),
    )
    assert unpack_tnef(with_attachment(link)) == []


# --- hostile streams -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("properties", "error"),
    [
        # a value length of 4 GiB inside a 1 KiB attribute
        (struct.pack("<HHII", 0x0102, 0x3701, 1, 0xFFFFFFF0) + bytes(1000), "past the end"),
        # 2**32 values of a multi-valued property
        (struct.pack("<HHI", 0x1003, 0x0E20, 0xFFFFFFFF) + bytes(64), "implausible"),
        # 2**32 strings in a counted property
        (struct.pack("<HHI", 0x001F, 0x3707, 0xFFFFFFFF) + bytes(64), "implausible"),
        # a named property whose name claims 4 GiB
        (struct.pack("<HH", 0x0003, 0x8001) + bytes(16) + struct.pack("<II", 1, 2**32 - 8), "past"),
        (struct.pack("<HH", 0x0003, 0x8001) + bytes(16) + struct.pack("<I", 7), "name kind"),
        (struct.pack("<HHI", 0x00FE, 0x3701, 4) + bytes(8), "unknown MAPI property type"),
    ],
    ids=["value-4GiB", "values-2**32", "strings-2**32", "name-4GiB", "name-kind", "unknown-type"],
)
def test_hostile_property_lists_are_refused_at_once(properties: bytes, error: str) -> None:
    blob = with_attachment(
        L.tnef_object(2, 0x800F, 0x0006, b"x"), attachment_properties(properties, count=1)
    )
    started = time.perf_counter()
    with pytest.raises(TnefError, match=error):
        unpack_tnef(blob)
    assert time.perf_counter() - started < 0.1


def test_a_huge_declared_object_length_is_refused() -> None:
    blob = SIGNATURE + struct.pack("<BII", 2, 0x0006800F, 0xFFFFFFF0) + bytes(100)
    with pytest.raises(TnefError, match="past the end"):
        unpack_tnef(blob)


def test_thousands_of_attachments_are_counted_fast_and_capped() -> None:
    empty = REND_DATA + L.tnef_object(2, 0x800F, 0x0006, b"")
    many = (MAX_OBJECTS - 2) // 2
    started = time.perf_counter()
    assert len(unpack_tnef(SIGNATURE + empty * many)) == many
    assert time.perf_counter() - started < 0.5
    decision = run(winmail_letter(SIGNATURE + empty * many))
    assert decision.outcome is Outcome.INVALID_FILES and "one_attachment" in hit_rules(decision)
    with pytest.raises(TnefError, match="too many objects"):
        unpack_tnef(SIGNATURE + empty * (many + 2))


def test_a_megabyte_of_tiny_properties_is_walked_in_linear_time() -> None:
    count = (1 << 20) // 8
    tiny = L.mapi_property(0x0003, 0x0E20, bytes(4)) * count
    blob = with_attachment(
        attachment_properties(tiny + L.mapi_property(0x0102, 0x3701, GOOD_ZIP), count=count + 1)
    )
    started = time.perf_counter()
    assert unpack_tnef(blob)[0].data == GOOD_ZIP
    assert time.perf_counter() - started < 2.0  # ~0.15 s measured


REALISTIC = L.build_tnef(
    [("Иванов.zip", GOOD_ZIP), ("пусто.txt", b"")],
    data_in="mapi",
    extra_properties=OUTLOOK_PROPERTIES,
)


def test_a_stream_cut_anywhere_never_yields_a_cut_file() -> None:
    for cut in range(6, len(REALISTIC)):
        try:
            files = unpack_tnef(REALISTIC[:cut])
        except TnefError:
            continue
        assert [f.data for f in files] in ([], [GOOD_ZIP], [GOOD_ZIP, b""]), cut


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(6, len(REALISTIC) - 1), st.integers(0, 255)), max_size=6))
def test_mutated_realistic_streams_raise_only_tnef_error(changes: list[tuple[int, int]]) -> None:
    blob = bytearray(REALISTIC)
    for offset, value in changes:
        blob[offset] = value
    try:
        files = unpack_tnef(bytes(blob))
    except TnefError:
        return
    assert sum(len(f.data) for f in files) <= len(blob)
