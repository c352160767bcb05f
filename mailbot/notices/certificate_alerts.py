"""Admin alerts about one participant's certificate: a possible forgery, a failed install.

Both are queued by the caller inside the transaction that journals the letter
(or records an administrator's decision), so an alert exists exactly when the
letter's outcome does. Each carries the certificate (DER, ``.cer``) and says
what to do next. Unknown-CA alerts are a daily digest: see
:mod:`mailbot.notices.unknown_ca_digest`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from mailbot.config import Config
from mailbot.dates import format_reply_datetime
from mailbot.directory.certstore import InstallError
from mailbot.directory.models import Alert
from mailbot.notices.alerts import queue_alert
from mailbot.notices.templates import AlertTemplates, alert_templates
from mailbot.pki.certificate import Certificate

#: RFC 2585's type for a DER certificate; Windows opens it with its certificate viewer.
CERT_MIME = "application/pkix-cert"


def local_day(now: dt.datetime, timezone: str) -> str:
    """The calendar day of *now* in the configured time zone (``YYYY-MM-DD``)."""
    return now.astimezone(ZoneInfo(timezone)).date().isoformat()


def config_hint(config: Config) -> str:
    """`` --config PATH`` for commands quoted in alerts (empty when defaults are used)."""
    return f" --config {config.source}" if config.source else ""


def alert_texts(config: Config) -> AlertTemplates:
    """The alert templates of *config*'s templates folder (``templates/alerts/``)."""
    return alert_templates(config.templates_dir)


def install_error_text(config: Config, error: InstallError) -> str:
    """The text of *error* (``[install_errors]`` of ``templates/phrases.toml``)."""
    return alert_texts(config).install_error(error.key, error.values)


def certificate_lines(certificate: Certificate, timezone: str, texts: AlertTemplates) -> str:
    """The lines that identify a participant's certificate for an administrator."""
    aki = certificate.authority_key_identifier
    return texts.render(
        "certificate",
        {
            "serial": certificate.serial_hex,
            "owner": certificate.subject_cn or certificate.subject.rfc4514(),
            "snils": certificate.snils or "-",
            "issuer": certificate.issuer.rfc4514(),
            "aki": aki.hex().upper() if aki else "-",
            "valid_from": format_reply_datetime(certificate.not_before, timezone),
            "valid_to": format_reply_datetime(certificate.not_after, timezone),
            "thumbprint": certificate.thumbprint_sha1,
        },
    )


def alert_forgery(
    session: Session,
    config: Config,
    certificate: Certificate,
    detail: str,
    sender: str | None,
    letter_id: int | None,
    now: dt.datetime,
) -> Alert | None:
    """A certificate names a registered CA whose key does not verify its signature.

    One alert per certificate (thumbprint): the same forged file sent again is
    the same incident.
    """
    texts = alert_texts(config)
    body = texts.render(
        "forgery",
        {
            "letter_id": letter_id,
            "sender": sender or "-",
            "sender_address": sender or texts.render("forgery.no_sender", {}),
            "detail": detail,
            "certificate": certificate_lines(certificate, config.general.timezone, texts),
            "config": config_hint(config),
        },
    )
    return queue_alert(
        session,
        config,
        kind="forgery",
        dedup_key=f"forgery:{certificate.thumbprint_sha1}",
        subject=texts.subject("forgery", {"serial": certificate.serial_hex}),
        body=body,
        attachments=[(f"{certificate.serial_hex}.cer", certificate.der, CERT_MIME)],
        now=now,
    )


def alert_install_failure(
    session: Session,
    config: Config,
    certificate: Certificate,
    error: InstallError,
    sender: str | None,
    letter_id: int | None,
    now: dt.datetime,
) -> Alert | None:
    """Installing a certificate into the store failed.

    One alert per error text per day: a broken store fails every letter the
    same way, and the administrator needs to hear of it once, not per letter.
    """
    texts = alert_texts(config)
    text = texts.install_error(error.key, error.values)
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    error_lines = texts.render("install_error.error", {"error": text})
    if error.detail:
        error_lines += "\n" + texts.render("install_error.detail", {"detail": error.detail})
    command = " ".join(config.store.install_command) or texts.render("install_error.no_command", {})
    body = texts.render(
        "install_error",
        {
            "error_lines": error_lines,
            "store": config.certificate_store,
            "command": command,
            "letter_id": letter_id,
            "sender": sender or "-",
            "certificate": certificate_lines(certificate, config.general.timezone, texts),
            "config": config_hint(config),
        },
    )
    return queue_alert(
        session,
        config,
        kind="install_error",
        dedup_key=f"install_error:{local_day(now, config.general.timezone)}:{digest}",
        subject=texts.subject("install_error", {"error": " ".join(text.split())[:120]}),
        body=body,
        attachments=[(f"{certificate.serial_hex}.cer", certificate.der, CERT_MIME)],
        now=now,
    )
