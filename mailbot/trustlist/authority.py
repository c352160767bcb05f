"""One ``УдостоверяющийЦентр`` subtree → an :class:`AuthorityEntry`, every certificate checked.

The text fields of a certificate entry (КемВыдан, СерийныйНомер, ...) are not
trusted: the DER in ``Данные`` is parsed, its SHA-1 must equal ``Отпечаток``
(when given) and its SubjectKeyIdentifier must equal the key's
``ИдентификаторКлюча``. An entry that fails is left out with a :class:`Problem`;
the rest of the authority still counts.
"""

from __future__ import annotations

import base64
import binascii
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import tzinfo

from mailbot.pki.certificate import Certificate
from mailbot.pki.errors import PkiError
from mailbot.trustlist.fields import parse_datetime, parse_hex, text_of
from mailbot.trustlist.model import (
    AccreditationStatus,
    AccreditedAuthority,
    AuthorityCertificate,
    AuthorityEntry,
    AuthorityKey,
    Problem,
    ProblemScope,
)

KEYS_PATH = "ПрограммноАппаратныеКомплексы/ПрограммноАппаратныйКомплекс/КлючиУполномоченныхЛиц/Ключ"
CERTIFICATES_PATH = "Сертификаты/ДанныеСертификата"
CRL_URLS_PATH = "АдресаСписковОтзыва/Адрес"
STATUS = "СтатусАккредитации"
HISTORY_PATH = "ИсторияСтатусовАккредитации/СтатусАккредитации"


class _Rejected(Exception):
    """An entry fails a check; the message says why (English, for the administrator)."""


@dataclass
class _KeyBuilder:
    """A key being merged from every complex (ПАК) that lists it."""

    identifier: bytes
    crl_urls: dict[str, None]
    certificates: dict[str, AuthorityCertificate]

    def build(self) -> AuthorityKey:
        return AuthorityKey(
            self.identifier, tuple(self.crl_urls), tuple(self.certificates.values())
        )


def _status(element: ET.Element, naive_timezone: tzinfo) -> AccreditationStatus:
    text = text_of(element, "Статус")
    if text is None:
        raise _Rejected("the status has no Статус")
    since = text_of(element, "ДействуетС")
    if since is None:
        raise _Rejected(f"status «{text}» has no ДействуетС (start date)")
    until = text_of(element, "ДействуетДо")
    try:
        return AccreditationStatus(
            text=text,
            valid_from=parse_datetime(since, naive_timezone),
            valid_to=None if until is None else parse_datetime(until, naive_timezone),
        )
    except ValueError as exc:
        raise _Rejected(f"status «{text}» has a bad date: {exc}") from None


def _certificate(entry: ET.Element, key_identifier: bytes) -> AuthorityCertificate:
    data = "".join((text_of(entry, "Данные") or "").split())
    if not data:
        raise _Rejected("the entry has no certificate (Данные is missing or empty)")
    try:
        der = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise _Rejected("Данные is not valid base64") from None
    try:
        certificate = Certificate.from_der(der)
    except PkiError as exc:
        raise _Rejected(f"Данные does not hold a readable certificate: {exc}") from None
    stated = text_of(entry, "Отпечаток")
    if stated is not None and "".join(stated.split()).upper() != certificate.thumbprint_sha1:
        raise _Rejected(
            f"Отпечаток {stated} is not the certificate's SHA-1 "
            f"({certificate.thumbprint_sha1}): the entry contradicts itself"
        )
    ski = certificate.subject_key_identifier
    if ski is None:
        raise _Rejected(
            "the certificate has no SubjectKeyIdentifier, so it cannot be the key's certificate"
        )
    if ski != key_identifier:
        raise _Rejected(
            f"the certificate's SubjectKeyIdentifier {ski.hex().upper()} is not "
            f"the key's ИдентификаторКлюча: it belongs to another key"
        )
    return AuthorityCertificate.from_certificate(certificate)


def read_authority(
    element: ET.Element, index: int, line: int, naive_timezone: tzinfo
) -> AuthorityEntry:
    """Check and convert one ``УдостоверяющийЦентр`` element (local names, as safe_xml builds)."""
    name = text_of(element, "Название")
    registry_number = text_of(element, "РеестровыйНомер")
    problems: list[Problem] = []

    def problem(
        scope: ProblemScope,
        message: str,
        key_identifier: str | None = None,
        certificate_index: int | None = None,
        thumbprint: str | None = None,
    ) -> Problem:
        return Problem(
            scope=scope,
            authority_index=index,
            authority_line=line,
            authority_name=name,
            registry_number=registry_number,
            key_identifier=key_identifier,
            certificate_index=certificate_index,
            thumbprint=thumbprint,
            message=message,
        )

    def rejected(why: str) -> AuthorityEntry:
        problems.append(problem(ProblemScope.AUTHORITY, why))
        return AuthorityEntry(index, line, None, tuple(problems))

    if name is None:
        return rejected("the authority has no Название")
    current = element.find(STATUS)
    if current is None:
        return rejected(f"the authority has no {STATUS} (current accreditation status)")
    try:
        status = _status(current, naive_timezone)
    except _Rejected as exc:
        return rejected(f"the current accreditation status is unreadable: {exc}")

    history: list[AccreditationStatus] = []
    for earlier in element.iterfind(HISTORY_PATH):
        try:
            history.append(_status(earlier, naive_timezone))
        except _Rejected as exc:
            problems.append(problem(ProblemScope.STATUS, str(exc)))

    keys: dict[bytes, _KeyBuilder] = {}
    for key in element.iterfind(KEYS_PATH):
        stated_id = text_of(key, "ИдентификаторКлюча")
        try:
            if stated_id is None:
                raise _Rejected("the key has no ИдентификаторКлюча; its certificates are skipped")
            try:
                identifier = parse_hex(stated_id)
            except ValueError:
                raise _Rejected(
                    "ИдентификаторКлюча is not hex; its certificates are skipped"
                ) from None
        except _Rejected as exc:
            problems.append(problem(ProblemScope.KEY, str(exc), stated_id))
            continue
        merged = keys.setdefault(identifier, _KeyBuilder(identifier, {}, {}))
        for url in key.iterfind(CRL_URLS_PATH):
            text = text_of(url, ".")
            if text is not None:
                merged.crl_urls[text] = None
        for position, entry in enumerate(key.iterfind(CERTIFICATES_PATH), start=1):
            try:
                certificate = _certificate(entry, identifier)
            except _Rejected as exc:
                problems.append(
                    problem(
                        ProblemScope.CERTIFICATE,
                        str(exc),
                        stated_id,
                        position,
                        text_of(entry, "Отпечаток"),
                    )
                )
                continue
            merged.certificates.setdefault(certificate.thumbprint_sha1, certificate)

    authority = AccreditedAuthority(
        name=name,
        short_name=text_of(element, "КраткоеНазвание"),
        inn=text_of(element, "ИНН"),
        ogrn=text_of(element, "ОГРН"),
        registry_number=registry_number,
        email=text_of(element, "ЭлектроннаяПочта"),
        info_url=text_of(element, "АдресСИнформациейПоУЦ"),
        status=status,
        history=tuple(history),
        keys=tuple(k.build() for k in keys.values()),
    )
    return AuthorityEntry(index, line, authority, tuple(problems))
