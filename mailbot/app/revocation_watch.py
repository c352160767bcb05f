"""Revocation watch (beyond the regulation): registered certificates against new CRLs.

Whenever a CA's current CRL is one the watch has not checked yet (a new CRL
number fetched by the daemon's refresh, by a letter's check, dropped by hand,
or ``mailbot crl refresh``), every registered certificate of that CA that is
still ``valid`` is looked up in it. A listed one is marked ``revoked`` (with
the CRL's date and reason), its owner gets the ``revoked_notice`` letter at
the subscriber's active trusted addresses, and administrators get one alert
for the batch, all in one transaction per CA.

The status change is the record: only a ``valid`` row can change (a
compare-and-set), so a restart, a second CRL listing the same serial, or two
watchers at once never notify twice. The in-memory "already checked" map only
saves work; losing it on a restart just means one more (idempotent) pass.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import CursorResult, select, update
from sqlalchemy.orm import Session, sessionmaker

from mailbot.app.adapters import parsed
from mailbot.app.assembly import crl_store
from mailbot.config import Config
from mailbot.dates import format_reply_datetime
from mailbot.directory.models import CertificateRecord, CertificationAuthority, Subscriber
from mailbot.log import get_logger
from mailbot.mail.queue import queue_message
from mailbot.mail.reply import ReplySettings, build_notice
from mailbot.notices.crl_alerts import alert_certificates_revoked
from mailbot.notices.templates import Templates
from mailbot.pki.certificate import Certificate
from mailbot.pki.crl import REASON_NAMES
from mailbot.pki.crl_fetch import CachingCrlSource
from mailbot.pki.crl_store import CrlStore
from mailbot.pki.errors import PkiError
from mailbot.pki.revocation_index import RevocationEntry, RevocationIndex
from mailbot.regulation.decision import Outcome

log = get_logger(__name__)


def reason_key(code: int | None) -> str:
    """The ``[revocation_reasons]`` phrase key of a CRL reason code (``templates/phrases.toml``).

    An absent or unknown code reads as ``unspecified``.
    """
    return REASON_NAMES.get(code, "unspecified") if code is not None else "unspecified"


@dataclass(frozen=True)
class RevokedCertificate:
    """One certificate the watch found on a CRL."""

    certificate_id: int
    serial: str
    subject_cn: str | None
    subscriber_id: int
    revoked_at: dt.datetime | None
    reason: str | None
    notified: tuple[str, ...]


@dataclass
class WatchReport:
    """What one pass of the watch did."""

    checked_crls: int = 0
    revoked: list[RevokedCertificate] = field(default_factory=list)


class RevocationWatch:
    """Checks registered certificates against CRLs not checked before (by this process)."""

    def __init__(
        self,
        config: Config,
        sessions: sessionmaker[Session],
        templates: Templates,
        store: CrlStore | None = None,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.config = config
        self.sessions = sessions
        self.templates = templates
        self.store = store or crl_store(config)
        self.clock = clock
        self.settings = ReplySettings.from_config(config)
        #: CA row id -> SHA-256 of the CRL last checked against its certificates.
        self._checked: dict[int, str] = {}

    def run(self) -> WatchReport:
        """Check every CA with valid registered certificates whose current CRL is new to us."""
        report = WatchReport()
        now = self.clock()
        with self.sessions() as session:
            holders = select(CertificateRecord.ca_id).where(CertificateRecord.status == "valid")
            cas = session.scalars(
                select(CertificationAuthority)
                .where(CertificationAuthority.id.in_(holders))
                .order_by(CertificationAuthority.id)
            ).all()
            for ca_row in cas:
                ca = parsed(ca_row)
                index = self.store.current(ca) if ca is not None else None
                if index is None or self._checked.get(ca_row.id) == index.meta.sha256:
                    continue
                found = self._check(session, ca_row, index, now)
                session.commit()
                self._checked[ca_row.id] = index.meta.sha256
                report.checked_crls += 1
                report.revoked += found
        return report

    def _check(
        self,
        session: Session,
        ca_row: CertificationAuthority,
        index: RevocationIndex,
        now: dt.datetime,
    ) -> list[RevokedCertificate]:
        certificates = session.scalars(
            select(CertificateRecord)
            .where(
                CertificateRecord.ca_id == ca_row.id,
                CertificateRecord.status == "valid",
                # An expired certificate is of no use anyway; CAs drop them from CRLs.
                CertificateRecord.not_after > now,
            )
            .order_by(CertificateRecord.id)
        ).all()
        found = []
        for certificate in certificates:
            try:
                entry = index.lookup(bytes.fromhex(certificate.serial))
            except ValueError:
                continue  # not hex: an imported row we cannot compare
            if entry is None:
                continue
            changed: CursorResult[Any] = session.execute(  # type: ignore[assignment]
                update(CertificateRecord)
                .where(CertificateRecord.id == certificate.id, CertificateRecord.status == "valid")
                .values(
                    status="revoked", revoked_at=entry.revoked_at, revocation_reason=entry.reason
                )
                .execution_options(synchronize_session=False)
            )
            if changed.rowcount != 1:
                continue  # another watcher got there first and notified
            notified = self._notify(session, certificate, entry, now)
            found.append(
                RevokedCertificate(
                    certificate.id, certificate.serial, certificate.subject_cn,
                    certificate.subscriber_id, entry.revoked_at, entry.reason, notified,
                )
            )  # fmt: skip
            log.warning(
                "certificate.revoked",
                certificate_id=certificate.id,
                serial=certificate.serial,
                reason=entry.reason,
                crl_number=index.meta.crl_number,
            )
        if found:
            self._alert(session, ca_row, index, found, now)
        return found

    def _notify(
        self,
        session: Session,
        certificate: CertificateRecord,
        entry: RevocationEntry,
        now: dt.datetime,
    ) -> tuple[str, ...]:
        """Queue the revoked_notice to the owner's active trusted addresses."""
        subscriber = session.get(Subscriber, certificate.subscriber_id)
        addresses = tuple(
            sorted({a.address for a in subscriber.addresses if a.active}) if subscriber else ()
        )
        if not addresses:
            return ()
        zone = self.config.general.timezone
        values = {
            "serial": certificate.serial,
            "subject_cn": certificate.subject_cn or certificate.subject_dn,
            "revoked_at": (
                format_reply_datetime(entry.revoked_at, zone)
                if entry.revoked_at
                else self.templates.phrase("revoked_notice", "unknown_date")
            ),
            # A phrase key: the templates write the reason's text.
            "reason": reason_key(entry.reason_code),
        }
        subject = self.templates.render_subject(Outcome.REVOKED_NOTICE, values)
        body = self.templates.render(Outcome.REVOKED_NOTICE, values)
        message = build_notice(
            ", ".join(addresses), subject, body, self.settings, now,
            auto_submitted="auto-generated",
        )  # fmt: skip
        queue_message(
            session, message, kind="notice", recipients=addresses, now=now,
            template_key=Outcome.REVOKED_NOTICE.value,
        )  # fmt: skip
        return addresses

    def _alert(
        self,
        session: Session,
        ca_row: CertificationAuthority,
        index: RevocationIndex,
        found: list[RevokedCertificate],
        now: dt.datetime,
    ) -> None:
        meta = index.meta
        alert_certificates_revoked(
            session,
            self.config,
            ca_row.name,
            # One alert per batch: the first certificate id makes the key unique per batch.
            f"certificate_revoked:{ca_row.id}:{meta.sha256[:16]}:{found[0].certificate_id}",
            meta,
            found,
            now,
        )


