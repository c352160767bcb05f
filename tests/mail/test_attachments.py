"""Attachments as each mail client encodes them, and what counts as an attachment."""

from __future__ import annotations

import pytest

from mailbot.mail.attachments import find_attachments
from mailbot.mail.letter import parse_letter
from mailbot.mail.tnef import TnefError, unpack_tnef
from mailbot.regulation.decision import Disposition, Outcome
from testkit import letters as L  # noqa: N812  (short: used on every line)
from tests.regulation.helpers import run

CYRILLIC = "Сертификат Иванова И.И."


def attachments_of(raw: bytes) -> list[str]:
    return [a.filename for a in find_attachments(parse_letter(raw, 10**8).message, 10**6)]


@pytest.mark.parametrize(
    "builder",
    [
        L.outlook_letter,
        L.thunderbird_letter,
        L.the_bat_letter,
        L.koi8_letter,
        L.smime_signed_letter,
        L.plain_zip_letter,
    ],
)
def test_each_client_encoding_yields_the_certificate(builder) -> None:  # type: ignore[no-untyped-def]
    raw = builder(f"{CYRILLIC}.zip", L.certificate_zip(f"{CYRILLIC}.cer"))
    assert attachments_of(raw) == [f"{CYRILLIC}.zip"]
    decision = run(raw)
    assert decision.accepted, decision.reason
    assert decision.disposition is Disposition.HANDLE
    assert decision.certificate is not None
    assert decision.certificate.file_name == f"{CYRILLIC}.cer"
    assert decision.certificate.data == L.certificate_der()


def test_outlook_signature_image_is_not_an_attachment() -> None:
    raw = L.outlook_letter("a.zip", L.certificate_zip("a.cer"))
    assert b"image001.png" in raw and b"Content-ID" in raw
    assert attachments_of(raw) == ["a.zip"]


def test_unreferenced_image_is_an_attachment() -> None:
    body = L.multipart(
        "mixed",
        [L.text_part("x"), L.part(b"\x89PNG", b'image/png; name="photo.png"', None,
                                  [b"Content-ID: <nobody-refers@x>"]),
         L.part(L.certificate_zip("a.cer"), b'application/zip; name="a.zip"')],
        "m",
    )  # fmt: skip
    assert attachments_of(L.letter(body)) == ["photo.png", "a.zip"]
    assert run(L.letter(body)).outcome is Outcome.INVALID_FILES


def test_smime_signature_counts_outside_multipart_signed() -> None:
    body = L.multipart(
        "mixed",
        [L.part(L.certificate_zip("a.cer"), b'application/zip; name="a.zip"'),
         L.part(b"sig", b'application/pkcs7-signature; name="smime.p7s"')],
        "m",
    )  # fmt: skip
    assert attachments_of(L.letter(body)) == ["a.zip", "smime.p7s"]


@pytest.mark.parametrize("names", [("ИВАНОВ.ZIP", "иванов.CER"), ("cert.Zip", "CERT.Cer")])
def test_extension_case_does_not_matter(names: tuple[str, str]) -> None:
    decision = run(L.plain_zip_letter(names[0], L.certificate_zip(names[1])))
    assert decision.accepted, decision.reason


def test_declared_content_type_is_not_trusted() -> None:
    zipped = L.certificate_zip("a.cer")
    raw = L.letter(L.multipart("mixed", [L.part(zipped, b'text/plain; name="a.zip"')], "m"))
    assert run(raw).accepted
    fake = L.letter(
        L.multipart("mixed", [L.part(b"not a zip", b'application/zip; name="a.zip"')], "m")
    )
    decision = run(fake)
    assert decision.outcome is Outcome.INVALID_FILES and "damaged ZIP" in decision.reason


def test_zip_bytes_without_zip_extension() -> None:
    raw = L.plain_zip_letter("a.cer", L.certificate_zip("a.cer"))
    decision = run(raw)
    assert decision.outcome is Outcome.INVALID_FILES and "not *.zip" in decision.reason


def test_bare_cer_attachment_is_invalid_files() -> None:
    raw = L.plain_zip_letter("a.cer", L.certificate_der())
    decision = run(raw)
    assert decision.outcome is Outcome.INVALID_FILES and "not a ZIP" in decision.reason


def test_forwarded_letter_is_an_attachment_never_opened() -> None:
    inner = L.plain_zip_letter("a.zip", L.certificate_zip("a.cer"))
    decision = run(L.forwarded_letter(inner))
    assert decision.outcome is Outcome.INVALID_FILES
    assert "forwarded" in decision.reason


def test_winmail_dat_files_are_the_attachments() -> None:
    raw = L.tnef_letter([("Иванов.zip", L.certificate_zip("Иванов.cer"))])
    assert attachments_of(raw) == ["Иванов.zip"]
    decision = run(raw)
    assert decision.accepted and decision.certificate is not None
    assert decision.certificate.file_name == "Иванов.cer"


