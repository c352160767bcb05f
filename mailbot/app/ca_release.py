"""Registering a CA and releasing the certificates that waited for it.

The one code path of ``mailbot ca add`` and the console's quarantine page:

* :func:`ca_certificates` reads the CA certificates an administrator gives
  (a file's bytes: DER, PEM or PKCS#7);
* :func:`register_authorities` puts them in the CA directory (the caller commits);
* :func:`register_listed` does the same for a key the list of accredited CAs
  describes (the console's "register from the list");
* :func:`open_review` and :func:`release` then decide and answer every pending
  certificate of those CAs, each in its own transaction
  (:class:`mailbot.app.quarantine.QuarantineReview`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence

from sqlalchemy.orm import Session, sessionmaker

from mailbot.app.adapters import parsed
from mailbot.app.assembly import crl_source_factory
from mailbot.app.quarantine import Decision, QuarantineReview, Witness, pending_for_ca
from mailbot.app.trust_list_policy import register_listed_key
from mailbot.config import Config
from mailbot.directory.authorities import register_ca
from mailbot.directory.models import CertificationAuthority
from mailbot.directory.subscribers import DirectoryError
from mailbot.notices.templates import load_templates
from mailbot.pki.certificate import Certificate
from mailbot.pki.load import load_certificates
from mailbot.trustlist.register import ListedKey


def ca_certificates(data: bytes) -> list[Certificate]:
    """The CA certificates in *data*: PkiError when unreadable, DirectoryError when none."""
    authorities = [c for c in load_certificates(data) if c.is_ca]
    if not authorities:
        raise DirectoryError("no CA certificate in the file")
    return authorities


def register_authorities(
    session: Session, authorities: Sequence[Certificate], crl_urls: Sequence[str] = ()
) -> list[tuple[CertificationAuthority, bool]]:
    """Register (or re-activate) each CA certificate by hand; (row, created) each.

    The caller commits, then calls :func:`release`.
    """
    return [register_ca(session, certificate, crl_urls) for certificate in authorities]


def register_listed(session: Session, key: ListedKey, now: dt.datetime) -> list[Certificate]:
    """Register the listed key's certificates (source ``trust_list``); those now in the directory.

    DirectoryError when none could be registered (the caller commits otherwise).
    """
    rows = register_listed_key(session, key, now)
    certificates = [c for c in (parsed(row) for row in rows if row.active) if c is not None]
    if not certificates:
        raise DirectoryError(f"no certificate of listed key {key.key_identifier_hex} registered")
    return certificates


def pending_for_cas(session: Session, authorities: Sequence[Certificate]) -> list[int]:
    """Ids of the pending certificates issued under any of *authorities*, once each."""
    return list(dict.fromkeys(i for ca in authorities for i in pending_for_ca(session, ca)))


def open_review(
    config: Config,
    sessions: sessionmaker[Session],
    clock: Callable[[], dt.datetime] | None = None,
    witness: Witness | None = None,
) -> QuarantineReview:
    """The review that decides quarantined certificates (raises TemplateError on bad templates)."""
    templates = load_templates(config.templates_dir)
    return QuarantineReview(
        config, sessions, templates, crl_source_factory(config), clock or system_now,
        witness=witness,
    )  # fmt: skip


def system_now() -> dt.datetime:
    """The current time, aware, in UTC (the CLI decides "now")."""
    return dt.datetime.now(dt.UTC)


def release(
    review: QuarantineReview, authorities: Sequence[Certificate], decided_by: str
) -> list[Decision]:
    """Decide and answer every pending certificate of *authorities* (after their registration)."""
    with review.sessions() as session:
        ids = pending_for_cas(session, authorities)
        session.rollback()  # no read transaction stays open while others write
    return review.recheck(ids, decided_by)
