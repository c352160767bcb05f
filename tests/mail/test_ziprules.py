"""ZIP rules (step 4) on friendly and hostile archives, built byte by byte."""

from __future__ import annotations

import io
import unicodedata
import zipfile

import pytest

from mailbot.config.schema import LimitsConfig
from mailbot.mail.ziparchive import decode_entry_name, read_entry_capped, sniff_certificate
from mailbot.regulation.attachment_rules import inspect_zip
from mailbot.regulation.decision import Outcome
from testkit.letters import (
    BZIP2,
    STORED,
    ZipEntry,
    build_zip,
    certificate_der,
    certificate_pem,
    certificate_zip,
)

LIMITS = LimitsConfig()
DER = certificate_der()


def verdict(zip_name: str, data: bytes, limits: LimitsConfig = LIMITS):  # type: ignore[no-untyped-def]
    return inspect_zip(zip_name, data, limits)


def rejected(zip_name: str, data: bytes, limits: LimitsConfig = LIMITS) -> str:
    result = verdict(zip_name, data, limits)
    assert result.certificate is None
    assert result.outcome is Outcome.INVALID_FILES
    return result.reason


# --- accepted archives ---------------------------------------------------------------------


def test_explorer_cp866_name_is_decoded() -> None:
    data = certificate_zip("Сертификат.cer", encoding="cp866")
    assert b"\x91\xa5\xe0\xe2" in data  # "Серт" in CP866, no UTF-8 flag
    result = verdict("Сертификат.zip", data)
    assert result.certificate is not None
    assert result.certificate.entry_name == "Сертификат.cer"
    assert result.certificate.data == DER
    assert result.certificate.encoding == "der"


@pytest.mark.parametrize("encoding", ["cp1251", "utf-8"])
def test_cp1251_and_utf8_names(encoding: str) -> None:
    result = verdict("Иванов.zip", certificate_zip("Иванов.cer", encoding=encoding))
    assert result.certificate is not None and result.certificate.file_name == "Иванов.cer"


def test_unflagged_utf8_name_from_linux_zip() -> None:
    data = build_zip([ZipEntry("Петров.cer", DER, utf8_flag=False)])
    result = verdict("Петров.zip", data)
    assert result.certificate is not None and result.certificate.file_name == "Петров.cer"


def test_names_compared_after_nfc_and_casefold() -> None:
    decomposed = unicodedata.normalize("NFD", "Йошкар.CER")
    assert decomposed != "Йошкар.CER"
    data = build_zip([ZipEntry(decomposed, DER)])
    result = verdict("йошкар.zip", data)
    assert result.certificate is not None
    assert result.certificate.entry_name == "Йошкар.CER"


def test_stored_entry_inside_a_folder_is_fine() -> None:
    data = build_zip([ZipEntry("keys/", b"", STORED), ZipEntry("keys/ivanov.cer", DER, STORED)])
    result = verdict("IVANOV.ZIP", data)
    assert result.certificate is not None and result.certificate.entry_name == "keys/ivanov.cer"


@pytest.mark.parametrize(
    ("content", "encoding"),
    [(certificate_pem(), "pem"), (certificate_pem().split(b"\r\n", 1)[1].rsplit(b"-----END", 1)[0],
      "base64"), (b"\xef\xbb\xbf" + certificate_pem(), "pem")],
)  # fmt: skip
def test_pem_and_bare_base64_certificates(content: bytes, encoding: str) -> None:
    result = verdict("a.zip", certificate_zip("a.cer", content))
    assert result.certificate is not None and result.certificate.encoding == encoding


# --- no_cer --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "entries",
    [
        [ZipEntry("readme.txt", b"hello")],
        [ZipEntry("folder/", b"", STORED)],
        [ZipEntry("cert.crt", DER), ZipEntry("../../etc/passwd", b"x")],
        [],
    ],
)
def test_archive_without_cer_is_no_cer(entries: list[ZipEntry]) -> None:
    result = verdict("cert.zip", build_zip(entries))
    assert result.outcome is Outcome.NO_CER


# --- invalid_files -------------------------------------------------------------------------


def test_cer_plus_another_file() -> None:
    data = build_zip([ZipEntry("a.cer", DER), ZipEntry("a.txt", b"note")])
    assert "only one .cer" in rejected("a.zip", data)


def test_two_cer_files() -> None:
    data = build_zip([ZipEntry("a.cer", DER), ZipEntry("b/a.cer", DER)])
    assert "2 files" in rejected("a.zip", data)


def test_zip_inside_the_zip_is_never_opened() -> None:
    inner = certificate_zip("a.cer")
    data = build_zip([ZipEntry("a.cer", DER), ZipEntry("inner.zip", inner)])
    assert "only one .cer" in rejected("a.zip", data)
    # A ".cer" that is really a ZIP is not a certificate either.
    assert "neither DER nor PEM" in rejected("a.zip", certificate_zip("a.cer", inner))


