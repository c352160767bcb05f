"""The CA directory (справочник УЦ): registering, listing and retiring CA certificates."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailbot.directory.models import CertificationAuthority, utcnow
from mailbot.directory.subscribers import DirectoryError
from mailbot.pki.certificate import Certificate
from mailbot.pki.public_key import KeyStatus


def register_ca(
    session: Session,
    certificate: Certificate,
    crl_urls: Sequence[str] = (),
    source: str = "manual",
    now: dt.datetime | None = None,
) -> tuple[CertificationAuthority, bool]:
    """Register a CA certificate (or re-activate and refresh it). Returns (row, created).

    The certificate must be a CA (basicConstraints cA) with a valid public key.
    Its own CRL distribution points are recorded together with *crl_urls*.
    An administrator registering (``manual``) a certificate the list of
    accredited CAs registered takes it over: it becomes ``manual``, out of the
    list's reach.
    """
    _check_ca(certificate)
    moment = now or utcnow()
    urls = list(dict.fromkeys([*crl_urls, *certificate.crl_urls]))
    row = find_ca(session, certificate.thumbprint_sha1)
    if row is not None:
        row.active = True
        if source == "manual" and row.source == "trust_list":
            row.source = "manual"
        row.crl_urls = list(dict.fromkeys([*row.crl_urls, *urls]))
        row.updated_at = moment
        return row, False
    return _add_ca(session, certificate, urls, source, None, moment), True


def register_listed_ca(
    session: Session,
    certificate: Certificate,
    crl_urls: Sequence[str],
    list_version: int,
    now: dt.datetime | None = None,
) -> tuple[CertificationAuthority, bool]:
    """Register a CA certificate from the list of accredited CAs. Returns (row, created).

    A new row has source ``trust_list`` and *list_version*. A row the list
    registered before gets the list's CRL URLs (the key's, then the
    certificate's own: the list is the authority for them), *list_version*,
    and its ``list_flag`` cleared; its ``active`` stays as an administrator
    left it. A row registered by hand or learned (``manual``, ``automatic``)
    is never changed here. Raises :class:`DirectoryError` as :func:`register_ca`.
    """
    _check_ca(certificate)
    moment = now or utcnow()
    urls = list(dict.fromkeys([*crl_urls, *certificate.crl_urls]))
    row = find_ca(session, certificate.thumbprint_sha1)
    if row is None:
        return _add_ca(session, certificate, urls, "trust_list", list_version, moment), True
    if row.source == "trust_list":
        row.crl_urls = urls
        row.list_version = list_version
        row.list_flag = None
        row.list_flagged_at = None
        row.updated_at = moment
    return row, False


def find_ca(session: Session, thumbprint_sha1: str) -> CertificationAuthority | None:
    """The directory's row of the CA certificate with this SHA-1 thumbprint, if any."""
    return session.scalar(
        select(CertificationAuthority).where(
            CertificationAuthority.thumbprint_sha1 == thumbprint_sha1
        )
    )


def _check_ca(certificate: Certificate) -> None:
    """:class:`DirectoryError` unless *certificate* can serve as a registered CA."""
    if not certificate.is_ca:
        raise DirectoryError("not a CA certificate (basicConstraints cA is not set)")
    key = certificate.public_key_check
    if key.status is KeyStatus.INVALID:
        # Such a key can verify nothing; it must never reach the signature math.
        raise DirectoryError(
            f"CA certificate {certificate.thumbprint_sha1} refused: "
            f"its public key is invalid ({key.detail})"
        )


def _add_ca(
    session: Session,
    certificate: Certificate,
    urls: list[str],
    source: str,
    list_version: int | None,
    moment: dt.datetime,
) -> CertificationAuthority:
    ski = certificate.subject_key_identifier
    subject = certificate.subject
    row = CertificationAuthority(
        name=certificate.subject_cn or subject.get("O") or subject.rfc4514(),
        subject_dn=certificate.subject.rfc4514(),
        subject_der_hex=certificate.subject.der.hex(),
        ski=ski.hex().upper() if ski else None,
        certificate_der=certificate.der,
        thumbprint_sha1=certificate.thumbprint_sha1,
        not_before=certificate.not_before,
        not_after=certificate.not_after,
        crl_urls=urls,
        aia_urls=list(certificate.ca_issuer_urls),
        active=True,
        source=source,
        list_version=list_version,
        created_at=moment,
        updated_at=moment,
    )
    session.add(row)
    session.flush()
    return row


def get_ca(session: Session, ca_id: int) -> CertificationAuthority:
    """The CA with this id, or :class:`DirectoryError`."""
    row = session.get(CertificationAuthority, ca_id)
    if row is None:
        raise DirectoryError(f"no CA with id {ca_id}")
    return row


def set_ca_active(session: Session, ca_id: int, active: bool) -> CertificationAuthority:
    """Trust CA *ca_id* again, or stop trusting it (its certificates then count as from an
    unknown CA); :class:`DirectoryError` when there is no such CA."""
    row = get_ca(session, ca_id)
    row.active = active
    return row


def list_cas(session: Session) -> Sequence[CertificationAuthority]:
    """Every registered CA, by name then validity."""
    return session.scalars(
        select(CertificationAuthority).order_by(
            CertificationAuthority.name, CertificationAuthority.not_before
        )
    ).all()
