"""What each registered CA's cached CRL is, for the metrics and the periodic report.

Read from the database (which CAs are active) and the CRL cache (their current
CRL) each time it is asked, so a CA registered from the command line, a CRL
dropped by hand or ingested for a letter shows at once, and a deactivated CA
drops out.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from mailbot.app.adapters import parsed
from mailbot.directory.models import CertificationAuthority
from mailbot.pki.crl_store import CrlStore
from mailbot.pki.revocation_index import IndexMeta


@dataclass(frozen=True)
class CaCrl:
    """The current cached CRL of one active CA (both dates None when there is none)."""

    ca_name: str
    this_update: dt.datetime | None
    next_update: dt.datetime | None

    def stale_at(self, now: dt.datetime) -> bool:
        """No CRL at all, or one whose nextUpdate has passed by *now*."""
        if self.this_update is None:
            return True
        return self.next_update is not None and self.next_update <= now


def current_crls(sessions: sessionmaker[Session], store: CrlStore) -> list[CaCrl]:
    """The current CRL of every active CA certificate, in the directory's order.

    A CA whose certificate no longer parses counts as one without a CRL.
    """
    with sessions() as session:
        rows: Sequence[CertificationAuthority] = session.scalars(
            select(CertificationAuthority)
            .where(CertificationAuthority.active.is_(True))
            .order_by(CertificationAuthority.name, CertificationAuthority.id)
        ).all()
        return [ca_crl(store, row) for row in rows]


def current_meta(store: CrlStore, row: CertificationAuthority) -> IndexMeta | None:
    """What the cache knows about CA *row*'s current CRL (None: none, or the CA does not parse)."""
    certificate = parsed(row)
    index = store.current(certificate) if certificate is not None else None
    return index.meta if index is not None else None


def ca_crl(store: CrlStore, row: CertificationAuthority) -> CaCrl:
    """The current cached CRL of CA *row* (active or not)."""
    meta = current_meta(store, row)
    if meta is None:
        return CaCrl(row.name, None, None)
    return CaCrl(row.name, meta.this_update_dt, meta.next_update_dt)


def crl_ages(
    sessions: sessionmaker[Session], store: CrlStore, now: dt.datetime | None = None
) -> dict[str, float]:
    """Seconds since thisUpdate of the current CRL of every active CA, by CA name.

    A CA with no cached CRL (or whose certificate no longer parses) is
    ``math.inf``: no CRL is older than any stale one, so an age alert fires for
    it too. CAs sharing a name (a renewed CA certificate) report the oldest.
    """
    moment = now or dt.datetime.now(dt.UTC)
    ages: dict[str, float] = {}
    for crl in current_crls(sessions, store):
        age = (
            max((moment - crl.this_update).total_seconds(), 0.0)
            if crl.this_update is not None
            else math.inf
        )
        ages[crl.ca_name] = max(age, ages.get(crl.ca_name, 0.0))
    return ages


def stale_crls(sessions: sessionmaker[Session], store: CrlStore, now: dt.datetime) -> list[CaCrl]:
    """The active CAs with no current CRL at *now* (none cached, or past its nextUpdate)."""
    return [crl for crl in current_crls(sessions, store) if crl.stale_at(now)]
