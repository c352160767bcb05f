"""Reading generated lists back: every field, every date style, tolerance, streaming."""

from __future__ import annotations

import hashlib
import io
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from mailbot.pki.certificate import Certificate
from mailbot.trustlist import (
    AuthorityEntry,
    StatusKind,
    TrustList,
    load_trust_list,
    read_trust_list,
)
from mailbot.trustlist.fields import parse_datetime
from testkit import pki
from testkit import trust_list as tl


def load(data: bytes) -> TrustList:
    return load_trust_list(io.BytesIO(data))


def test_a_generated_list_reads_back_field_for_field() -> None:
    source = [tl.make_authority(1), tl.make_authority(2, keys=1, certificates_per_key=3)]
    data = tl.trust_list_xml(source, version=4321, published_at=pki.NOW)
    result = load(data)

    assert result.version == 4321
    assert result.published_at == pki.NOW
    assert result.sha256 == hashlib.sha256(data).hexdigest()
    assert result.size == len(data)
    assert result.problems == ()
    assert len(result.authorities) == 2
    for written, read in zip(source, result.authorities, strict=True):
        assert read.name == written.name
        assert read.short_name == written.short_name
        assert read.inn == written.inn
        assert read.ogrn == written.ogrn
        assert read.registry_number == written.registry_number
        assert read.email == written.email
        assert read.info_url == written.info_url
        assert read.status.text == "Действует"
        assert read.status.kind is StatusKind.ACTIVE
        assert read.status.valid_from == written.status.since
        assert read.status.valid_to is None
        assert [(s.kind, s.valid_from, s.valid_to) for s in read.history] == [
            (StatusKind(s.text), s.since, s.until) for s in written.history
        ]
        assert len(read.keys) == len(written.keys)
        for wkey, rkey in zip(written.keys, read.keys, strict=True):
            issued = [c.issued for c in wkey.certificates]
            assert rkey.key_identifier == issued[0].ski
            assert rkey.key_identifier_hex == issued[0].ski.hex().upper()
            assert rkey.crl_urls == wkey.crl_urls
            assert [c.der for c in rkey.certificates] == [i.der for i in issued]
            for cert, item in zip(rkey.certificates, issued, strict=True):
                parsed = item.cert
                assert cert.thumbprint_sha1 == parsed.thumbprint_sha1
                assert cert.serial_hex == parsed.serial_hex
                assert cert.not_before == parsed.not_before
                assert cert.not_after == parsed.not_after
                assert cert.subject_text == parsed.subject.rfc4514()
                assert cert.issuer_text == parsed.issuer.rfc4514()
                assert isinstance(cert.certificate(), Certificate)
                assert cert.certificate().is_ca
    assert len(result.authorities[1].certificates) == 3


@pytest.mark.parametrize("style", list(tl.DateStyle))
def test_every_date_style_gives_the_same_utc_moments(style: tl.DateStyle) -> None:
    published = datetime(2026, 3, 2, 14, 30, 15, 250000, tzinfo=UTC)
    data = tl.trust_list_xml(
        [tl.make_authority(1)], published_at=published, style=tl.TslStyle(dates=style)
    )
    result = load(data)
    expected = published.replace(microsecond=0) if style is not tl.DateStyle.OFFSET else published
    assert result.published_at == expected
    assert result.published_at.tzinfo is UTC
    assert result.authorities[0].status.valid_from == tl.make_authority(1).status.since


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # No offset: Moscow time (UTC+3 since 2014; UTC+4 in 2011-2014, as zoneinfo knows).
        ("2026-03-02T12:00:00", datetime(2026, 3, 2, 9, 0, tzinfo=UTC)),
        ("2012-06-01T12:00:00", datetime(2012, 6, 1, 8, 0, tzinfo=UTC)),
        ("2026-03-02T12:00:00.1234567+03:00", datetime(2026, 3, 2, 9, 0, 0, 123456, tzinfo=UTC)),
        ("2026-03-02T12:00:00-02:30", datetime(2026, 3, 2, 14, 30, tzinfo=UTC)),
        ("2026-03-02T12:00:00Z", datetime(2026, 3, 2, 12, 0, tzinfo=UTC)),
        (" 2026-03-02 ", datetime(2026, 3, 1, 21, 0, tzinfo=UTC)),
        ("2026-03-02+03:00", datetime(2026, 3, 1, 21, 0, tzinfo=UTC)),
    ],
)
def test_xs_datetime_forms(text: str, expected: datetime) -> None:
    assert parse_datetime(text) == expected


