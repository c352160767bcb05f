"""Getting the list of accredited CAs from a URL: by hand (``ca import-tsl URL``) and on schedule.

The body streams to a private (``0600``) temporary file in the state folder
and is imported from there (:func:`mailbot.app.trust_list_import.import_trust_list`),
so tens of MiB never sit in memory. The daemon's job (:func:`refresh_trust_list`)
asks with the validators of the current edition (``If-None-Match``,
``If-Modified-Since``): "not modified" costs nothing. A failed refresh is
logged and alerted at most once a day; the current edition stays in force.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from mailbot.app.assembly import proxy_password
from mailbot.app.trust_list_import import Download, ImportRefused, import_trust_list, newest_edition
from mailbot.config import Config
from mailbot.dates import format_reply_datetime
from mailbot.directory.models import utcnow
from mailbot.files import private_scratch_file
from mailbot.log import get_logger
from mailbot.notices.alerts import queue_alert
from mailbot.notices.certificate_alerts import alert_texts, config_hint, local_day
from mailbot.pki.errors import CrlFetchError
from mailbot.trustlist import TrustListError
from mailbot.trustlist.changes import ImportReport
from mailbot.trustlist.download import TrustListFetcher

log = get_logger(__name__)

#: What a refresh may fail with and still leave the daemon running.
REFRESH_ERRORS = (CrlFetchError, TrustListError, ImportRefused, OSError)


def trust_list_fetcher(config: Config) -> TrustListFetcher:
    """The fetcher with ``[trust_list]``'s deadline and size cap and ``[crl]``'s proxy.

    Raises SecretError when the proxy's password cannot be read.
    """
    return TrustListFetcher(
        timeout_seconds=config.trust_list.timeout_seconds,
        max_bytes=config.trust_list.max_size,
        max_redirects=config.crl.max_redirects,
        proxy=config.crl.proxy,
        proxy_password=proxy_password(config),
    )


def import_from_url(
    session: Session,
    config: Config,
    url: str,
    *,
    conditional: bool = False,
    force: bool = False,
    dry_run: bool = False,
    now: dt.datetime | None = None,
) -> ImportReport | None:
    """Download the list from *url* and import it; None when the server said "not modified".

    With *conditional*, the current edition's validators go along (when it came
    from this very URL). Raises :class:`CrlFetchError` (download), the import's errors.
    """
    current = newest_edition(session)
    etag = last_modified = None
    if conditional and current is not None and current.source == url:
        etag, last_modified = current.etag, current.last_modified
    with private_scratch_file(config.general.state_dir, ".tmp-trust-list-") as path:
        with path.open("wb") as sink:
            result = trust_list_fetcher(config).fetch_into(sink, url, etag, last_modified)
        if result.not_modified:
            return None
        origin = Download(url, result.etag, result.last_modified)
        return import_trust_list(
            session, path, config, origin, force=force, dry_run=dry_run, now=now
        )


@dataclass(frozen=True)
class RefreshResult:
    """One scheduled refresh."""

    #: The import (None: "not modified", or it failed).
    report: ImportReport | None
    #: Why it failed (None: it did not).
    error: str | None = None


def refresh_trust_list(
    config: Config, sessions: sessionmaker[Session], now: dt.datetime | None = None
) -> RefreshResult:
    """The daemon's job: download and import ``trust_list.url`` if it changed. Never raises
    for a download or file problem: it is logged and alerted (once a day)."""
    url = config.trust_list.url
    if not url:
        return RefreshResult(None)
    moment = now or utcnow()
    with sessions() as session:
        try:
            report = import_from_url(session, config, url, conditional=True, now=moment)
        except REFRESH_ERRORS as exc:
            session.rollback()
            error = str(exc)
            log.warning("trust_list.refresh_failed", url=url, error=error)
            _alert_failure(session, config, url, error, moment)
            session.commit()
            return RefreshResult(None, error)
        session.commit()
    if report is None:
        log.info("trust_list.not_modified", url=url)
    else:
        log.info(
            "trust_list.imported",
            version=report.version,
            unchanged=report.unchanged,
            cas_added=len(report.cas_added),
            cas_gone=len(report.cas_gone),
            keys_added=len(report.keys_added),
            keys_gone=len(report.keys_gone),
            status_changes=len(report.status_changes),
            registered=len(report.registered),
            flagged=len(report.flagged),
            problems=len(report.problems),
        )
    return RefreshResult(report)


def _alert_failure(
    session: Session, config: Config, url: str, error: str, now: dt.datetime
) -> None:
    texts = alert_texts(config)
    current = newest_edition(session)
    if current is None:
        where = texts.render("trust_list_unavailable.none", {})
    else:
        published = format_reply_datetime(current.published_at, config.general.timezone)
        where = f"{current.version} ({published})"
    queue_alert(
        session,
        config,
        kind="trust_list_unavailable",
        dedup_key=f"trust-list-unavailable:{local_day(now, config.general.timezone)}",
        subject=texts.subject("trust_list_unavailable", {}),
        body=texts.render(
            "trust_list_unavailable",
            {"url": url, "error": error, "current": where, "config": config_hint(config)},
        )
        + "\n",
        now=now,
    )