def test_winmail_dat_with_two_files_is_invalid_files() -> None:
    raw = L.tnef_letter([("a.zip", L.certificate_zip("a.cer")), ("b.txt", b"note")])
    assert run(raw).outcome is Outcome.INVALID_FILES


def test_unreadable_winmail_dat_is_invalid_files() -> None:
    blob = L.build_tnef([("a.zip", b"x")])[:45]  # cut inside an object
    tnef = L.part(blob, b'application/ms-tnef; name="winmail.dat"')
    decision = run(L.letter(L.multipart("mixed", [tnef], "m")))
    assert decision.outcome is Outcome.INVALID_FILES and "winmail.dat" in decision.reason


def test_tnef_reader_round_trip_and_hostile_counts() -> None:
    files = unpack_tnef(L.build_tnef([("Длинное имя файла.zip", b"PK\x05\x06" + b"\x00" * 18)]))
    assert [(f.name, len(f.data)) for f in files] == [("Длинное имя файла.zip", 22)]
    blob = bytearray(L.build_tnef([("a.zip", b"data")]))
    at = blob.rfind(b"\x01\x00\x00\x00\x1f\x00\x07\x37")  # the MAPI property count
    assert at > 0
    blob[at : at + 4] = b"\xff\xff\xff\xff"
    with pytest.raises(TnefError, match="property count"):
        unpack_tnef(bytes(blob))
    with pytest.raises(TnefError):
        unpack_tnef(b"not tnef at all")


@pytest.mark.parametrize(
    ("disposition", "expected"),
    [
        (b"attachment; filename==?UTF-8?B?0KHQtdGA0YIuemlw?=", "Серт.zip"),
        (b'attachment; filename="=?windows-1251?Q?=D1=E5=F0=F2.zip?="', "Серт.zip"),
        ('attachment; filename="Серт.zip"'.encode(), "Серт.zip"),
        (b"attachment", ""),
    ],
)
def test_filename_recovery(disposition: bytes, expected: str) -> None:
    raw = L.letter(
        L.multipart("mixed", [L.part(b"PK\x05\x06", b"application/zip", disposition)], "m")
    )
    assert attachments_of(raw) == [expected]


def test_winmail_dat_without_files_is_no_cer() -> None:
    blob = L.build_tnef([])
    tnef = L.part(blob, b'application/ms-tnef; name="winmail.dat"')
    assert run(L.letter(L.multipart("mixed", [tnef], "m"))).outcome is Outcome.NO_CER


def test_inline_text_body_is_not_an_attachment() -> None:
    assert attachments_of(L.no_attachment_letter()) == []
    assert run(L.no_attachment_letter()).outcome is Outcome.NO_CER


@pytest.mark.parametrize("disposition", [None, b"inline"])
def test_zip_without_a_name_is_an_attachment_whose_name_cannot_match(
    disposition: bytes | None,
) -> None:
    unnamed = L.part(L.certificate_zip("a.cer"), b"application/zip", disposition)
    raw = L.letter(L.multipart("mixed", [L.text_part("Сертификат"), unnamed], "m"))
    assert attachments_of(raw) == [""]
    decision = run(raw)
    assert decision.outcome is Outcome.INVALID_FILES, decision.reason
    assert "not *.zip" in decision.reason
    # The whole letter being the unnamed ZIP is the same.
    whole = L.letter(L.part(L.certificate_zip("a.cer"), b"application/zip", None))
    assert run(whole).outcome is Outcome.INVALID_FILES


def test_unnamed_non_body_parts_count_the_body_does_not() -> None:
    zipped = L.part(L.certificate_zip("a.cer"), b'application/zip; name="a.zip"')
    cid = b"Content-ID: <logo@x>"
    html = L.text_part('<img src="cid:logo@x">', "html")
    body = L.multipart("alternative", [L.text_part("x"), html], "alt")
    referenced = L.part(b"\x89PNG", b"image/png", None, [cid])
    signed = L.multipart(
        "signed",
        [L.multipart("mixed", [body, referenced, zipped], "in"),
         L.part(b"sig", b"application/pkcs7-signature", None)],
        "sig", '; protocol="application/pkcs7-signature"',
    )  # fmt: skip
    assert attachments_of(L.letter(signed)) == ["a.zip"]
    assert run(L.letter(signed)).accepted
    unreferenced = L.part(b"\x89PNG", b"image/png", None)
    extra = L.letter(L.multipart("mixed", [body, zipped, unreferenced], "m"))
    assert attachments_of(extra) == ["a.zip", ""]
    assert run(extra).outcome is Outcome.INVALID_FILES
