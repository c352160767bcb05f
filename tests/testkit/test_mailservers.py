"""The harness's real servers: SMTP in, Dovecot INBOX, IMAPS out, with the daemon's libraries."""

from __future__ import annotations

import ssl
from email.message import EmailMessage

import aioimaplib
import aiosmtplib

from testkit.dovecot import DovecotServer
from testkit.smtpd import SmtpServer
from tests.conftest import MAIL_USERS


def letter(subject: str, to: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "Отправитель <sender@example.org>"
    message["To"] = to
    message["Subject"] = subject
    message.set_content("Тело письма\n")
    return message


async def fetch_subjects(dovecot: DovecotServer, user: str) -> list[str]:
    """Read every Subject of *user*'s INBOX over IMAPS, verifying the server certificate."""
    context = ssl.create_default_context(cafile=str(dovecot.ca_file))
    client = aioimaplib.IMAP4_SSL(
        host="127.0.0.1", port=dovecot.imaps_port, ssl_context=context, timeout=10
    )
    await client.wait_hello_from_server()
    response = await client.login(user, MAIL_USERS[user])
    assert response.result == "OK"
    assert (await client.select("INBOX")).result == "OK"
    search = await client.uid_search("ALL")
    uids = search.lines[0].decode().split()
    subjects = []
    for uid in uids:
        fetched = await client.uid("fetch", uid, "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        assert fetched.result == "OK"
        header = bytes(next(line for line in fetched.lines if isinstance(line, bytearray)))
        subjects.append(header.decode().strip())
    await client.logout()
    return subjects


async def test_smtp_to_dovecot_inbox_and_back_over_imaps(
    dovecot: DovecotServer, smtp: SmtpServer
) -> None:
    dovecot.expunge_all("user1")
    await aiosmtplib.send(
        letter("Проверка связи", dovecot.address("user1")), hostname="127.0.0.1", port=smtp.port
    )
    assert len(smtp.messages) == 1
    assert smtp.messages[0].recipients == ("user1@example.test",)
    assert dovecot.message_count("user1") == 1
    subjects = await fetch_subjects(dovecot, "user1")
    assert subjects == ["Subject: =?utf-8?b?0J/RgNC+0LLQtdGA0LrQsCDRgdCy0Y/Qt9C4?="]


async def test_outside_recipients_are_only_recorded(
    dovecot: DovecotServer, smtp: SmtpServer
) -> None:
    before = dovecot.message_count("user2")
    await aiosmtplib.send(letter("x", "someone@far.away"), hostname="127.0.0.1", port=smtp.port)
    assert [m.recipients for m in smtp.messages] == [("someone@far.away",)]
    assert dovecot.message_count("user2") == before


async def test_unknown_local_user_is_refused(dovecot: DovecotServer, smtp: SmtpServer) -> None:
    try:
        await aiosmtplib.send(
            letter("x", "nobody-here@example.test"), hostname="127.0.0.1", port=smtp.port
        )
    except aiosmtplib.SMTPResponseException as exc:
        assert exc.code == 550
    else:
        raise AssertionError("an unknown local recipient must be refused")
    assert smtp.messages == []


async def test_configured_failure_is_returned(dovecot: DovecotServer, smtp: SmtpServer) -> None:
    smtp.handler.fail_with = "451 4.3.0 try again later"
    try:
        await aiosmtplib.send(
            letter("x", dovecot.address("user3")), hostname="127.0.0.1", port=smtp.port
        )
    except aiosmtplib.SMTPResponseException as exc:
        assert exc.code == 451
    else:
        raise AssertionError("the configured 451 must reach the client")


def test_plain_imap_login_and_lmtp_delivery(dovecot: DovecotServer) -> None:
    import imaplib

    dovecot.expunge_all("reestrin")
    dovecot.deliver("reestrin", b"From: a@example.org\r\nSubject: ADD_CERT\r\n\r\nbody\r\n")
    with imaplib.IMAP4("127.0.0.1", dovecot.imap_port) as client:
        client.login("reestrin", MAIL_USERS["reestrin"])
        status, data = client.select("INBOX")
        assert status == "OK"
        assert data == [b"1"]
        status, folders = client.list()
        names = b" ".join(folders or [])
        for folder in (b"Processed", b"Rejected", b"Failed"):
            assert folder in names


def test_wrong_password_is_refused(dovecot: DovecotServer) -> None:
    import imaplib

    with imaplib.IMAP4("127.0.0.1", dovecot.imap_port) as client:
        try:
            client.login("reestrin", "wrong")
        except imaplib.IMAP4.error as exc:
            assert "AUTHENTICATIONFAILED" in str(exc) or "failed" in str(exc).lower()
        else:
            raise AssertionError("a wrong password must be refused")