def poll_newer_crl(source: CachingCrlSource, ca: Certificate) -> RevocationIndex | None:
    """Look for a CRL newer than the cached, still fresh one: the drop folder, then HTTP.

    ``fresh_index`` fetches only when the cached CRL runs out, which may be a
    week away; revocations published meanwhile would wait that long. This asks
    once per refresh: every dropped file, and the URL of the cached CRL (then
    the directory's) with a conditional GET, so an unchanged CRL costs a 304.
    Failures are only logged: the cached CRL is still current.
    """
    newest = source.store.scan_drop_dir(source.drop_dir, ca)
    current = source.store.current(ca)
    meta = current.meta if current is not None else None
    urls = [meta.source_url] if meta is not None and meta.source_url else []
    if source.directory is not None:
        urls += [u for u in source.directory.crl_urls(ca) if u not in urls]
    for url in urls:
        if source.fetcher is None or not url.lower().startswith(("http://", "https://")):
            continue
        try:
            # Streamed to a file and indexed from there: the body never sits in memory.
            fetched = source.fetch_and_ingest(url, ca, meta)
            return newest if fetched is None else fetched
        except PkiError as exc:  # CrlFetchError, or an older/invalid CRL
            log.info("crl.poll_failed", url=url, error=str(exc))
    return newest