@pytest.mark.parametrize("name", ["../a.cer", "/a.cer", "C:\\keys\\a.cer", "x/../../a.cer"])
def test_dangerous_entry_names(name: str) -> None:
    assert "'..'" in rejected("a.zip", build_zip([ZipEntry(name, DER)]))


def test_archive_name_must_equal_certificate_name() -> None:
    assert "differs" in rejected("Petrov.zip", certificate_zip("Ivanov.cer"))
    assert "differs" in rejected("Ivanov.zip.zip", certificate_zip("Ivanov.cer"))


def test_encrypted_entry() -> None:
    data = build_zip([ZipEntry("a.cer", DER, extra_flags=0x1)])
    assert "encrypted" in rejected("a.zip", data)


def test_unsupported_compression_method() -> None:
    data = build_zip([ZipEntry("a.cer", DER, method=BZIP2, compressed=b"BZh9" + DER)])
    assert "compression method 12" in rejected("a.zip", data)


def test_declared_size_over_the_cap() -> None:
    data = build_zip([ZipEntry("a.cer", DER, declared_size=2 * 1024 * 1024)])
    assert "declares" in rejected("a.zip", data)


def test_compression_ratio_over_100() -> None:
    bomb = b"\x00" * 200_000
    data = build_zip([ZipEntry("a.cer", bomb)])
    assert "ratio" in rejected("a.zip", data)


def test_inflating_past_the_cap_while_streaming() -> None:
    data = build_zip([ZipEntry("a.cer", b"A" * 5000)])
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert read_entry_capped(archive, archive.infolist()[0], 4096) == (
            "entry inflates past 4096 bytes"
        )
        assert read_entry_capped(archive, archive.infolist()[0], 5000) == b"A" * 5000
    small = LimitsConfig(max_zip_entry_bytes=10_000, max_compression_ratio=10_000)
    lying = build_zip([ZipEntry("a.cer", b"B" * 50_000, declared_size=9_000)])
    assert rejected("a.zip", lying, small)  # zipfile stops at the lie; the CRC then fails


def test_bad_crc() -> None:
    data = build_zip([ZipEntry("a.cer", DER, declared_crc=0xDEADBEEF)])
    assert "Bad CRC-32" in rejected("a.zip", data)


def test_lying_compressed_size_is_corruption() -> None:
    data = build_zip([ZipEntry("a.cer", DER, compressed=b"\x00\x01garbage")])
    assert rejected("a.zip", data)


@pytest.mark.parametrize("cut", [10, 100, -30, -5])
def test_truncated_archives(cut: int) -> None:
    data = certificate_zip("a.cer")
    assert rejected("a.zip", data[:cut])


def test_overlapping_entries() -> None:
    entries = [ZipEntry("a.cer", DER), ZipEntry("b.cer", DER), ZipEntry("c.cer", DER)]
    data = build_zip(entries, duplicate_offsets=True)
    assert "overlapping" in rejected("a.zip", data)


def test_flagged_utf8_name_that_is_not_utf8_does_not_raise() -> None:
    data = build_zip([ZipEntry("a\xff\xfe.cer".encode("latin-1"), DER, utf8_flag=True)])
    result = verdict("a.zip", data)
    assert result.certificate is None and result.outcome is not None


def test_archive_over_the_attachment_cap() -> None:
    limits = LimitsConfig(max_attachment_bytes=100)
    assert "larger than 100" in rejected("a.zip", certificate_zip("a.cer"), limits)


@pytest.mark.parametrize("content", [b"hello", DER + b"\x00", DER[:-1], b"", b"0\x80\x00\x00"])
def test_cer_that_is_not_a_certificate(content: bytes) -> None:
    assert "neither DER nor PEM" in rejected("a.zip", certificate_zip("a.cer", content))


def test_sniff_accepts_only_one_certificate_shape() -> None:
    assert sniff_certificate(DER) == "der"
    assert sniff_certificate(certificate_pem() * 2) is None
    assert (
        sniff_certificate(b"-----BEGIN CERTIFICATE-----\nQUJD\n-----END CERTIFICATE-----") is None
    )


@pytest.mark.parametrize(
    ("raw", "flag", "expected"),
    [
        ("Сертификат.cer".encode("cp866"), False, "Сертификат.cer"),
        ("Сертификат.cer".encode("cp1251"), False, "Сертификат.cer"),
        ("Сертификат.cer".encode(), False, "Сертификат.cer"),
        ("Сертификат.cer".encode(), True, "Сертификат.cer"),
        (b"plain.cer", False, "plain.cer"),
    ],
)
def test_decode_entry_name(raw: bytes, flag: bool, expected: str) -> None:
    assert decode_entry_name(raw, flag) == expected
