"""Loading whatever Windows exported, and the certificate value object."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC

import pytest

from mailbot.pki import der
from mailbot.pki.certificate import Certificate
from mailbot.pki.errors import CertificateLoadError
from mailbot.pki.load import load_certificate, load_certificates
from mailbot.pki.names import snils_checksum_ok
from testkit import pki
from testkit.pki import CertSpec, oid, seq

from .conftest import DATA


def _pem(der_bytes: bytes, newline: str = "\r\n") -> bytes:
    b64 = base64.b64encode(der_bytes).decode()
    lines = [b64[i : i + 64] for i in range(0, len(b64), 64)]
    text = newline.join(["-----BEGIN CERTIFICATE-----", *lines, "-----END CERTIFICATE-----", ""])
    return text.encode()


def _p7b(*certs: bytes) -> bytes:
    signed_data = seq(
        b"\x02\x01\x01",
        der.encode_tlv(0x31, b""),
        seq(oid("1.2.840.113549.1.7.1")),
        der.encode_tlv(0xA0, b"".join(certs)),
        der.encode_tlv(0x31, b""),
    )
    return seq(oid("1.2.840.113549.1.7.2"), der.encode_tlv(0xA0, signed_data))


@pytest.fixture(scope="module")
def ee(gost_ca: pki.Issued) -> pki.Issued:
    return pki.make_end_entity(gost_ca, serial=bytes.fromhex("0191BEB900FCB08BA240275D9525313540"))


@pytest.mark.parametrize(
    "encode",
    [
        lambda d: d,
        lambda d: _pem(d),
        lambda d: _pem(d, "\n"),
        lambda d: b"\xef\xbb\xbf" + _pem(d),
        lambda d: base64.encodebytes(d),
        lambda d: base64.b64encode(d),
        lambda d: d + b"\r\n",
    ],
    ids=["der", "pem-crlf", "pem-lf", "pem-bom", "bare-b64-lines", "bare-b64", "der-newline"],
)
def test_every_windows_export_form_loads(ee: pki.Issued, encode) -> None:  # type: ignore[no-untyped-def]
    cert = load_certificate(encode(ee.der))
    assert cert.der == ee.der


def test_pkcs7_bundle_gives_the_single_end_entity(gost_ca: pki.Issued, ee: pki.Issued) -> None:
    assert load_certificate(_p7b(gost_ca.der, ee.der)).der == ee.der
    assert len(load_certificates(_p7b(gost_ca.der, ee.der))) == 2


def test_pkcs7_with_two_end_entities_is_refused(gost_ca: pki.Issued, ee: pki.Issued) -> None:
    other = pki.make_end_entity(gost_ca, cn="Петров Пётр Петрович")
    with pytest.raises(CertificateLoadError, match="exactly one end-entity"):
        load_certificate(_p7b(gost_ca.der, ee.der, other.der))


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"   \r\n",
        b"<html><body>proxy</body></html>",
        b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        b"-----BEGIN CERTIFICATE-----\nnot base64!!\n-----END CERTIFICATE-----\n",
        b"\x30\x03\x02\x01\x01",
        b"\x30\x82\xff\xff" + b"\x00" * 10,
        b"\x30\x80\x00\x00",
        b"PK\x03\x04zipfile",
        b"\x30" * 5000,
    ],
)
def test_garbage_is_a_typed_error(data: bytes) -> None:
    with pytest.raises(CertificateLoadError):
        load_certificate(data)


def test_fields(ee: pki.Issued, gost_ca: pki.Issued) -> None:
    c = ee.cert
    assert c.serial_hex == "0191BEB900FCB08BA240275D9525313540"
    assert c.subject_cn == "Иванов Иван Иванович"
    assert c.subject.get("SN") == "Иванов"
    assert c.subject.get("G") == "Иван Иванович"
    assert c.subject.get("T") == "Главный врач"
    assert c.subject.get("O") == "ГБУЗ МО «Тестовая больница»"
    assert c.subject.get("L") == "Красногорск"
    assert c.subject.get("ST") == "50 Московская область"
    assert c.subject.get("E") == "ivanov@example.ru"
    assert (c.snils, c.inn, c.innle, c.ogrn) == (
        "11223344595",
        "500100732259",
        "5001000010",
        "1025000000010",
    )
    snils_attr = next(a for a in c.subject.attributes if a.short_name == "SNILS")
    assert snils_attr.tag == "NumericString"
    assert c.subject.rfc4514().startswith("SNILS=11223344595,")
    assert c.issuer.get("CN") == "Тестовый УЦ"
    assert c.not_before.tzinfo is UTC and c.not_before < pki.NOW < c.not_after
    assert c.crl_urls == ("http://cdp.example.ru/cdp/test.crl",)
    assert c.ca_issuer_urls == ("http://cdp.example.ru/aia/ca.crt",)
    assert c.ocsp_urls == ("http://ocsp.example.ru/ocsp",)
    assert c.key_usage == frozenset({"digitalSignature", "nonRepudiation", "keyEncipherment"})
    assert c.extended_key_usage == ("1.3.6.1.5.5.7.3.2", "1.3.6.1.5.5.7.3.4")
    assert not c.is_ca and gost_ca.cert.is_ca
    assert c.authority_key_identifier == gost_ca.cert.subject_key_identifier == gost_ca.ski
    assert c.signature_algorithm.oid == "1.2.643.7.1.1.3.2"
    assert c.key_algorithm == "1.2.643.7.1.1.1.1"
    assert c.key_paramset_name == "CryptoPro-A"
    assert c.thumbprint_sha1 == hashlib.sha1(ee.der, usedforsecurity=False).hexdigest().upper()
    assert c.fingerprint_sha256 == hashlib.sha256(ee.der).hexdigest().upper()


def test_real_russian_ca_certificates_parse() -> None:
    root = load_certificate((DATA / "mincifry_root_2022.cer").read_bytes())
    sub = load_certificate((DATA / "sertum_pro_2024_by_mincifry.cer").read_bytes())
    assert root.subject_cn == "Минцифры России"
    assert root.thumbprint_sha1 == "2F0CB09BE3550EF17EC4F29C90ABD18BFCAAD63A"
    assert root.innle == "7710474375" and root.ogrn == "1047702026701"
    assert root.is_ca and root.key_paramset_name == "CryptoPro-A"
    assert sub.issuer.der == root.subject.der
    assert sub.authority_key_identifier == root.subject_key_identifier
    assert sub.crl_urls == (
        "http://crl.gosuslugi.ru/cdp/guc2022.crl",
        "http://crl2.gosuslugi.ru/cdp/guc2022.crl",
    )
    assert sub.basic_constraints is not None and sub.basic_constraints.path_length == 0


def test_oddities_do_not_break_parsing(gost_ca: pki.Issued) -> None:
    subject = [
        ("CN", "Сидоров", 0x13),  # Cyrillic in a PrintableString: technically invalid
        ("SNILS", "11223344595", 0x0C),  # SNILS as UTF8String
        ("O", "BMP организация", 0x1E),
        ("1.2.643.100.999", "странный атрибут"),
        ("2.5.4.97", "\x01\x02", 0x04),  # an OCTET STRING value
    ]
    weird_ext = seq(oid("1.2.3.4.5.6"), b"\x04\x03\x05\x01\x00")
    critical_unknown = seq(oid("1.2.3.4.5.7"), b"\x01\x01\xff", b"\x04\x02\x05\x00")
    broken_known = seq(oid("2.5.29.31"), b"\x04\x03\x02\x01\x00")  # CDP that is an INTEGER
    spec = CertSpec(subject=subject, extra_extensions=(weird_ext, critical_unknown, broken_known))
    issued = pki.issue(spec, pki.make_key(), gost_ca)
    c = Certificate.from_der(issued.der)
    assert c.subject_cn == "Сидоров"
    assert c.snils == "11223344595"
    assert c.subject.get("O") == "BMP организация"
    assert c.subject.get("1.2.643.100.999") == "странный атрибут"
    assert "2.5.4.97=#0102" in c.subject.rfc4514()
    assert c.unknown_critical_extensions == ("1.2.3.4.5.7",)
    assert c.undecodable_extensions == ("2.5.29.31",)  # kept raw, not fatal
    assert c.crl_urls == ()


@pytest.mark.parametrize(
    ("snils", "ok"),
    [
        ("11223344595", True),
        ("12345678964", True),
        ("08765430300", True),
        ("11223344596", False),
        ("123", False),
        ("00100199800", True),
    ],
)
def test_snils_checksum(snils: str, ok: bool) -> None:
    assert snils_checksum_ok(snils) is ok


def test_a_loaded_certificate_is_walked_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The DER walk of a participant's certificate (a letter's hot path) is not repeated."""
    issued = pki.make_end_entity(pki.make_ca("УЦ Тест"), snils="11223344595")
    walks: list[int] = []
    real_walk = der.check_well_formed

    def counted(buf: memoryview | bytes, pos: int = 0, limit: int | None = None) -> int:
        walks.append(len(buf))
        return real_walk(buf, pos, limit)

    monkeypatch.setattr(der, "check_well_formed", counted)
    for data in (issued.der, _pem(issued.der)):
        walks.clear()
        certificate = load_certificate(data)
        assert certificate.der == issued.der
        assert walks == [len(issued.der)]
    # A certificate padded with junk is still refused after the one walk.
    with pytest.raises(CertificateLoadError):
        load_certificate(issued.der + b"junk")
