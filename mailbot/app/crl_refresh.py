"""The scheduled CRL refresh: every active CA's CRL fetched when due, newer ones polled.

The daemon calls :func:`refresh_crls` on its schedule and reports the result
(the CRL age metric, a warning per CA without a current CRL); the revocation
watch then checks the registered certificates against what was fetched.

The refresh does the ingesting so that letters need not: a CRL that runs out
before the horizon is replaced (from the drop folder, the URL the cached CRL
came from, the directory's URLs), and a newer one is taken when published or
dropped. A letter then finds a current index and only looks a serial up; it
ingests itself only for a CA the refresh could not serve (e.g. first use).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from mailbot.app.adapters import DbCaDirectory, parsed
from mailbot.app.assembly import crl_source_factory
from mailbot.app.revocation_watch import RevocationWatch, WatchReport, poll_newer_crl
from mailbot.config import Config
from mailbot.directory.models import CertificationAuthority
from mailbot.notices.templates import load_templates
from mailbot.pki.crl_fetch import CachingCrlSource, CrlSource
from mailbot.pki.issuer import CaDirectory
from mailbot.pki.revocation_index import RevocationIndex


@dataclass(frozen=True)
class CrlRefresh:
    """One CA's CRL after the refresh."""

    ca_name: str
    #: The current CRL's thisUpdate (None when there is none).
    this_update: dt.datetime | None
    #: Why no current CRL could be had (None when one was).
    problem: str | None
    #: The current CRL's cRLNumber and nextUpdate (None when there is none, or no such field).
    crl_number: int | None = None
    next_update: dt.datetime | None = None


def refresh_crls(
    sessions: sessionmaker[Session],
    crl_source_for: Callable[[CaDirectory], CrlSource],
    horizon: dt.datetime,
) -> list[CrlRefresh]:
    """Make sure every active CA has a CRL current at *horizon*; poll for newer ones too."""
    found: list[CrlRefresh] = []
    with sessions() as session:
        source = crl_source_for(DbCaDirectory(session))
        assert isinstance(source, CachingCrlSource)
        rows = session.scalars(
            select(CertificationAuthority).where(CertificationAuthority.active.is_(True))
        ).all()
        for row in rows:
            refreshed = refresh_ca(source, row, horizon)
            if refreshed is not None:
                found.append(refreshed)
    return found


def caching_source(config: Config, session: Session) -> CachingCrlSource:
    """The CRL source the refresh uses, reading the CA directory through *session*."""
    source = crl_source_factory(config)(DbCaDirectory(session))
    assert isinstance(source, CachingCrlSource)
    return source


def watch_revocations(
    config: Config,
    sessions: sessionmaker[Session],
    clock: Callable[[], dt.datetime] | None = None,
) -> WatchReport:
    """After a refresh: the revocation watch over the CRLs now current (idempotent).

    A revoked registered certificate is marked, its owner notified and the
    administrators alerted, once. Raises :class:`TemplateError` for broken templates.
    """
    templates = load_templates(config.templates_dir)
    if clock is None:
        return RevocationWatch(config, sessions, templates).run()
    return RevocationWatch(config, sessions, templates, clock=clock).run()


def refresh_ca(
    source: CachingCrlSource, row: CertificationAuthority, horizon: dt.datetime
) -> CrlRefresh | None:
    """Make sure CA *row* has a CRL current at *horizon*, and poll for a newer one.

    The one CA's step of :func:`refresh_crls` (and of ``mailbot crl refresh`` and the
    console's "refresh now"); network I/O under the source's deadlines. None when the
    CA's certificate no longer parses.
    """
    certificate = parsed(row)
    if certificate is None:
        return None
    cached = source.store.current(certificate)
    index, problem = source.fresh_index(certificate, horizon, _known_urls(cached))
    if problem is None and index is cached:
        # Fresh enough, but a newer CRL may list new revocations (the watch).
        # (Not right after taking a new one: that was the newest there was.)
        index = poll_newer_crl(source, certificate) or index
    meta = index.meta if index is not None else None
    return CrlRefresh(
        row.name,
        meta.this_update_dt if meta is not None else None,
        problem.detail if problem is not None else None,
        meta.crl_number if meta is not None else None,
        meta.next_update_dt if meta is not None else None,
    )


def _known_urls(cached: RevocationIndex | None) -> list[str]:
    """The URL the cached CRL came from, if HTTP(S).

    A letter's certificate may have named a distribution point the directory
    does not list; the refresh keeps using it.
    """
    url = cached.meta.source_url if cached is not None else None
    return [url] if url and url.lower().startswith(("http://", "https://")) else []
