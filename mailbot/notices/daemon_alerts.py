"""Admin alerts about the daemon's own work: a poison letter, an undeliverable letter, SMTP login.

* ``poison_letter`` - a letter whose processing crashed too often was moved to
  the failed folder (once per letter and per ``letter retry`` round);
* ``outbox_failed`` - the SMTP server refused one of our letters for good
  (once per outbox row);
* ``smtp_auth_failed`` - we cannot log in to the SMTP server (once per server,
  user and local day: the problem persists over many flushes).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy.orm import Session

from mailbot.config import Config
from mailbot.directory.models import Alert
from mailbot.notices.alerts import queue_alert
from mailbot.notices.certificate_alerts import alert_texts, local_day


def alert_poison_letter(
    session: Session,
    config: Config,
    letter_id: int,
    starts: int,
    raw: bytes,
    resets: int = 0,
) -> Alert | None:
    """Letter *letter_id* (attached as *raw*) started *starts* times without finishing."""
    texts = alert_texts(config)
    body = texts.render(
        "poison_letter",
        {
            "letter_id": letter_id,
            "starts": starts,
            "failed_folder": config.imap.failed_folder,
            "mailbox": config.imap.mailbox,
        },
    )
    # A letter reset by `letter retry` that fails again is news again.
    round_ = f":reset{resets}" if resets else ""
    return queue_alert(
        session,
        config,
        kind="poison_letter",
        dedup_key=f"poison_letter:{letter_id}{round_}",
        subject=texts.subject("poison_letter", {"letter_id": letter_id}),
        body=body + "\n",
        attachments=[(f"letter-{letter_id}.eml", raw, "message/rfc822")],
    )


def alert_outbox_failed(
    session: Session,
    config: Config,
    *,
    outbox_id: int,
    kind: str,
    recipients: Sequence[str],
    message_id: str,
    letter_id: int | None,
    error: str,
    now: dt.datetime,
) -> Alert | None:
    """The SMTP server refused outbox row *outbox_id* for good; it is not retried."""
    texts = alert_texts(config)
    body = texts.render(
        "outbox_failed",
        {
            "kind": kind,
            "recipients": ", ".join(recipients) or "-",
            "message_id": message_id,
            "outbox_id": outbox_id,
            "letter_id": letter_id if letter_id else "-",
            "error": error,
        },
    )
    return queue_alert(
        session,
        config,
        kind="outbox_failed",
        dedup_key=f"outbox-failed:{outbox_id}",
        subject=texts.subject("outbox_failed", {"recipients": ", ".join(recipients)[:200]}),
        body=body + "\n",
        now=now,
    )


def alert_smtp_auth_failed(
    session: Session, config: Config, error: str, now: dt.datetime
) -> Alert | None:
    """We cannot log in to the SMTP server; *error* must already be free of secrets."""
    texts = alert_texts(config)
    smtp = config.smtp
    body = texts.render(
        "smtp_auth_failed",
        {"host": smtp.host, "port": smtp.port, "tls": smtp.tls, "user": smtp.user, "error": error},
    )
    day = local_day(now, config.general.timezone)
    return queue_alert(
        session,
        config,
        kind="smtp_auth_failed",
        dedup_key=f"smtp-auth-failed:{smtp.host}:{smtp.port}:{smtp.user}:{day}",
        subject=texts.subject("smtp_auth_failed", {}),
        body=body + "\n",
        now=now,
    )


class _OutboxAlertNotices:
    """The outbox's alerts, as :class:`mailbot.mail.outbox.OutboxAlerts` wants them."""

    outbox_failed = staticmethod(alert_outbox_failed)
    smtp_auth_failed = staticmethod(alert_smtp_auth_failed)


#: What :class:`mailbot.mail.outbox.OutboxSender` is given to alert the administrators.
OUTBOX_ALERTS = _OutboxAlertNotices()