@pytest.mark.parametrize("text", ["", "02.03.2026", "2026-13-01T00:00:00", "2026-03-02T12:00"])
def test_unreadable_dates_are_value_errors(text: str) -> None:
    with pytest.raises(ValueError):
        parse_datetime(text)


def test_a_default_namespace_and_prefixed_names_read_the_same() -> None:
    plain = load(tl.trust_list_xml([tl.make_authority(1)]))
    spaced = load(
        tl.trust_list_xml([tl.make_authority(1)], style=tl.TslStyle(namespace="urn:example:tsl:v2"))
    )
    assert spaced.authorities == plain.authorities
    assert spaced.version == plain.version
    prefixed = (
        tl.trust_list_xml([tl.make_authority(1)])
        .decode()
        .replace("<", "<t:")
        .replace("<t:/", "</t:")
        .replace("<t:?xml", "<?xml")
        .replace(
            "<t:АккредитованныеУдостоверяющиеЦентры ",
            '<t:АккредитованныеУдостоверяющиеЦентры xmlns:t="urn:x" ',
        )
    )
    assert load(prefixed.encode()).authorities == plain.authorities


def test_unknown_elements_anywhere_are_ignored() -> None:
    authority = tl.make_authority(1, extra=True)
    data = tl.trust_list_xml([authority], style=tl.TslStyle(extra_root_elements=True))
    assert data.count(tl.EXTRA_ELEMENT.encode()) > 15
    result = load(data)
    assert result.problems == ()
    assert result.authorities == load(tl.trust_list_xml([tl.make_authority(1)])).authorities


def test_missing_optional_elements_leave_empty_values() -> None:
    omit = frozenset(
        {
            "КраткоеНазвание",
            "ИНН",
            "ОГРН",
            "РеестровыйНомер",
            "ЭлектроннаяПочта",
            "АдресСИнформациейПоУЦ",
            "Адрес",  # the postal address and the CRL addresses alike
            "ИсторияСтатусовАккредитации",
            "Отпечаток",
            "КемВыдан",
            "КомуВыдан",
            "СерийныйНомер",
            "ПериодДействияС",
            "ПериодДействияДо",
            "Псевдоним",
            "КлассСредствЭП",
            "СредстваУЦ",
        }
    )
    result = load(tl.trust_list_xml([tl.make_authority(1, omit=omit)]))
    assert result.problems == ()
    (authority,) = result.authorities
    assert authority.short_name is None
    assert authority.inn is None
    assert authority.ogrn is None
    assert authority.registry_number is None
    assert authority.email is None
    assert authority.info_url is None
    assert authority.history == ()
    assert [k.crl_urls for k in authority.keys] == [(), ()]
    # Without Отпечаток the certificate still counts: its DER and SKI were checked.
    assert len(authority.certificates) == 2


def test_a_status_without_an_end_and_unknown_status_texts_are_kept() -> None:
    until = pki.NOW + timedelta(days=10)
    authority = tl.make_authority(
        1,
        status=tl.TslStatus("  Приостановлена  ", pki.NOW, until),
        history=(tl.TslStatus("Временно   ограничена", pki.NOW - timedelta(days=9)),),
    )
    (read,) = load(tl.trust_list_xml([authority])).authorities
    assert read.status.text == "Приостановлена"
    assert read.status.kind is StatusKind.SUSPENDED
    assert read.status.valid_to == until
    (earlier,) = read.history
    assert earlier.text == "Временно ограничена"
    assert earlier.kind is None
    assert earlier.valid_to is None


