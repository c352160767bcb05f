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
from mailbot.directory.certstore import InstallError
from mailbot.directory.models import Alert
from mailbot.notices.alerts import queue_alert
from mailbot.notices.templates import format_reply_datetime
from mailbot.pki.certificate import Certificate

#: RFC 2585's type for a DER certificate; Windows opens it with its certificate viewer.
CERT_MIME = "application/pkix-cert"


def local_day(now: dt.datetime, timezone: str) -> str:
    """The calendar day of *now* in the configured time zone (``YYYY-MM-DD``)."""
    return now.astimezone(ZoneInfo(timezone)).date().isoformat()


def config_hint(config: Config) -> str:
    """`` --config PATH`` for commands quoted in alerts (empty when defaults are used)."""
    return f" --config {config.source}" if config.source else ""


def certificate_lines(certificate: Certificate, timezone: str) -> list[str]:
    """The lines that identify a participant's certificate for an administrator."""
    aki = certificate.authority_key_identifier
    return [
        f"Серийный номер: {certificate.serial_hex}",
        f"Владелец: {certificate.subject_cn or certificate.subject.rfc4514()}",
        f"СНИЛС в сертификате: {certificate.snils or '-'}",
        f"Издатель (issuer): {certificate.issuer.rfc4514()}",
        f"Идентификатор ключа издателя (AKI): {aki.hex().upper() if aki else '-'}",
        f"Действует: с {format_reply_datetime(certificate.not_before, timezone)} "
        f"по {format_reply_datetime(certificate.not_after, timezone)}",
        f"Отпечаток SHA-1: {certificate.thumbprint_sha1}",
    ]


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
    body = "\n".join(
        [
            "Подпись удостоверяющего центра на сертификате участника не проверяется ключом "
            "зарегистрированного УЦ — возможна подделка. Участнику отправлен ответ "
            "invalid_cert («подпись удостоверяющего центра неверна»), сертификат не установлен.",
            "",
            f"Письмо: №{letter_id} в журнале, отправитель {sender or '-'}",
            f"Проверка: {detail}",
            *certificate_lines(certificate, config.general.timezone),
            "",
            "Что делать:",
            "1. Свяжитесь с участником по телефону (не ответом на письмо) и выясните, "
            "отправлял ли он этот сертификат.",
            "2. Если нет — адрес участника может быть скомпрометирован: сообщите службе "
            "безопасности, при необходимости отключите адрес "
            f"(mailbot address remove ID_АБОНЕНТА {sender or 'АДРЕС'}{config_hint(config)}).",
            "3. Если УЦ сменил ключ при том же имени, зарегистрируйте его новый сертификат "
            f"(mailbot ca add CA.cer{config_hint(config)}) и попросите участника "
            "прислать письмо снова.",
            f"Журнал письма: mailbot journal --sender {sender or 'АДРЕС'}{config_hint(config)}",
        ]
    )
    return queue_alert(
        session,
        config,
        kind="forgery",
        dedup_key=f"forgery:{certificate.thumbprint_sha1}",
        subject=f"Возможна подделка сертификата {certificate.serial_hex}",
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
    digest = hashlib.sha256(str(error).encode()).hexdigest()[:16]
    command = " ".join(config.store.install_command) or "(нет, только запись файла)"
    body = "\n".join(
        [
            "Установка сертификата в хранилище не удалась; участнику отправлен ответ "
            "install_error с текстом ошибки. Ничего не записано.",
            "",
            f"Ошибка: {error}",
            *([f"Сообщение системы: {error.detail}"] if error.detail else []),
            f"Хранилище: {config.certificate_store}",
            f"Команда установки: {command}",
            f"Письмо: №{letter_id} в журнале, отправитель {sender or '-'}",
            *certificate_lines(certificate, config.general.timezone),
            "",
            "Что делать:",
            "1. Устраните причину: права и свободное место в каталоге хранилища, "
            "работоспособность команды установки (запустите её вручную с приложенным "
            "сертификатом).",
            f"2. Проверьте: mailbot doctor{config_hint(config)}.",
            "3. Попросите участника отправить письмо ещё раз.",
            "Другие сертификаты с той же ошибкой сегодня отдельного оповещения не получат.",
        ]
    )
    return queue_alert(
        session,
        config,
        kind="install_error",
        dedup_key=f"install_error:{local_day(now, config.general.timezone)}:{digest}",
        subject=f"Ошибка установки сертификата: {' '.join(str(error).split())[:120]}",
        body=body,
        attachments=[(f"{certificate.serial_hex}.cer", certificate.der, CERT_MIME)],
        now=now,
    )
