"""What the list of accredited CAs does to the CA directory.

* :func:`register_authority` (policy ``register = "accredited"``): every
  certificate of every key of a CA whose status is «Действует» becomes a
  directory row of source ``trust_list`` with the key's CRL URLs;
* :func:`register_listed_key`: the same for one key as the register describes
  it (for a decision that registers a listed key on its own);
* :func:`reconcile_flags`: after an import, a directory key whose SKI the
  list listed and no longer lists is flagged ``key_gone``; one whose CA is
  listed without «Действует» is flagged ``accreditation_lost``; a key the list
  vouches for again loses its flag. Keys of every source are flagged (the
  administrators must know), none is deleted or deactivated;
* :func:`alert_flags`: one alert per edition listing the newly flagged keys.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailbot.config import Config
from mailbot.dates import format_reply_datetime
from mailbot.directory.authorities import register_listed_ca
from mailbot.directory.models import AccreditedCa, AccreditedKey, CertificationAuthority
from mailbot.directory.subscribers import DirectoryError
from mailbot.log import get_logger
from mailbot.notices.alerts import queue_alert
from mailbot.notices.certificate_alerts import alert_texts, config_hint
from mailbot.notices.templates import AlertTemplates
from mailbot.pki.certificate import Certificate
from mailbot.pki.errors import PkiError
from mailbot.trustlist import AccreditedAuthority, StatusKind
from mailbot.trustlist.changes import CaRef, DirectoryChange, ImportReport, ListFlag
from mailbot.trustlist.register import ListedKey

log = get_logger(__name__)


def is_active(status_text: str) -> bool:
    """Whether a stored ``Статус`` says «Действует» (case-insensitive)."""
    return status_text.casefold() == StatusKind.ACTIVE.value.casefold()


def register_authority(
    session: Session,
    authority: AccreditedAuthority,
    version: int,
    now: dt.datetime,
    problems: list[str],
) -> list[DirectoryChange]:
    """Register every certificate of *authority* if it is accredited; the rows created.

    A certificate the directory refuses (not a CA, an invalid key) is added to
    *problems* and the rest goes on.
    """
    if authority.status.kind is not StatusKind.ACTIVE:
        return []
    ref = CaRef(authority.name, authority.registry_number, authority.status.text)
    created = []
    for key in authority.keys:
        for item in key.certificates:
            try:
                row, new = register_listed_ca(
                    session, item.certificate(), key.crl_urls, version, now
                )
            except (DirectoryError, PkiError) as exc:
                problems.append(f"«{authority.name}» key {key.key_identifier_hex}: {exc}")
                continue
            if new:
                created.append(_change(row, ref))
    return created


def register_listed_key(
    session: Session, key: ListedKey, now: dt.datetime
) -> list[CertificationAuthority]:
    """Register every certificate of one listed key (source ``trust_list``); the rows.

    For a decision that registers a key the list shows accredited
    (``auto_register_unknown``, ``quarantine retry``). Rows registered by hand
    are left as they are, a row an administrator deactivated stays so. A
    certificate the directory refuses (unreadable, not a CA) is skipped and
    logged: inside a letter's transaction an exception would fail the letter
    on every attempt, and the key's other certificates still count.
    """
    rows = []
    for der in key.certificates_der:
        try:
            certificate = Certificate.from_der(der)
            row, _created = register_listed_ca(
                session, certificate, key.crl_urls, key.listed_in.version, now
            )
        except (PkiError, DirectoryError) as exc:
            log.warning("listed CA certificate not registered", key=key.key_identifier_hex,
                        error=str(exc))  # fmt: skip
            continue
        rows.append(row)
    return rows


def reconcile_flags(session: Session, version: int, now: dt.datetime) -> list[DirectoryChange]:
    """Set or clear ``list_flag`` of every directory key by edition *version*; the newly flagged.

    A directory key whose SKI the list never listed is left alone.
    """
    listed: dict[str, list[tuple[int, AccreditedCa]]] = defaultdict(list)
    rows = session.execute(
        select(AccreditedKey.ski, AccreditedKey.last_version, AccreditedCa)
        .join(AccreditedKey.authority)
        .join(CertificationAuthority, CertificationAuthority.ski == AccreditedKey.ski)
    ).all()
    for ski, last_version, authority in rows:
        listed[ski].append((last_version, authority))
    flagged = []
    for row in session.scalars(
        select(CertificationAuthority).where(CertificationAuthority.ski.in_(list(listed)))
    ):
        entries = listed[row.ski or ""]
        present = [ca for last, ca in entries if last == version]
        accredited = [ca for ca in present if is_active(ca.status_text)]
        flag: ListFlag | None
        if accredited:
            flag, owner = None, accredited[0]
        elif present:
            flag, owner = "accreditation_lost", present[0]
        else:
            flag, owner = "key_gone", max(entries, key=lambda e: e[0])[1]
        if flag == row.list_flag:
            continue
        row.list_flag = flag
        row.list_flagged_at = now if flag else None
        if flag is not None:
            flagged.append(_change(row, _ref(owner)))
    session.flush()
    return flagged


def directory_change(session: Session, row: CertificationAuthority) -> DirectoryChange:
    """*row* as a report item, with the listed CA its SKI belongs to (the newest listing)."""
    owner = session.scalars(
        select(AccreditedCa)
        .join(AccreditedCa.keys)
        .where(AccreditedKey.ski == row.ski)
        .order_by(AccreditedKey.last_version.desc())
        .limit(1)
    ).first()
    return _change(row, _ref(owner) if owner is not None else None)


def alert_flags(session: Session, config: Config, report: ImportReport, now: dt.datetime) -> bool:
    """Queue the one alert about the keys *report* flagged; False if it was raised before."""
    texts = alert_texts(config)
    items = [item for item in report.flagged if _active(session, item.ca_id)]
    if not items:
        return False
    body = texts.render(
        "trust_list_flags",
        {
            "version": report.version,
            "published": format_reply_datetime(report.published_at, config.general.timezone),
            "count": len(items),
            "keys": "\n".join(_item_lines(texts, items)),
            "config": config_hint(config),
        },
    )
    alert = queue_alert(
        session,
        config,
        kind="trust_list_flags",
        dedup_key=f"trust-list-flags:{report.version}",
        subject=texts.subject("trust_list_flags", {"version": report.version, "count": len(items)}),
        body=body + "\n",
        now=now,
    )
    return alert is not None


def _item_lines(texts: AlertTemplates, items: Iterable[DirectoryChange]) -> list[str]:
    lines = []
    for item in items:
        listed = item.listed_as
        lines.append(
            texts.render(
                "trust_list_flags.item",
                {
                    "id": item.ca_id,
                    "name": item.name,
                    "ski": item.ski or "-",
                    "source": item.source,
                    "reason": texts.render(f"trust_list_flags.{item.flag}", {}),
                    "listed_name": listed.name if listed else "-",
                    "registry_number": (listed.registry_number or "-") if listed else "-",
                    "status": listed.status if listed else "-",
                },
            )
        )
    return lines


def _active(session: Session, ca_id: int) -> bool:
    row = session.get(CertificationAuthority, ca_id)
    return row is not None and row.active


def _ref(authority: AccreditedCa) -> CaRef:
    return CaRef(authority.name, authority.registry_number, authority.status_text)


def _change(row: CertificationAuthority, listed_as: CaRef | None) -> DirectoryChange:
    flag: ListFlag | None = row.list_flag  # type: ignore[assignment]
    return DirectoryChange(
        ca_id=row.id,
        name=row.name,
        ski=row.ski,
        thumbprint_sha1=row.thumbprint_sha1,
        source=row.source,
        flag=flag,
        listed_as=listed_as,
    )
