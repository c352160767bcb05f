"""The CA directory as people read it: ``mailbot ca list|show`` and the console's CA pages.

One row per registered CA certificate with its origin (by hand, learned, or
from the list of accredited CAs), what the current list says about its key,
and the list's data for the details; plus the subscribers' certificates
issued under each CA and the accredited-CA list itself (its edition and CAs).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, selectinload

from mailbot.app.adapters import DbAccreditationRegister
from mailbot.directory.models import (
    AccreditedCa,
    AccreditedCertificate,
    AccreditedKey,
    CertificateRecord,
    CertificationAuthority,
)
from mailbot.trustlist.register import ListedKey

#: ``ca list``'s words for a row's source.
SOURCE_NAMES = {"manual": "hand", "automatic": "auto"}


def origin(row: CertificationAuthority) -> str:
    """``hand``, ``auto`` or ``list vN``."""
    if row.source == "trust_list":
        return f"list v{row.list_version}" if row.list_version is not None else "list"
    return SOURCE_NAMES.get(row.source, row.source)


def listed_key(session: Session, row: CertificationAuthority) -> ListedKey | None:
    """What the current list says about *row*'s key (None: not listed, or no list)."""
    if not row.ski:
        return None
    return DbAccreditationRegister(session).key(bytes.fromhex(row.ski))


def accreditation(row: CertificationAuthority, listed: ListedKey | None) -> str:
    """The key's accreditation for ``ca list``: the CA's status, or why there is none."""
    if listed is None:
        text = "not listed"
    elif not listed.present:
        text = f"gone from the list (last in v{listed.listed_in.version})"
    else:
        text = listed.status.text
    return f"{text} [flag: {row.list_flag}]" if row.list_flag else text


def list_details(row: CertificationAuthority, listed: ListedKey | None) -> dict[str, Any]:
    """The list's data about *row* for ``ca show``."""
    details: dict[str, Any] = {
        "list_flag": row.list_flag,
        "list_flagged_at": row.list_flagged_at.isoformat() if row.list_flagged_at else None,
    }
    if listed is None:
        return details
    return details | {
        "listed_as": listed.authority_name,
        "registry_number": listed.registry_number,
        "inn": listed.inn,
        "ogrn": listed.ogrn,
        "status_since": listed.status.valid_from.isoformat(),
        "status_until": listed.status.valid_to.isoformat() if listed.status.valid_to else None,
        "list_crl_urls": " ".join(listed.crl_urls),
        "listed_in": listed.listed_in.version,
        "status_history": [
            f"{s.text} {s.valid_from.date().isoformat()}"
            f" - {s.valid_to.date().isoformat() if s.valid_to else '...'}"
            for s in listed.history
        ],
    }


def ca_fields(
    session: Session, row: CertificationAuthority, details: bool = False
) -> dict[str, Any]:
    """``ca list``'s columns of *row* (with *details*, ``ca show``'s lines too)."""
    listed = listed_key(session, row)
    extra = list_details(row, listed) if details else {}
    return extra | {
        "id": row.id,
        "name": row.name,
        "ski": row.ski,
        "not_before": row.not_before.date().isoformat(),
        "not_after": row.not_after.date().isoformat(),
        "active": row.active,
        "source": row.source,
        "list_version": row.list_version,
        "origin": origin(row),
        "accreditation": accreditation(row, listed),
        "crl_urls": " ".join(row.crl_urls),
        "subject": row.subject_dn,
        "thumbprint_sha1": row.thumbprint_sha1,
        "aia_urls": " ".join(row.aia_urls),
    }


def certificate_counts(session: Session) -> dict[int, int]:
    """How many subscribers' certificates are registered under each CA, by CA id."""
    rows = session.execute(
        select(CertificateRecord.ca_id, func.count(CertificateRecord.id))
        .where(CertificateRecord.ca_id.is_not(None))
        .group_by(CertificateRecord.ca_id)
    )
    return {ca_id: int(count) for ca_id, count in rows if ca_id is not None}


def certificates_of(
    session: Session, ca_id: int, limit: int, offset: int = 0
) -> Sequence[CertificateRecord]:
    """The subscribers' certificates issued by CA *ca_id*, newest registration first."""
    return session.scalars(
        select(CertificateRecord)
        .where(CertificateRecord.ca_id == ca_id)
        .order_by(CertificateRecord.registered_at.desc(), CertificateRecord.id.desc())
        .limit(limit)
        .offset(offset)
    ).all()


@dataclass(frozen=True)
class ListCounts:
    """The size of the current list: its CAs (all, and those still listed), keys, certificates."""

    authorities: int
    listed: int
    keys: int
    certificates: int


def list_counts(session: Session, version: int) -> ListCounts:
    """The counts of the accredited-CA tables, *version* being the current edition."""

    def count(query: Any) -> int:
        return int(session.scalar(query) or 0)

    return ListCounts(
        authorities=count(select(func.count(AccreditedCa.id))),
        listed=count(
            select(func.count(AccreditedCa.id)).where(AccreditedCa.last_version >= version)
        ),
        keys=count(select(func.count(AccreditedKey.id))),
        certificates=count(select(func.count(AccreditedCertificate.id))),
    )


def accredited_cas(
    session: Session, search: str | None, limit: int, offset: int = 0
) -> Sequence[AccreditedCa]:
    """The list's CAs by name, those whose name, registry number, INN or OGRN contain *search*."""
    query = (
        select(AccreditedCa)
        .options(selectinload(AccreditedCa.keys))
        .order_by(AccreditedCa.name, AccreditedCa.id)
    )
    if search:
        query = query.where(
            or_(
                AccreditedCa.name.icontains(search, autoescape=True),
                AccreditedCa.short_name.icontains(search, autoescape=True),
                AccreditedCa.registry_number.icontains(search, autoescape=True),
                AccreditedCa.inn.icontains(search, autoescape=True),
                AccreditedCa.ogrn.icontains(search, autoescape=True),
            )
        )
    return session.scalars(query.limit(limit).offset(offset)).all()


def is_gone(authority: AccreditedCa, version: int) -> bool:
    """Whether *authority* is no longer in the current edition *version*."""
    return authority.last_version < version
