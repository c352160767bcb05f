"""The unknown-CA alert: one letter per unknown CA key per day, listing every waiting certificate.

A CA is identified by the key that signed the certificate: its Authority Key
Identifier, or the issuer DN when the certificate has no AKI. The alert's
dedup key is ``unknown_ca:<key>:<local day>``. When a second certificate of
that key is quarantined the same day:

* the day's alert is still unsent in the outbox → the letter is rebuilt in
  place to list (and attach) every pending certificate of the key;
* it was sent (or a sender holds it right now) → nothing is queued; the next
  day's alert lists every certificate still pending.

The alert also says what the list of accredited CAs says about the key: the
CA's name, status, registry number, INN and OGRN with the list's version and
date; or that the key is not in the list; or that no list was imported.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from mailbot.config import Config
from mailbot.dates import format_reply_datetime
from mailbot.directory.models import Alert, OutboxMessage, QuarantinedCertificate
from mailbot.log import get_logger
from mailbot.notices.alerts import Attachment, build_alert_letter, queue_alert
from mailbot.notices.certificate_alerts import (
    CERT_MIME,
    alert_texts,
    config_hint,
    local_day,
)
from mailbot.pki.certificate import Certificate
from mailbot.pki.errors import PkiError
from mailbot.trustlist.register import AccreditationRegister

log = get_logger(__name__)


@dataclass(frozen=True)
class CaKey:
    """What identifies an unknown CA: its key identifier, or its name without one."""

    authority_key_id: str | None
    issuer_dn: str

    @classmethod
    def of(cls, row: QuarantinedCertificate) -> CaKey:
        """The key of a quarantined certificate's issuer."""
        return cls(row.authority_key_id, row.issuer_dn)

    @property
    def dedup_part(self) -> str:
        """A short, stable text for the alert's dedup key (DNs can be long)."""
        if self.authority_key_id:
            return f"aki:{self.authority_key_id}"
        return "dn:" + hashlib.sha256(self.issuer_dn.encode()).hexdigest()[:32]

    def pending(self, session: Session) -> list[QuarantinedCertificate]:
        """Every pending quarantined certificate of this key, oldest first."""
        query = select(QuarantinedCertificate).where(QuarantinedCertificate.status == "pending")
        if self.authority_key_id:
            query = query.where(QuarantinedCertificate.authority_key_id == self.authority_key_id)
        else:
            query = query.where(
                QuarantinedCertificate.authority_key_id.is_(None),
                QuarantinedCertificate.issuer_dn == self.issuer_dn,
            )
        return list(session.scalars(query.order_by(QuarantinedCertificate.id)))


