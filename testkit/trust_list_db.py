"""TEST-ONLY: put a list of accredited CAs into the trust-list tables, as if imported.

Stand-in for the real importer (``mailbot ca import-tsl``) in tests of the
decisions that read those tables (:class:`mailbot.app.adapters.DbAccreditationRegister`):
one call stores one edition with every authority, key and certificate. It
does no diffing, flagging or CA-directory registration; once the importer is
on main, tests may call it instead and this module can go.
"""

from __future__ import annotations

import io
from collections.abc import Iterable

from sqlalchemy.orm import Session

from mailbot.app.adapters import status_item
from mailbot.directory.models import (
    AccreditedCa,
    AccreditedCertificate,
    AccreditedKey,
    TrustListEdition,
)
from mailbot.trustlist import load_trust_list
from mailbot.trustlist.model import TrustList
from testkit import trust_list as tl


def store_trust_list_for_tests(session: Session, trust_list: TrustList) -> TrustListEdition:
    """Store *trust_list* as a new edition (the caller commits); authorities must be new."""
    edition = TrustListEdition(
        version=trust_list.version,
        published_at=trust_list.published_at,
        sha256=trust_list.sha256,
        size=trust_list.size,
        source="testkit",
    )
    session.add(edition)
    version = trust_list.version
    for number, authority in enumerate(trust_list.authorities):
        row = AccreditedCa(
            identity=f"reg:{authority.registry_number}" if authority.registry_number
            else f"test:{version}:{number}",
            name=authority.name,
            short_name=authority.short_name,
            inn=authority.inn,
            ogrn=authority.ogrn,
            registry_number=authority.registry_number,
            email=authority.email,
            info_url=authority.info_url,
            status_text=authority.status.text,
            status_from=authority.status.valid_from,
            status_to=authority.status.valid_to,
            history=[status_item(s) for s in authority.history],
            last_version=version,
            first_version=version,
        )  # fmt: skip
        for key in authority.keys:
            key_row = AccreditedKey(
                ski=key.key_identifier_hex,
                crl_urls=list(key.crl_urls),
                last_version=version,
                first_version=version,
            )
            key_row.certificates = [
                AccreditedCertificate(
                    thumbprint_sha1=c.thumbprint_sha1,
                    certificate_der=c.der,
                    not_before=c.not_before,
                    not_after=c.not_after,
                    subject_text=c.subject_text,
                )
                for c in key.certificates
            ]
            row.keys.append(key_row)
        session.add(row)
    session.flush()
    return edition


def store_authorities_for_tests(
    session: Session, authorities: Iterable[tl.TslAuthority], version: int = 1000
) -> TrustList:
    """Render *authorities* as a list file, read it back and store it (the caller commits)."""
    trust_list = load_trust_list(io.BytesIO(tl.trust_list_xml(authorities, version=version)))
    store_trust_list_for_tests(session, trust_list)
    return trust_list
