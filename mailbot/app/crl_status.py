"""How old each registered CA's cached CRL is, for the metrics.

Read from the database (which CAs are active) and the CRL cache (their current
CRL) each time it is asked, so a CA registered from the command line, a CRL
dropped by hand or ingested for a letter shows at once, and a deactivated CA
drops out.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from mailbot.app.adapters import parsed
from mailbot.directory.models import CertificationAuthority
from mailbot.pki.crl_store import CrlStore


def crl_ages(
    sessions: sessionmaker[Session], store: CrlStore, now: dt.datetime | None = None
) -> dict[str, float]:
    """Seconds since thisUpdate of the current CRL of every active CA, by CA name.

    A CA with no cached CRL (or whose certificate no longer parses) is
    ``math.inf``: no CRL is older than any stale one, so an age alert fires for
    it too. CAs sharing a name (a renewed CA certificate) report the oldest.
    """
    moment = now or dt.datetime.now(dt.UTC)
    with sessions() as session:
        rows: Sequence[CertificationAuthority] = session.scalars(
            select(CertificationAuthority).where(CertificationAuthority.active.is_(True))
        ).all()
        ages: dict[str, float] = {}
        for row in rows:
            certificate = parsed(row)
            index = store.current(certificate) if certificate is not None else None
            age = (
                max((moment - index.meta.this_update_dt).total_seconds(), 0.0)
                if index is not None
                else math.inf
            )
            ages[row.name] = max(age, ages.get(row.name, 0.0))
    return ages
