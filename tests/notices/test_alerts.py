"""queue_alert: deduplication, the letter's headers, attachments, no admin addresses."""

from __future__ import annotations

import datetime as dt
from email import message_from_bytes, policy
from email.message import EmailMessage

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from structlog.testing import capture_logs

from mailbot.directory.models import Alert, OutboxMessage
from mailbot.mail.letter import LOOP_HEADER
from mailbot.mail.outbox import OutboxSender
from mailbot.notices.alerts import queue_alert
from mailbot.notices.daemon_alerts import OUTBOX_ALERTS
from tests.logs import _default_logging  # noqa: F401  (autouse, as in its old folder)
from tests.mail.outbox_support import ADMIN, FROM, NOW, ServerFactory, make_config

CERTIFICATE = bytes(range(256)) * 4  # binary content with every byte value


def parse(raw: bytes) -> EmailMessage:
    message = message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def count(session: Session, model: type[Alert] | type[OutboxMessage]) -> int:
    return session.scalar(select(func.count()).select_from(model)) or 0


def test_alert_letter_is_queued_with_automatic_headers(sessions: sessionmaker[Session]) -> None:
    config = make_config(25, alerts=(ADMIN, "second@fund.test"))
    with sessions() as session:
        alert = queue_alert(
            session,
            config,
            kind="unknown_ca",
            dedup_key="unknown-ca:ABCDEF",
            subject="Неизвестный УЦ",
            body="Сертификат выдан неизвестным удостоверяющим центром.",
            now=NOW,
        )
        session.commit()
        assert alert is not None
        assert alert.outbox_id is not None
        outbox = session.get_one(OutboxMessage, alert.outbox_id)
    assert (outbox.kind, outbox.status, outbox.next_attempt_at) == ("alert", "pending", NOW)
    assert outbox.recipients == [ADMIN, "second@fund.test"]
    letter = parse(outbox.raw)
    assert letter["From"] == FROM
    assert letter["To"] == f"{ADMIN}, second@fund.test"
    assert letter["Subject"] == "[mailbot-test] Неизвестный УЦ"
    assert letter["Auto-Submitted"] == "auto-generated"
    assert letter[LOOP_HEADER] == "mailbot-test"
    assert letter["Message-ID"] == outbox.message_id
    assert outbox.message_id.endswith("@fund.test>")
    assert letter["Date"] is not None
    body = letter.get_body(("plain",))
    assert body is not None
    assert body.get_content_charset() == "utf-8"
    text = body.get_content()
    assert "неизвестным удостоверяющим центром" in text
    # The footer dates the alert in the configured time zone (Moscow, UTC+3).
    assert "01.03.2025 12:00:00" in text


def test_same_dedup_key_gives_one_alert(sessions: sessionmaker[Session]) -> None:
    config = make_config(25)
    with sessions() as session:
        first = queue_alert(session, config, "forgery", "forgery:1234", "Подделка?", "Тело")
        # Also within the same transaction, before the caller commits.
        assert queue_alert(session, config, "forgery", "forgery:1234", "Подделка?", "Тело") is None
        session.commit()
    with sessions() as session:
        assert queue_alert(session, config, "forgery", "forgery:1234", "again", "again") is None
        other = queue_alert(session, config, "forgery", "forgery:5678", "Подделка?", "Тело")
        session.commit()
        assert first is not None and other is not None
        assert count(session, Alert) == 2
        assert count(session, OutboxMessage) == 2


def test_attachment_parses_back_intact(sessions: sessionmaker[Session]) -> None:
    config = make_config(25)
    with sessions() as session:
        alert = queue_alert(
            session,
            config,
            "unknown_ca",
            "unknown-ca:1",
            "Unknown CA",
            "The certificate is attached.",
            attachments=[("Иванов сертификат.cer", CERTIFICATE, "application/pkix-cert")],
        )
        session.commit()
        assert alert is not None and alert.outbox_id is not None
        raw = session.get_one(OutboxMessage, alert.outbox_id).raw
    [attachment] = list(parse(raw).iter_attachments())
    assert attachment.get_filename() == "Иванов сертификат.cer"
    assert attachment.get_content_type() == "application/pkix-cert"
    assert attachment.get_content() == CERTIFICATE


def test_without_admin_addresses_the_alert_is_only_recorded(
    sessions: sessionmaker[Session],
) -> None:
    config = make_config(25, alerts=())
    with capture_logs() as logs, sessions() as session:
        alert = queue_alert(session, config, "poison_letter", "poison:42", "Poison", "Body")
        session.commit()
        assert alert is not None
        assert alert.outbox_id is None
        assert count(session, Alert) == 1
        assert count(session, OutboxMessage) == 0
    assert any(
        entry["log_level"] == "warning" and "alert_addresses" in entry["event"] for entry in logs
    )


def test_long_kind_and_key_are_cut_to_the_columns(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        alert = queue_alert(session, make_config(25), "k" * 80, "d" * 400, "S", "B")
        session.commit()
        assert alert is not None
        assert (len(alert.kind), len(alert.dedup_key)) == (50, 300)


async def test_alert_goes_out_through_the_outbox(
    sessions: sessionmaker[Session], smtp_factory: ServerFactory
) -> None:
    server = smtp_factory()
    config = make_config(server.port)
    with sessions() as session:
        queue_alert(
            session, config, "crl_unavailable", "crl:1:2025-03-01", "CRL", "Нет CRL", now=NOW
        )
        session.commit()
    report = await OutboxSender(config, sessions, OUTBOX_ALERTS).flush(
        NOW + dt.timedelta(seconds=1)
    )
    assert report.sent == 1
    [received] = server.messages
    assert received.recipients == (ADMIN,)
    assert received.message["Auto-Submitted"] == "auto-generated"
