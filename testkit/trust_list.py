"""Realistic files of the Ministry's list of accredited CAs (the "TSL"), with faults on demand.

The CA certificates come from :mod:`testkit.pki` (GOST 2012-256), so their SKI,
SHA-1 and DER are real; the XML follows the layout of the published file
(Cyrillic element names, two-space indentation, base64 on one line, .NET-style
dates). Faults are asked for per certificate (:class:`CertFault`), per authority
(``omit``, ``extra``) or per file (:class:`TslStyle`: namespace, date style,
DTD). Files are written streaming: :func:`write_large_trust_list` writes
hundreds of megabytes while holding one authority at a time.

Nothing here is used by the daemon in production.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, timezone
from enum import Enum
from functools import cache
from pathlib import Path
from typing import BinaryIO
from xml.sax.saxutils import escape, quoteattr

from mailbot.pki.certificate import Certificate
from mailbot.pki.der import encode_tlv
from testkit import pki

ROOT = "АккредитованныеУдостоверяющиеЦентры"
#: The Ministry's offset: a dateTime "with offset" is written in it.
MSK = timezone(timedelta(hours=3))
#: Elements no reader knows, put in by ``extra=True`` (with an attribute and a child).
EXTRA_ELEMENT = '<ПолеИзБудущего вид="новое"><Вложенное>будущее</Вложенное></ПолеИзБудущего>'
#: A private-arc OID for the padding extension of fat test certificates.
PADDING_OID = "1.3.6.1.4.1.55555.1.1"


class CertFault(Enum):
    """What is wrong with one ``ДанныеСертификата`` entry."""

    #: ``Отпечаток`` is not the SHA-1 of ``Данные``.
    WRONG_THUMBPRINT = "wrong-thumbprint"
    #: ``Данные`` holds the certificate of another key (its own thumbprint is right).
    WRONG_SKI = "wrong-ski"
    #: ``Данные`` is not base64.
    BROKEN_BASE64 = "broken-base64"
    #: ``Данные`` is base64 of DER that is no certificate.
    NOT_A_CERTIFICATE = "not-a-certificate"
    #: ``Данные`` is missing.
    NO_DATA = "no-data"


class DateStyle(Enum):
    """How dateTime values are written."""

    #: ``2026-03-02T12:00:00.0000000+03:00`` (what .NET writes).
    OFFSET = "offset"
    #: ``2026-03-02T12:00:00`` in Moscow time.
    NAIVE = "naive"
    #: ``2026-03-02T09:00:00Z``.
    UTC = "utc"


@dataclass(frozen=True)
class TslStatus:
    """One ``СтатусАккредитации``."""

    text: str = "Действует"
    since: datetime = pki.NOW - timedelta(days=3 * 365)
    until: datetime | None = None


@dataclass(frozen=True)
class TslCertificate:
    """One ``ДанныеСертификата``: a certificate of the key, or a fault."""

    issued: pki.Issued
    fault: CertFault | None = None


@dataclass(frozen=True)
class TslKey:
    """One ``Ключ``. ``identifier`` defaults to the SKI of the first certificate."""

    certificates: tuple[TslCertificate, ...]
    crl_urls: tuple[str, ...] = ()
    #: The ``ИдентификаторКлюча`` text as written; ``""`` leaves the element out.
    identifier: str | None = None

    def identifier_text(self) -> str:
        """What goes into ``ИдентификаторКлюча``."""
        if self.identifier is not None:
            return self.identifier
        return self.certificates[0].issued.ski.hex().upper()


@dataclass(frozen=True)
class TslAuthority:
    """One ``УдостоверяющийЦентр``."""

    name: str
    keys: tuple[TslKey, ...]
    short_name: str = "ТУЦ"
    inn: str = "7707083893"
    ogrn: str = "1027700132195"
    registry_number: str = "1"
    email: str = "uc@example.ru"
    info_url: str = "http://uc.example.ru/"
    status: TslStatus = TslStatus()
    history: tuple[TslStatus, ...] = ()
    #: Each key in a ПАК of its own (the same key may then appear in two).
    one_complex_per_key: bool = False
    #: Element names left out wherever they occur in this authority.
    omit: frozenset[str] = frozenset()
    #: Put :data:`EXTRA_ELEMENT` into every element that has children.
    extra: bool = False


@dataclass(frozen=True)
class TslStyle:
    """File-wide choices."""

    namespace: str | None = None
    dates: DateStyle = DateStyle.OFFSET
    #: Written verbatim after the XML declaration (see :func:`billion_laughs`).
    doctype: str | None = None
    #: ``&name;`` appended unescaped to every authority's ``Название``.
    entity_reference: str | None = None
    #: Unknown elements between the header and the authorities and after them.
    extra_root_elements: bool = False


# --------------------------------------------------------------------------- certificates


@cache
def ca_certificate(index: int, key: int = 0, issue_no: int = 0, padding: int = 0) -> pki.Issued:
    """A GOST CA certificate for authority *index*, key *key*, its *issue_no*-th certificate.

    Certificates of one (index, key) share the key, hence the SKI (yearly re-issues).
    ``padding`` adds an opaque extension of that many bytes: fat certificates make
    big files out of few certificates, so reading them is not all parsing.
    """
    key_pair = pki.make_key(pki.GOST256, slot=10_000 + index * 64 + key)
    cn = f"Тестовый аккредитованный УЦ {index}"
    extras: tuple[bytes, ...] = ()
    if padding:
        value = encode_tlv(0x04, hashlib.shake_256(b"%d" % index).digest(padding))
        extras = (pki.seq(pki.oid(PADDING_OID), encode_tlv(0x04, value)),)
    not_before = pki.NOW - timedelta(days=365 * (issue_no + 1))
    spec = pki.CertSpec(
        subject=[
            ("E", "uc@example.ru"),
            ("C", "RU"),
            ("L", "Москва"),
            ("O", cn),
            ("OGRN", "1027700132195"),
            ("INNLE", "7707083893"),
            ("CN", cn),
        ],
        serial=0x4000 + index * 1000 + key * 10 + issue_no,
        not_before=not_before,
        not_after=not_before + timedelta(days=15 * 365),
        is_ca=True,
        crl_urls=(f"http://uc{index}.example.ru/cdp/key{key}.crl",),
        extra_extensions=extras,
    )
    return pki.issue(spec, key_pair)


def make_authority(
    index: int,
    keys: int = 2,
    certificates_per_key: int = 1,
    padding: int = 0,
    **overrides: object,
) -> TslAuthority:
    """A well-formed authority: *keys* keys of *certificates_per_key* certificates each.

    The status history holds an earlier suspension; *overrides* replace any field.
    """
    key_entries = tuple(
        TslKey(
            certificates=tuple(
                TslCertificate(ca_certificate(index, k, n, padding))
                for n in range(certificates_per_key)
            ),
            crl_urls=(
                f"http://uc{index}.example.ru/cdp/key{k}.crl",
                f"http://reserve.example.ru/uc{index}/key{k}.crl",
            ),
        )
        for k in range(keys)
    )
    start = pki.NOW - timedelta(days=3 * 365)
    authority = TslAuthority(
        name=f"Общество с ограниченной ответственностью «Тестовый УЦ {index}»",
        short_name=f"ТУЦ-{index}",
        inn=f"77{index:08d}",
        ogrn=f"10277{index:08d}",
        registry_number=str(900 + index),
        email=f"uc{index}@example.ru",
        info_url=f"http://uc{index}.example.ru/",
        keys=key_entries,
        status=TslStatus("Действует", start + timedelta(days=200)),
        history=(
            TslStatus("Действует", start, start + timedelta(days=100)),
            TslStatus("Приостановлена", start + timedelta(days=100), start + timedelta(days=200)),
        ),
    )
    return replace(authority, **overrides)  # type: ignore[arg-type]


@cache
def _alien() -> pki.Issued:
    return ca_certificate(9999)


# --------------------------------------------------------------------------- rendering


def format_datetime(moment: datetime, style: DateStyle) -> str:
    """A dateTime as the file writes it in *style*."""
    if style is DateStyle.UTC:
        return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    local = moment.astimezone(MSK)
    if style is DateStyle.NAIVE:
        return local.strftime("%Y-%m-%dT%H:%M:%S")
    return local.strftime("%Y-%m-%dT%H:%M:%S") + f".{local.microsecond:06d}0+03:00"


class _Writer:
    """Indented elements into a list of lines, leaving out what the authority omits."""

    def __init__(self, omit: frozenset[str], extra: bool) -> None:
        self.lines: list[str] = []
        self.depth = 1
        self.omit = omit
        self.extra = extra

    def leaf(self, name: str, text: str | None, raw: str = "") -> None:
        if text is None or name in self.omit:
            return
        self.lines.append(f"{'  ' * self.depth}<{name}>{escape(text)}{raw}</{name}>")

    def open(self, name: str) -> bool:
        if name in self.omit:
            return False
        self.lines.append(f"{'  ' * self.depth}<{name}>")
        self.depth += 1
        if self.extra:
            self.lines.append("  " * self.depth + EXTRA_ELEMENT)
        return True

    def close(self, name: str) -> None:
        self.depth -= 1
        self.lines.append(f"{'  ' * self.depth}</{name}>")


def _status(w: _Writer, status: TslStatus, style: TslStyle) -> None:
    if w.open("СтатусАккредитации"):
        w.leaf("Статус", status.text)
        w.leaf("ДействуетС", format_datetime(status.since, style.dates))
        if status.until is not None:
            w.leaf("ДействуетДо", format_datetime(status.until, style.dates))
        w.close("СтатусАккредитации")


@dataclass(frozen=True)
class _CertTexts:
    thumbprint: str
    issuer: str
    subject: str
    serial: str
    not_before: datetime
    not_after: datetime
    data: str


@cache
def _texts(der: bytes) -> _CertTexts:
    # Parsing and base64 once per certificate: large files repeat a few certificates.
    cert = Certificate.from_der(der)
    return _CertTexts(
        thumbprint=cert.thumbprint_sha1,
        issuer=cert.issuer.rfc4514(),
        subject=cert.subject.rfc4514(),
        serial=cert.serial_hex,
        not_before=cert.not_before,
        not_after=cert.not_after,
        data=base64.b64encode(der).decode("ascii"),
    )


def _certificate(w: _Writer, entry: TslCertificate, style: TslStyle) -> None:
    issued = _alien() if entry.fault is CertFault.WRONG_SKI else entry.issued
    texts = _texts(issued.der)
    thumbprint, data = texts.thumbprint, texts.data
    if entry.fault is CertFault.NOT_A_CERTIFICATE:
        der = pki.seq(encode_tlv(0x02, b"\x01"))
        thumbprint = hashlib.sha1(der, usedforsecurity=False).hexdigest().upper()
        data = base64.b64encode(der).decode("ascii")
    elif entry.fault is CertFault.WRONG_THUMBPRINT:
        thumbprint = thumbprint[:-1] + ("0" if thumbprint[-1] != "0" else "1")
    elif entry.fault is CertFault.BROKEN_BASE64:
        data = data[:40] + "!*" + data[40:]
    if not w.open("ДанныеСертификата"):
        return
    w.leaf("Отпечаток", thumbprint)
    w.leaf("КемВыдан", texts.issuer)
    w.leaf("КомуВыдан", texts.subject)
    w.leaf("СерийныйНомер", texts.serial)
    w.leaf("ПериодДействияС", format_datetime(texts.not_before, style.dates))
    w.leaf("ПериодДействияДо", format_datetime(texts.not_after, style.dates))
    w.leaf("Данные", None if entry.fault is CertFault.NO_DATA else data)
    w.close("ДанныеСертификата")


def _key(w: _Writer, key: TslKey, style: TslStyle) -> None:
    if not w.open("Ключ"):
        return
    identifier = key.identifier_text()
    w.leaf("ИдентификаторКлюча", identifier or None)
    if key.crl_urls and w.open("АдресаСписковОтзыва"):
        for url in key.crl_urls:
            w.leaf("Адрес", url)
        w.close("АдресаСписковОтзыва")
    if w.open("Сертификаты"):
        for entry in key.certificates:
            _certificate(w, entry, style)
        w.close("Сертификаты")
    w.close("Ключ")


def _complex(w: _Writer, index: int, keys: Iterable[TslKey], style: TslStyle) -> None:
    if not w.open("ПрограммноАппаратныйКомплекс"):
        return
    w.leaf("Псевдоним", f"ПАК {index}")
    w.leaf("КлассСредствЭП", "КС2")
    w.leaf("Адрес", "г. Москва, ул. Тестовая, д. 1")
    w.leaf("СредстваУЦ", "ПАК «КриптоПро УЦ» версии 2.0")
    if w.open("КлючиУполномоченныхЛиц"):
        for key in keys:
            _key(w, key, style)
        w.close("КлючиУполномоченныхЛиц")
    w.close("ПрограммноАппаратныйКомплекс")


def render_authority(authority: TslAuthority, style: TslStyle = TslStyle()) -> str:
    """The ``УдостоверяющийЦентр`` element of *authority*, indented, with a final newline."""
    w = _Writer(authority.omit, authority.extra)
    if not w.open("УдостоверяющийЦентр"):
        return ""
    raw_name = f"&{style.entity_reference};" if style.entity_reference else ""
    w.leaf("Название", authority.name, raw=raw_name)
    w.leaf("ЭлектроннаяПочта", authority.email)
    w.leaf("КраткоеНазвание", authority.short_name)
    w.leaf("АдресСИнформациейПоУЦ", authority.info_url)
    if w.open("Адрес"):
        w.leaf("Страна", "RU")
        w.leaf("Индекс", "101000")
        if w.open("Регион"):
            w.leaf("Код", "77")
            w.leaf("Название", "г. Москва")
            w.close("Регион")
        w.leaf("Город", "Москва")
        w.leaf("УлицаДом", "ул. Тестовая, д. 1")
        w.close("Адрес")
    w.leaf("ИНН", authority.inn)
    w.leaf("ОГРН", authority.ogrn)
    if w.open("ПрограммноАппаратныеКомплексы"):
        groups = (
            [[k] for k in authority.keys] if authority.one_complex_per_key else [authority.keys]
        )
        for n, group in enumerate(groups, start=1):
            _complex(w, n, group, style)
        w.close("ПрограммноАппаратныеКомплексы")
    _status(w, authority.status, style)
    if authority.history and w.open("ИсторияСтатусовАккредитации"):
        for status in authority.history:
            _status(w, status, style)
        w.close("ИсторияСтатусовАккредитации")
    w.leaf("РеестровыйНомер", authority.registry_number)
    w.close("УдостоверяющийЦентр")
    return "\n".join(w.lines) + "\n"


def _head(version: int, published_at: datetime, style: TslStyle) -> str:
    namespace = f" xmlns={quoteattr(style.namespace)}" if style.namespace else ""
    lines = ['<?xml version="1.0" encoding="utf-8"?>']
    if style.doctype:
        lines.append(style.doctype)
    lines.append(
        f'<{ROOT} xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
        f' xmlns:xsd="http://www.w3.org/2001/XMLSchema"{namespace}>'
    )
    if style.extra_root_elements:
        lines.append("  " + EXTRA_ELEMENT)
    lines.append(f"  <Версия>{version}</Версия>")
    lines.append(f"  <Дата>{format_datetime(published_at, style.dates)}</Дата>")
    if style.extra_root_elements:
        lines.append("  " + EXTRA_ELEMENT)
    return "\n".join(lines) + "\n"


def _tail(style: TslStyle) -> str:
    extra = "  " + EXTRA_ELEMENT + "\n" if style.extra_root_elements else ""
    return f"{extra}</{ROOT}>\n"


def write_trust_list(
    target: BinaryIO | os.PathLike[str] | str,
    authorities: Iterable[TslAuthority],
    *,
    version: int = 1000,
    published_at: datetime = pki.NOW,
    style: TslStyle = TslStyle(),
) -> int:
    """Write a list, one authority at a time (an iterator of authorities is never held).

    Returns the number of bytes written.
    """
    if not isinstance(target, str | os.PathLike):
        return _write(target, authorities, version, published_at, style)
    with Path(target).open("wb") as out:
        return _write(out, authorities, version, published_at, style)


def _write(
    out: BinaryIO,
    authorities: Iterable[TslAuthority],
    version: int,
    published_at: datetime,
    style: TslStyle,
) -> int:
    written = out.write(_head(version, published_at, style).encode())
    for authority in authorities:
        written += out.write(render_authority(authority, style).encode())
    written += out.write(_tail(style).encode())
    return written


def trust_list_xml(
    authorities: Iterable[TslAuthority],
    *,
    version: int = 1000,
    published_at: datetime = pki.NOW,
    style: TslStyle = TslStyle(),
) -> bytes:
    """A (small) list as bytes."""
    out = io.BytesIO()
    write_trust_list(out, authorities, version=version, published_at=published_at, style=style)
    return out.getvalue()


# --------------------------------------------------------------------------- hostile files


def billion_laughs(levels: int = 10) -> tuple[str, str]:
    """(doctype, entity name): the classic entity expansion bomb (10**levels "lol")."""
    lines = ['<!ENTITY lol0 "lol">']
    for n in range(1, levels):
        lines.append(f'<!ENTITY lol{n} "{f"&lol{n - 1};" * 10}">')
    body = "\n  ".join(lines)
    return f"<!DOCTYPE {ROOT} [\n  {body}\n]>", f"lol{levels - 1}"


def external_entity(path: os.PathLike[str] | str) -> tuple[str, str]:
    """(doctype, entity name): a SYSTEM entity that would read the local file *path*."""
    uri = Path(path).resolve().as_uri()
    return f'<!DOCTYPE {ROOT} [\n  <!ENTITY secret SYSTEM "{uri}">\n]>', "secret"


# --------------------------------------------------------------------------- large files


@dataclass
class LargeFile:
    """What :func:`write_large_trust_list` wrote."""

    size: int = 0
    authorities: int = 0
    certificates: int = 0


def write_large_trust_list(
    path: os.PathLike[str] | str,
    target_size: int,
    *,
    templates: int = 4,
    keys: int = 2,
    certificates_per_key: int = 2,
    padding: int = 0,
) -> LargeFile:
    """A list of at least *target_size* bytes, streamed to *path*.

    A few distinct authorities (*templates*) are repeated under new names and
    register numbers, so a large file costs few certificate signatures; *padding*
    makes each certificate that much fatter (fewer certificates per megabyte).
    """
    bases = [
        make_authority(i, keys=keys, certificates_per_key=certificates_per_key, padding=padding)
        for i in range(1, templates + 1)
    ]
    stats = LargeFile()
    style = TslStyle()
    with Path(path).open("wb") as out:
        stats.size += out.write(_head(1000, pki.NOW, style).encode())
        while stats.size < target_size:
            base = bases[stats.authorities % len(bases)]
            authority = replace(
                base,
                name=f"{base.name} № {stats.authorities}",
                registry_number=str(100_000 + stats.authorities),
            )
            stats.size += out.write(render_authority(authority, style).encode())
            stats.authorities += 1
            stats.certificates += sum(len(k.certificates) for k in authority.keys)
        stats.size += out.write(_tail(style).encode())
    return stats