def test_a_key_listed_under_two_complexes_is_one_key() -> None:
    base = tl.make_authority(1, keys=2, certificates_per_key=2)
    first, second = base.keys
    again = replace(
        first,
        certificates=(first.certificates[1], tl.TslCertificate(tl.ca_certificate(1, 0, 7))),
        crl_urls=(first.crl_urls[1], "http://third.example.ru/k0.crl"),
    )
    authority = replace(base, keys=(first, second, again), one_complex_per_key=True)
    (read,) = load(tl.trust_list_xml([authority])).authorities
    assert [k.key_identifier for k in read.keys] == [
        first.certificates[0].issued.ski,
        second.certificates[0].issued.ski,
    ]
    merged = read.keys[0]
    assert merged.crl_urls == (*first.crl_urls, "http://third.example.ru/k0.crl")
    assert [c.der for c in merged.certificates] == [
        first.certificates[0].issued.der,
        first.certificates[1].issued.der,
        tl.ca_certificate(1, 0, 7).der,
    ]


def test_hex_identifiers_and_thumbprints_ignore_case_and_spaces() -> None:
    base = tl.make_authority(1, keys=1)
    (key,) = base.keys
    ski = key.certificates[0].issued.ski.hex()
    spaced = " ".join(ski[i : i + 2] for i in range(0, len(ski), 2)).lower()
    data = tl.trust_list_xml([replace(base, keys=(replace(key, identifier=spaced),))])
    thumbprint = key.certificates[0].issued.cert.thumbprint_sha1
    data = data.replace(
        f"<Отпечаток>{thumbprint}<".encode(), f"<Отпечаток> {thumbprint.lower()} <".encode()
    )
    result = load(data)
    assert result.problems == ()
    assert result.authorities[0].keys[0].certificates[0].thumbprint_sha1 == thumbprint


class CountingReader(io.BytesIO):
    """A source that records how far it has been read."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.consumed = 0

    def read(self, size: int | None = -1, /) -> bytes:
        chunk = super().read(size)
        self.consumed += len(chunk)
        return chunk


def test_the_header_comes_before_the_authorities_are_read() -> None:
    data = tl.trust_list_xml(
        [tl.make_authority(i) for i in range(1, 80)], version=77, published_at=pki.NOW
    )
    assert len(data) > 600_000
    source = CountingReader(data)
    stream = read_trust_list(source)
    assert stream.header.version == 77
    assert stream.header.published_at == pki.NOW
    assert source.consumed <= 64 * 1024  # one chunk, not the file
    with pytest.raises(RuntimeError):
        _ = stream.sha256

    entries: list[AuthorityEntry] = []
    for entry in stream:
        entries.append(entry)
        # Authorities come out while the file is still being read.
        if entry.index == 1:
            assert source.consumed < len(data) / 2
    assert [e.index for e in entries] == list(range(1, 80))
    assert all(e.authority is not None and not e.problems for e in entries)
    assert entries[0].line == 5
    assert entries[1].line > entries[0].line
    assert stream.sha256 == hashlib.sha256(data).hexdigest()
    assert stream.size == len(data)
    with pytest.raises(RuntimeError):
        list(stream)


def test_a_list_without_authorities_is_a_list() -> None:
    result = load(tl.trust_list_xml([], version=1))
    assert result.version == 1
    assert result.authorities == ()


def test_windows_1251_and_a_bom_are_read() -> None:
    data = tl.trust_list_xml([tl.make_authority(1)])
    cp1251 = data.replace(b'encoding="utf-8"', b'encoding="windows-1251"').decode().encode("cp1251")
    assert load(cp1251).authorities == load(data).authorities
    assert load(b"\xef\xbb\xbf" + data).authorities == load(data).authorities
