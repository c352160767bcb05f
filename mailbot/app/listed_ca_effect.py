"""Registering a CA key from the list of accredited CAs for one letter (``auto_register_unknown``).

The certificate checks (:func:`mailbot.regulation.add_cert.decide_add_cert`)
decide that an unregistered key is accredited in the list and that one of its
listed certificates verifies the participant's signature; this effect writes
that into the CA directory, in the caller's transaction: every certificate of
the key, marked ``source = "trust_list"`` with the list's version. A certificate
an administrator deactivated stays so; one already registered keeps its source.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailbot.directory.authorities import register_ca
from mailbot.directory.models import CertificationAuthority
from mailbot.directory.subscribers import DirectoryError
from mailbot.log import get_logger
from mailbot.pki.certificate import Certificate
from mailbot.pki.errors import PkiError
from mailbot.trustlist.register import ListedKey

log = get_logger(__name__)


def register_listed_key(session: Session, listed: ListedKey, now: dt.datetime) -> dict[str, Any]:
    """Register the certificates of *listed*'s key; returns the journal's note on it."""
    registered: list[str] = []
    for der in listed.certificates_der:
        try:
            certificate = Certificate.from_der(der)
        except PkiError:
            continue
        existing = session.scalar(
            select(CertificationAuthority).where(
                CertificationAuthority.thumbprint_sha1 == certificate.thumbprint_sha1
            )
        )
        if existing is not None and not existing.active:
            continue  # deactivated by an administrator: the list does not bring it back
        try:
            row, created = register_ca(
                session, certificate, listed.crl_urls, source="trust_list", now=now
            )
        except DirectoryError as exc:
            log.warning(
                "listed CA certificate not registered",
                thumbprint=certificate.thumbprint_sha1,
                error=str(exc),
            )
            continue
        if created:
            row.list_version = listed.listed_in.version
        registered.append(certificate.thumbprint_sha1)
    log.info("CA key registered from the trust list", key=listed.key_identifier_hex,
             list_version=listed.listed_in.version, certificates=len(registered))  # fmt: skip
    return {
        "key": listed.key_identifier_hex,
        "authority": listed.authority_name,
        "registry_number": listed.registry_number,
        "status": listed.status.text,
        "list_version": listed.listed_in.version,
        "registered": registered,
    }
