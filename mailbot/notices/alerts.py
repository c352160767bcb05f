"""Administrative alerts (административное оповещение): one letter per problem, via the outbox.

Callers (the daemon, the ADD_CERT handler's edge, the outbox sender itself)
describe a problem with a *kind* (``unknown_ca``, ``forgery``, ``poison_letter``,
``outbox_failed``, ...) and a *dedup_key* naming this very occurrence; the
``alerts`` table keeps one row per key, so the same problem reported again
(a restart, a retried letter) does not mail the administrators again. Put a
date or period into the key when a problem may be reported again later.

The alert is a plain UTF-8 letter to ``admin.alert_addresses``, marked as
automatic (``Auto-Submitted: auto-generated``, RFC 3834) and with our loop
marker, so that neither we nor a well-behaved auto-responder answer it. It is
sent by :class:`mailbot.mail.outbox.OutboxSender` like every other letter.
"""

from __future__ import annotations

import datetime as dt
import email.utils
from collections.abc import Sequence
from email import policy
from email.message import EmailMessage
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailbot.config import Config
from mailbot.directory.models import Alert, utcnow
from mailbot.log import get_logger
from mailbot.mail.headers import set_subject
from mailbot.mail.letter import LOOP_HEADER
from mailbot.mail.queue import queue_message

log = get_logger(__name__)

#: (file name, content, MIME type such as ``application/pkix-cert``).
Attachment = tuple[str, bytes, str]

#: Column widths of ``alerts``; longer values are cut rather than failing the caller.
_MAX_KIND = 50
_MAX_DEDUP_KEY = 300


def queue_alert(
    session: Session,
    config: Config,
    kind: str,
    dedup_key: str,
    subject: str,
    body: str,
    attachments: Sequence[Attachment] = (),
    now: dt.datetime | None = None,
) -> Alert | None:
    """Record an alert and queue its letter to the administrators; the caller commits.

    Returns ``None`` (and queues nothing) when an alert with *dedup_key* exists.
    With no ``admin.alert_addresses`` configured the alert is only recorded
    (``outbox_id`` stays empty) and a warning is logged.
    """
    now = now or utcnow()
    dedup_key = dedup_key[:_MAX_DEDUP_KEY]
    # Pending inserts of this session count too (autoflush), so two alerts with one
    # key in one transaction also give one letter. A concurrent process inserting
    # the same key makes the caller's commit fail on the unique constraint; the
    # daemon is a single leader, so that race is left to the constraint.
    existing = session.scalar(select(Alert.id).where(Alert.dedup_key == dedup_key))
    if existing is not None:
        log.info("alert already raised", alert_kind=kind, dedup_key=dedup_key)
        return None
    alert = Alert(
        kind=kind[:_MAX_KIND], dedup_key=dedup_key, subject=subject, body=body, created_at=now
    )
    recipients = list(config.admin.alert_addresses)
    if recipients:
        letter = build_alert_letter(config, subject, body, attachments, now)
        outbox_id = queue_message(session, letter, kind="alert", recipients=recipients, now=now)
        alert.outbox_id = outbox_id
    else:
        log.warning(
            "alert recorded but not mailed: admin.alert_addresses is empty",
            alert_kind=kind,
            dedup_key=dedup_key,
        )
    session.add(alert)
    session.flush()
    log.info("alert queued", alert_kind=kind, dedup_key=dedup_key, outbox_id=alert.outbox_id)
    return alert


def build_alert_letter(
    config: Config,
    subject: str,
    body: str,
    attachments: Sequence[Attachment] = (),
    now: dt.datetime | None = None,
) -> EmailMessage:
    """The alert letter itself: From our address, To every admin address, UTF-8 text."""
    now = now or utcnow()
    instance = config.general.instance_name
    message = EmailMessage(policy=policy.SMTP)
    message["From"] = config.smtp.from_address
    message["To"] = ", ".join(config.admin.alert_addresses)
    set_subject(message, f"[{instance}] {subject}")
    message["Date"] = email.utils.format_datetime(now)
    domain = config.smtp.from_address.rpartition("@")[2] or "localhost"
    message["Message-ID"] = email.utils.make_msgid(domain=domain)
    message["Auto-Submitted"] = "auto-generated"
    message["X-Auto-Response-Suppress"] = "All"
    message[LOOP_HEADER] = instance
    local = now.astimezone(ZoneInfo(config.general.timezone))
    text = body.rstrip("\n") + (
        f"\n\n-- \n{instance}, {local:%d.%m.%Y %H:%M:%S} ({config.general.timezone})\n"
    )
    message.set_content(text, charset="utf-8")
    for filename, content, mime_type in attachments:
        maintype, _, subtype = mime_type.partition("/")
        if maintype in {"", "multipart", "message"} or not subtype:
            # Bytes cannot be a multipart, and a base64 message/* is invalid (RFC 2046 5.2.1).
            maintype, subtype = "application", "octet-stream"
        message.add_attachment(content, maintype=maintype, subtype=subtype, filename=filename)
    return message
