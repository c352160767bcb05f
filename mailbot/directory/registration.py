"""Steps 10-11: install the certificate, register it, update the directories.

Everything here runs inside the caller's transaction. The store file is
written first; if anything later fails (or the commit does), the caller
discards the file with :meth:`CertificateStore.discard` when
:attr:`Registration.stored_created` is true, so nothing half-written stays.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from mailbot.directory.ca_rows import ca_row
from mailbot.directory.certstore import CertificateStore, InstallError
from mailbot.directory.models import (
    CertificateRecord,
    CertificationAuthority,
    Subscriber,
)
from mailbot.identifiers import IdentifierError, normalise_inn, normalise_ogrn, normalise_snils
from mailbot.pki.certificate import Certificate

# Built once (it runs for every certificate letter): building a statement costs CPU.
_BY_THUMBPRINT = select(CertificateRecord).where(
    CertificateRecord.thumbprint_sha1 == bindparam("thumbprint")
)


@dataclass(frozen=True)
class Registration:
    """The registered certificate's row and whether this call wrote the store file."""

    row: CertificateRecord
    stored_created: bool
    already_registered: bool


def register_certificate(
    session: Session,
    store: CertificateStore,
    certificate: Certificate,
    ca: Certificate,
    subscriber_id: int,
    letter_id: int | None,
    now: dt.datetime,
) -> Registration:
    """Install and register *certificate* for the subscriber; raises :class:`InstallError`."""
    existing = session.scalar(_BY_THUMBPRINT, {"thumbprint": certificate.thumbprint_sha1})
    if existing is not None and existing.subscriber_id != subscriber_id:
        raise InstallError("taken_by_other")
    if existing is not None and store.path_for(certificate.thumbprint_sha1).is_file():
        # The same certificate again: success again, no duplicate, no second install.
        update_subscriber_from_certificate(session, subscriber_id, certificate, now)
        refresh_ca(session, ca, certificate, now)
        return Registration(existing, stored_created=False, already_registered=True)
    stored = store.install(certificate.der, certificate.thumbprint_sha1, certificate.serial_hex)
    ca_row = refresh_ca(session, ca, certificate, now)
    if existing is None:
        existing = CertificateRecord(
            subscriber_id=subscriber_id,
            ca_id=ca_row.id if ca_row is not None else None,
            serial=certificate.serial_hex,
            issuer_dn=certificate.issuer.rfc4514(),
            subject_dn=certificate.subject.rfc4514(),
            subject_cn=certificate.subject_cn,
            snils=_snils(certificate),
            not_before=certificate.not_before,
            not_after=certificate.not_after,
            thumbprint_sha1=certificate.thumbprint_sha1,
            thumbprint_sha256=certificate.fingerprint_sha256,
            store_path=str(stored.path),
            registered_at=now,
            letter_id=letter_id,
            status="valid",
        )
        session.add(existing)
    else:
        existing.store_path = str(stored.path)
    update_subscriber_from_certificate(session, subscriber_id, certificate, now)
    session.flush()
    return Registration(existing, stored_created=stored.created, already_registered=False)


def _snils(certificate: Certificate) -> str | None:
    try:
        return normalise_snils(certificate.snils) if certificate.snils else None
    except IdentifierError:
        return "".join(ch for ch in certificate.snils or "" if ch.isdigit()) or None


def update_subscriber_from_certificate(
    session: Session, subscriber_id: int, certificate: Certificate, now: dt.datetime
) -> None:
    """Certificate data overrides manual entries; absent fields never blank existing ones."""
    subscriber = session.get(Subscriber, subscriber_id)
    if subscriber is None:  # pragma: no cover - the gate found it moments ago
        raise InstallError("no_subscriber")
    organisation = subscriber.organisation
    taken: dict[str, str] = {}

    def take(target: object, attribute: str, value: str | None, label: str) -> None:
        if value and getattr(target, attribute) != value:
            setattr(target, attribute, value)
        if value:
            taken[label] = certificate.thumbprint_sha1

    subject = certificate.subject
    take(subscriber, "surname", subject.get("SN"), "surname")
    take(subscriber, "given_names", subject.get("G") or subject.get("GN"), "given_names")
    take(subscriber, "title", subject.get("T"), "title")
    take(subscriber, "snils", _snils(certificate), "snils")
    take(subscriber, "inn", _valid(normalise_inn, certificate.inn, personal=True), "inn")
    take(organisation, "name", subject.get("O"), "organisation.name")
    organisation_inn = certificate.innle or _legacy_organisation_inn(certificate.inn)
    take(organisation, "inn", _valid(normalise_inn, organisation_inn), "organisation.inn")
    take(organisation, "ogrn", _valid(normalise_ogrn, certificate.ogrn), "organisation.ogrn")
    if taken:
        subscriber.certificate_fields = {**subscriber.certificate_fields, **taken}
        subscriber.certificate_fields_at = now


def _legacy_organisation_inn(inn: str | None) -> str | None:
    # Before 2021 an organisation's INN was written into INN as "00" + 10 digits.
    return inn[2:] if inn and len(inn) == 12 and inn.startswith("00") else None


def _valid(
    normalise: Callable[[str], str], value: str | None, personal: bool = False
) -> str | None:
    if not value:
        return None
    if personal and len(value) == 12 and value.startswith("00"):
        return None  # an organisation's INN in the legacy form, not the person's
    try:
        return normalise(value)
    except IdentifierError:
        return None


def refresh_ca(
    session: Session, ca: Certificate, certificate: Certificate, now: dt.datetime
) -> CertificationAuthority | None:
    """Add the certificate's CRL distribution points and AIA URLs to its CA's record."""
    row = ca_row(session, ca.thumbprint_sha1)
    if row is None:
        return None
    crl_urls = list(dict.fromkeys([*row.crl_urls, *certificate.crl_urls]))
    aia_urls = list(dict.fromkeys([*row.aia_urls, *certificate.ca_issuer_urls]))
    if crl_urls != row.crl_urls or aia_urls != row.aia_urls:
        row.crl_urls = crl_urls
        row.aia_urls = aia_urls
        row.updated_at = now
    return row