def alert_unknown_ca(
    session: Session,
    config: Config,
    quarantined: QuarantinedCertificate,
    now: dt.datetime,
    known_der: Mapping[str, bytes] | None = None,
    register: AccreditationRegister | None = None,
) -> str:
    """Queue or rebuild the day's alert for *quarantined*'s CA; the caller commits.

    *known_der* maps thumbprints to DER already in memory (saves re-reading the
    file just written); *register* is the list of accredited CAs (None: none
    imported). Returns ``queued``, ``rebuilt`` or ``already_sent``.
    """
    session.flush()  # the new quarantine row must be among the pending ones
    key = CaKey.of(quarantined)
    rows = key.pending(session)
    subject, body, attachments = render_digest(config, key, rows, known_der or {}, register)
    dedup_key = f"unknown_ca:{key.dedup_part}:{local_day(now, config.general.timezone)}"
    alert = session.scalar(select(Alert).where(Alert.dedup_key == dedup_key))
    if alert is None:
        queue_alert(session, config, "unknown_ca", dedup_key, subject, body, attachments, now)
        return "queued"
    if alert.outbox_id is not None:
        letter = build_alert_letter(config, subject, body, attachments, now)
        # Compare-and-swap against the outbox sender: a claim moves next_attempt_at
        # into the future, a send sets the status. Either way the old text is (being)
        # sent and must not change under the sender's feet.
        result = session.execute(
            update(OutboxMessage)
            .where(
                OutboxMessage.id == alert.outbox_id,
                OutboxMessage.status == "pending",
                OutboxMessage.next_attempt_at <= now,
            )
            .values(raw=bytes(letter), message_id=str(letter["Message-ID"]))
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            log.info("unknown-CA alert already sent today", dedup_key=dedup_key)
            return "already_sent"
    alert.subject, alert.body = subject, body
    log.info("unknown-CA alert rebuilt", dedup_key=dedup_key, certificates=len(rows))
    return "rebuilt"


def render_digest(
    config: Config,
    key: CaKey,
    rows: Sequence[QuarantinedCertificate],
    known_der: Mapping[str, bytes],
    register: AccreditationRegister | None = None,
) -> tuple[str, str, list[Attachment]]:
    """Subject, body and attachments of the alert for *rows* (pending, one CA key)."""
    zone = config.general.timezone
    texts = alert_texts(config)
    attachments: list[Attachment] = []
    attached: dict[str, str] = {}
    listed: list[str] = []
    aia: dict[str, None] = {}
    issuer_cn = ""
    for row in rows:
        aia.update(dict.fromkeys(row.aia_urls))
        der = known_der.get(row.thumbprint_sha1) or _read(row.path)
        certificate = _parse(der)
        if certificate is not None:
            issuer_cn = issuer_cn or certificate.issuer.get("CN") or ""
        owner = certificate.subject_cn if certificate is not None else None
        # The same certificate sent twice is two rows but one attachment.
        name = attached.get(row.thumbprint_sha1, f"quarantine-{row.id}-{row.serial}.cer")
        if der is None:
            name = texts.render("unknown_ca.missing_file", {"path": row.path})
        elif row.thumbprint_sha1 not in attached:
            attached[row.thumbprint_sha1] = name
            attachments.append((name, der, CERT_MIME))
        item = {
            "id": row.id,
            "serial": row.serial,
            "owner": owner or "-",
            "sender": row.sender,
            "received": format_reply_datetime(row.created_at, zone),
            "attachment": name,
        }
        listed.append(texts.render("unknown_ca.item", item))
    body = texts.render(
        "unknown_ca",
        {
            "issuer_dn": key.issuer_dn,
            "aki": key.authority_key_id or texts.render("unknown_ca.no_aki", {}),
            "aia": ", ".join(aia) if aia else texts.render("unknown_ca.no_aia", {}),
            "count": len(rows),
            "certificates": "\n".join(listed),
            "accreditation": accreditation_text(config, key, register),
            "config": config_hint(config),
        },
    )
    subject = texts.subject(
        "unknown_ca", {"issuer": issuer_cn or key.issuer_dn, "count": len(rows)}
    )
    return subject, body, attachments


def accreditation_text(config: Config, key: CaKey, register: AccreditationRegister | None) -> str:
    """What the list of accredited CAs says about the key (``unknown_ca.list_*`` templates)."""
    texts = alert_texts(config)
    zone = config.general.timezone
    edition = register.edition() if register is not None else None
    if register is None or edition is None:
        return texts.render("unknown_ca.list_none", {"config": config_hint(config)})
    current = {"version": edition.version,
               "date": format_reply_datetime(edition.published_at, zone)}  # fmt: skip
    if key.authority_key_id is None:
        return texts.render("unknown_ca.list_no_aki", current)
    listed = register.key(bytes.fromhex(key.authority_key_id))
    if listed is None:
        return texts.render("unknown_ca.list_absent", current)
    values = {
        **current,
        "name": listed.authority_name,
        "status": listed.status.text,
        "status_since": format_reply_datetime(listed.status.valid_from, zone),
        "registry_number": listed.registry_number or "-",
        "inn": listed.inn or "-",
        "ogrn": listed.ogrn or "-",
    }
    if listed.present:
        name = "unknown_ca.list_accredited" if listed.accredited else "unknown_ca.list_listed"
        return texts.render(name, values)
    return texts.render(
        "unknown_ca.list_gone",
        {**values, "listed_version": listed.listed_in.version,
         "listed_date": format_reply_datetime(listed.listed_in.published_at, zone)},
    )  # fmt: skip


def _read(path: str) -> bytes | None:
    try:
        return Path(path).read_bytes()
    except OSError:
        return None


def _parse(der: bytes | None) -> Certificate | None:
    if der is None:
        return None
    try:
        return Certificate.from_der(der)
    except PkiError:
        return None
