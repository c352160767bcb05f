"""The ZIP reader's facts, and the certificate sniff read with pki.der."""

from __future__ import annotations

import pytest

from mailbot.mail.ziparchive import ZipArchive, is_der_certificate_shape, open_zip
from mailbot.pki import der
from mailbot.pki.errors import DerError
from testkit.letters import BZIP2, STORED, ZipEntry, build_zip, certificate_der

DER = certificate_der()


def test_entries_are_facts_without_verdicts() -> None:
    data = build_zip(
        [
            ZipEntry("Сертификат.cer".encode("cp866"), DER, extra_flags=0x1),
            ZipEntry("keys/", b"", STORED),
            ZipEntry("b.cer", DER, method=BZIP2, compressed=b"BZh9" + DER),
        ]
    )
    opened = open_zip(data)
    assert isinstance(opened, ZipArchive)
    with opened as archive:
        assert archive.entry_count == 3
        assert archive.layout_problem() is None
        first, folder, third = archive.entries()
    assert (first.name, first.encrypted, first.is_cer, first.is_folder) == (
        "Сертификат.cer",
        True,
        True,
        False,
    )
    assert first.declared_size == len(DER)
    assert (folder.name, folder.is_folder, folder.is_cer) == ("keys/", True, False)
    assert (third.method, third.encrypted) == (BZIP2, False)


def test_a_damaged_archive_is_a_reason_not_an_exception() -> None:
    assert open_zip(b"PK\x03\x04 not really") == "damaged archive (BadZipFile)"


def _long_form(element: bytes) -> bytes:
    """*element* (short or 0x82 length) re-encoded with a 4-octet length: legal BER, not DER."""
    tag, first = element[0], element[1]
    if first < 0x80:
        start, length = 2, first
    else:
        count = first & 0x7F
        start, length = 2 + count, int.from_bytes(element[2 : 2 + count], "big")
    return bytes([tag, 0x84]) + length.to_bytes(4, "big") + element[start:]


def test_the_sniff_reads_non_minimal_lengths_the_loader_rejects() -> None:
    outer = der.read_tlv(DER, 0, len(DER))
    inner = [DER[c.header_start : c.end] for c in der.children(DER, outer)]
    body = _long_form(inner[0]) + b"".join(inner[1:])
    padded = _long_form(bytes([0x30]) + der.encode_length(len(body)) + body)
    with pytest.raises(DerError, match="non-minimal"):
        der.read_tlv(padded, 0, len(padded))
    assert der.read_tlv(padded, 0, len(padded), minimal=False).end == len(padded)
    # A sniff, not a parse: the file goes on to the loader, which says what is wrong with it.
    assert is_der_certificate_shape(padded)
