"""What the official list of accredited CAs (the Ministry's "TSL") says, as immutable values.

Every value here comes out of :mod:`mailbot.trustlist.reader` already checked:
a certificate is listed only if its DER parses, its SHA-1 matches the file's
``Отпечаток`` and its SubjectKeyIdentifier matches the key's
``ИдентификаторКлюча``. What failed a check is a :class:`Problem` instead.
All datetimes are aware and in UTC.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from mailbot.pki.certificate import Certificate


class StatusKind(StrEnum):
    """The accreditation status values the Ministry uses (``Статус``)."""

    ACTIVE = "Действует"
    TERMINATED = "Прекращена"
    SUSPENDED = "Приостановлена"
    ANNULLED = "Аннулирована"


_KINDS = {kind.value.casefold(): kind for kind in StatusKind}


@dataclass(frozen=True, slots=True)
class AccreditationStatus:
    """One accreditation status of a CA and the period it applies to.

    ``text`` is the file's ``Статус`` as written (whitespace collapsed), so a
    value this code does not know yet is kept rather than lost; ``kind`` is
    the known value it names, or ``None``.
    """

    text: str
    valid_from: datetime
    valid_to: datetime | None

    @property
    def kind(self) -> StatusKind | None:
        """The known status this text names (case-insensitive), or ``None``."""
        return _KINDS.get(self.text.casefold())


@dataclass(frozen=True, slots=True)
class AuthorityCertificate:
    """One CA certificate from the list; every field is read from the DER itself."""

    der: bytes = field(repr=False)
    #: Upper-case hex, no separators (as :attr:`Certificate.thumbprint_sha1`).
    thumbprint_sha1: str
    #: Upper-case hex of the serial's DER INTEGER bytes (as :attr:`Certificate.serial_hex`).
    serial_hex: str
    not_before: datetime
    not_after: datetime
    #: RFC 4514 strings of the certificate's names (not the file's КомуВыдан/КемВыдан).
    subject_text: str
    issuer_text: str

    @classmethod
    def from_certificate(cls, certificate: Certificate) -> AuthorityCertificate:
        """The list's value for a parsed certificate."""
        return cls(
            der=certificate.der,
            thumbprint_sha1=certificate.thumbprint_sha1,
            serial_hex=certificate.serial_hex,
            not_before=certificate.not_before,
            not_after=certificate.not_after,
            subject_text=certificate.subject.rfc4514(),
            issuer_text=certificate.issuer.rfc4514(),
        )

    def certificate(self) -> Certificate:
        """The parsed certificate (what :func:`mailbot.directory.authorities.register_ca` takes)."""
        return Certificate.from_der(self.der)


@dataclass(frozen=True, slots=True)
class AuthorityKey:
    """One key of a CA: its identifier, the CRLs it signs and the certificates of the key.

    A key listed under several hardware-software complexes (ПАК) appears once:
    its CRL URLs and certificates are merged in file order without repeats.
    """

    key_identifier: bytes
    crl_urls: tuple[str, ...]
    certificates: tuple[AuthorityCertificate, ...]

    @property
    def key_identifier_hex(self) -> str:
        """Upper-case hex, as the CA directory stores a SKI."""
        return self.key_identifier.hex().upper()


@dataclass(frozen=True, slots=True)
class AccreditedAuthority:
    """One accredited certification authority (``УдостоверяющийЦентр``)."""

    name: str
    short_name: str | None
    inn: str | None
    ogrn: str | None
    #: ``РеестровыйНомер``: the CA's number in the Ministry's register.
    registry_number: str | None
    email: str | None
    #: ``АдресСИнформациейПоУЦ``: the CA's web page.
    info_url: str | None
    #: ``СтатусАккредитации``: the current status.
    status: AccreditationStatus
    #: ``ИсторияСтатусовАккредитации``: earlier statuses, in file order.
    history: tuple[AccreditationStatus, ...]
    keys: tuple[AuthorityKey, ...]

    @property
    def certificates(self) -> tuple[AuthorityCertificate, ...]:
        """Every certificate of every key, in file order."""
        return tuple(c for key in self.keys for c in key.certificates)


class ProblemScope(StrEnum):
    """What a problem left out of the result."""

    #: The whole authority (no name, no readable current status).
    AUTHORITY = "authority"
    #: One entry of the status history.
    STATUS = "status"
    #: One key and its certificates (missing or non-hex ``ИдентификаторКлюча``).
    KEY = "key"
    #: One certificate (bad base64 or DER, thumbprint or SKI mismatch).
    CERTIFICATE = "certificate"


@dataclass(frozen=True, slots=True)
class Problem:
    """An entry of the list that failed a check and was left out; the rest still counts."""

    scope: ProblemScope
    #: 1-based position of the authority among the file's ``УдостоверяющийЦентр`` elements.
    authority_index: int
    #: Line of the file where that authority starts.
    authority_line: int
    authority_name: str | None
    registry_number: str | None
    #: ``ИдентификаторКлюча`` as written (key and certificate problems).
    key_identifier: str | None
    #: 1-based position of the certificate in its key's ``Сертификаты``.
    certificate_index: int | None
    #: ``Отпечаток`` as written, if the entry has one.
    thumbprint: str | None
    #: Why, in English, for the administrator.
    message: str

    def __str__(self) -> str:
        where = [f"authority #{self.authority_index} (line {self.authority_line})"]
        if self.authority_name:
            where.append(f"«{self.authority_name}»")
        if self.registry_number:
            where.append(f"register no. {self.registry_number}")
        if self.key_identifier is not None:
            where.append(f"key {self.key_identifier}")
        if self.certificate_index is not None:
            cert = f"certificate #{self.certificate_index}"
            if self.thumbprint:
                cert += f" ({self.thumbprint})"
            where.append(cert)
        return f"{', '.join(where)}: {self.message}"


@dataclass(frozen=True, slots=True)
class TrustListHeader:
    """The publication: ``Версия`` (grows with every publication) and ``Дата``."""

    version: int
    published_at: datetime


@dataclass(frozen=True, slots=True)
class AuthorityEntry:
    """One ``УдостоверяющийЦентр`` as read: its authority (``None``: rejected), its problems."""

    index: int
    line: int
    authority: AccreditedAuthority | None
    problems: tuple[Problem, ...]


@dataclass(frozen=True, slots=True)
class TrustList:
    """A whole list in memory (see :func:`mailbot.trustlist.reader.load_trust_list`)."""

    version: int
    published_at: datetime
    #: SHA-256 of the file's bytes, lower-case hex.
    sha256: str
    size: int
    authorities: tuple[AccreditedAuthority, ...]
    problems: tuple[Problem, ...]
