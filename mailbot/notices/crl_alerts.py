"""Admin alerts about CRLs: letters waiting for one, and registered certificates it revokes.

* ``crl_unavailable`` - letters of one CA key wait longer than
  ``crl.alert_after_minutes`` because no current CRL could be obtained (one
  alert per CA key and local day, raised by :mod:`mailbot.app.deferral`);
* ``certificate_revoked`` - a new CRL revokes certificates registered through
  mailbot (one alert per batch, raised by :mod:`mailbot.app.revocation_watch`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Protocol
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from mailbot.config import Config
from mailbot.dates import format_reply_datetime
from mailbot.directory.models import Alert
from mailbot.notices.alerts import queue_alert
from mailbot.notices.certificate_alerts import alert_texts, local_day
from mailbot.notices.templates import AlertTemplates
from mailbot.pki.revocation_index import IndexMeta

#: How many waiting letters a crl_unavailable alert lists one by one.
MAX_LISTED_LETTERS = 20


class WaitingLetter(Protocol):
    """A letter deferred for want of a CRL (:class:`mailbot.app.deferral.DeferredLetter`)."""

    @property
    def id(self) -> int: ...
    @property
    def sender(self) -> str | None: ...
    @property
    def since(self) -> dt.datetime: ...
    @property
    def last_try(self) -> dt.datetime | None: ...
    @property
    def ca_name(self) -> str | None: ...
    @property
    def problem(self) -> str | None: ...
    @property
    def urls(self) -> tuple[str, ...]: ...

    def waited(self, now: dt.datetime) -> dt.timedelta: ...


class RevokedEntry(Protocol):
    """A registered certificate found on a CRL (``revocation_watch.RevokedCertificate``)."""

    @property
    def serial(self) -> str: ...
    @property
    def subject_cn(self) -> str | None: ...
    @property
    def subscriber_id(self) -> int: ...
    @property
    def revoked_at(self) -> dt.datetime | None: ...
    @property
    def reason(self) -> str | None: ...
    @property
    def notified(self) -> tuple[str, ...]: ...


def alert_crl_unavailable(
    session: Session,
    config: Config,
    ca_key: str,
    letters: Sequence[WaitingLetter],
    now: dt.datetime,
) -> Alert | None:
    """Tell the admins that *letters* (one CA key) wait for a CRL; once per key and day."""
    texts = alert_texts(config)
    return queue_alert(
        session,
        config,
        kind="crl_unavailable",
        dedup_key=f"crl_unavailable:{ca_key}:{local_day(now, config.general.timezone)}",
        subject=texts.subject(
            "crl_unavailable", {"ca": letters[0].ca_name or ca_key, "count": len(letters)}
        ),
        body=crl_unavailable_body(config, ca_key, letters, now),
        now=now,
    )


def crl_unavailable_body(
    config: Config, ca_key: str, letters: Sequence[WaitingLetter], now: dt.datetime
) -> str:
    """The alert text: which CA, which URLs failed how, who waits since when, what to do."""
    texts = alert_texts(config)
    zone = ZoneInfo(config.general.timezone)
    oldest = min(letters, key=lambda x: x.since)
    latest = max(letters, key=lambda x: x.last_try or x.since)
    urls = sorted({u for letter in letters for u in letter.urls})
    listed = [
        texts.render(
            "crl_unavailable.letter",
            {"id": x.id, "sender": x.sender or "?", "waited": duration_text(texts, x.waited(now))},
        )
        for x in letters[:MAX_LISTED_LETTERS]
    ]
    if len(letters) > MAX_LISTED_LETTERS:
        more = len(letters) - MAX_LISTED_LETTERS
        listed.append(texts.render("crl_unavailable.more", {"count": more}))
    errors = (latest.problem or "?").split("; ")
    last_try = (
        f"{latest.last_try.astimezone(zone):%d.%m.%Y %H:%M:%S}"
        if latest.last_try
        else texts.render("crl_unavailable.never", {})
    )
    values = {
        "ca_name": latest.ca_name or "?",
        "ca_key": ca_key,
        "policy": config.crl.unavailable_policy,
        "retry_minutes": config.crl.retry_minutes,
        "count": len(letters),
        "oldest_wait": duration_text(texts, oldest.waited(now)),
        "oldest_since": f"{oldest.since.astimezone(zone):%d.%m.%Y %H:%M:%S}",
        "letters": "\n".join(listed),
        "urls": ", ".join(urls) if urls else texts.render("crl_unavailable.no_urls", {}),
        "last_try": last_try,
        "errors": "\n".join(
            texts.render("crl_unavailable.error", {"error": part.strip()}) for part in errors
        ),
        "drop_dir": config.crl_drop_dir,
    }
    return texts.render("crl_unavailable", values) + "\n"


def duration_text(texts: AlertTemplates, delta: dt.timedelta) -> str:
    """*delta* in days, hours and minutes, as the alert templates write a wait."""
    minutes = max(0, int(delta.total_seconds() // 60))
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        return texts.render(
            "crl_unavailable.duration_days", {"days": days, "hours": hours, "minutes": minutes}
        )
    return texts.render("crl_unavailable.duration", {"hours": hours, "minutes": minutes})


def alert_certificates_revoked(
    session: Session,
    config: Config,
    ca_name: str,
    dedup_key: str,
    meta: IndexMeta,
    found: Sequence[RevokedEntry],
    now: dt.datetime,
) -> Alert | None:
    """Tell the admins which registered certificates the CRL *meta* of *ca_name* revokes."""
    texts = alert_texts(config)
    zone = config.general.timezone
    items = []
    for item in found:
        notice = (
            texts.render("certificate_revoked.notified", {"addresses": ", ".join(item.notified)})
            if item.notified
            else texts.render("certificate_revoked.not_notified", {})
        )
        values = {
            "serial": item.serial,
            "owner": item.subject_cn or "?",
            "subscriber_id": item.subscriber_id,
            "revoked_at": format_reply_datetime(item.revoked_at, zone) if item.revoked_at else "?",
            "reason": item.reason or "-",
            "notice": notice,
        }
        items.append(texts.render("certificate_revoked.item", values))
    body = texts.render(
        "certificate_revoked",
        {
            "crl_number": meta.crl_number,
            "ca_name": ca_name,
            "this_update": meta.this_update,
            "source": meta.source_url or "-",
            "count": len(found),
            "certificates": "\n".join(items),
        },
    )
    return queue_alert(
        session,
        config,
        kind="certificate_revoked",
        dedup_key=dedup_key,
        subject=texts.subject("certificate_revoked", {"ca_name": ca_name, "count": len(found)}),
        body=body + "\n",
        now=now,
    )
