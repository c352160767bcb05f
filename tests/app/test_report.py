"""The administrators' periodic report on SQLite and PostgreSQL, with a pinned clock.

The journal, quarantine, deferred letters and outbox rows are real rows; the
certificates are real test-PKI certificates registered as the daemon does.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
from collections.abc import Callable
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest
from sqlalchemy import func, select

from mailbot.app import report
from mailbot.app.report_period import due_period
from mailbot.directory.authorities import register_ca
from mailbot.directory.engine import make_engine
from mailbot.directory.models import (
    LetterRecord,
    OutboxMessage,
    QuarantinedCertificate,
    SentReport,
)
from mailbot.directory.session import session_factory
from mailbot.notices.report_letter import render_report
from tests.app import reminders_world
from tests.app.reminders_world import NOW, World

make_world = reminders_world.make_world

DAY = dt.timedelta(days=1)
ADMIN = "pki-admin@fund.example"
# NOW is Monday 2 March 2026, 12:00 in Moscow: the weekly report of 23.02-01.03 is due.
WEEK_START = dt.datetime(2026, 2, 22, 21, 0, tzinfo=dt.UTC)  # Monday 23.02 00:00 MSK


@pytest.fixture
def world(make_world: Callable[..., World]) -> World:
    return make_world(
        sections={
            "admin": {"alert_addresses": [ADMIN]},
            "report": {"enabled": True, "period": "weekly", "weekday": "monday", "hour": 8},
        }
    )


def test_the_due_period_follows_weekday_hour_and_time_zone() -> None:
    moscow = "Europe/Moscow"

    def days(now: dt.datetime, kind: str = "weekly", hour: int = 8) -> tuple[str, str, str]:
        period = due_period(kind, "monday", hour, moscow, now)
        return period.key, period.first_day.isoformat(), period.last_day.isoformat()

    # Monday 07:59 in Moscow: last week's report is not due yet, the one before is.
    assert days(dt.datetime(2026, 3, 2, 4, 59, tzinfo=dt.UTC)) == (
        "weekly:2026-02-16", "2026-02-16", "2026-02-22",
    )  # fmt: skip
    monday_eight = dt.datetime(2026, 3, 2, 5, 0, tzinfo=dt.UTC)
    assert days(monday_eight)[0] == "weekly:2026-02-23"
    # Sunday night still owes the same week; the next Monday 08:00 the next one.
    assert days(dt.datetime(2026, 3, 8, 20, 59, tzinfo=dt.UTC))[0] == "weekly:2026-02-23"
    assert days(dt.datetime(2026, 3, 9, 5, 0, tzinfo=dt.UTC))[0] == "weekly:2026-03-02"
    period = due_period("weekly", "monday", 8, moscow, monday_eight)
    assert (period.start, period.end) == (WEEK_START, WEEK_START + 7 * DAY)
    # Daily: yesterday, from 08:00; hour 0 is "the last period that has ended".
    assert days(monday_eight, "daily") == ("daily:2026-03-01", "2026-03-01", "2026-03-01")
    assert days(monday_eight - dt.timedelta(minutes=1), "daily")[0] == "daily:2026-02-28"
    assert days(monday_eight - dt.timedelta(hours=5), "daily", hour=0)[0] == "daily:2026-03-01"
    # A Friday report covers Friday to Thursday.
    friday = due_period("weekly", "friday", 8, moscow, monday_eight)
    assert (friday.first_day, friday.last_day) == (dt.date(2026, 2, 20), dt.date(2026, 2, 26))


def add_letter(
    world: World,
    received: dt.datetime,
    sender: str | None,
    outcome: str | None,
    state: str = "done",
    subject: str = "ADD_CERT",
    detail: dict[str, object] | None = None,
) -> int:
    with world.sessions() as session:
        row = LetterRecord(
            mailbox="INBOX",
            sha256=hashlib.sha256(f"{received}{sender}{outcome}{subject}".encode()).hexdigest(),
            sender=sender, subject=subject, received_at=received, state=state, outcome=outcome,
            message_id=f"<{received.timestamp()}.{outcome}@clinic.example>",
            detail=detail or {},
        )  # fmt: skip
        session.add(row)
        session.commit()
        return row.id


def fill_the_week(world: World) -> None:
    """Letters of the week before NOW (and one on each side of it), waiting things, a failure."""
    first_monday = WEEK_START + dt.timedelta(hours=1)
    add_letter(world, WEEK_START - dt.timedelta(seconds=1), "before@clinic.example", "no_cer")
    add_letter(world, WEEK_START + 7 * DAY, "after@clinic.example", "no_cer")
    add_letter(world, first_monday, "ivanov@clinic.example", "success")
    add_letter(world, first_monday + DAY, "ivanov@clinic.example", "success")
    for n in range(3):
        add_letter(world, first_monday + n * DAY, "petrov@clinic.example", "no_cer")
    add_letter(world, first_monday + 2 * DAY, "spam@stranger.example", "no_reply",
               subject="=HYPERLINK(\"http://evil.example\")")  # fmt: skip
    add_letter(world, first_monday + 3 * DAY, "sidorov@clinic.example", "leave")
    add_letter(world, first_monday + 4 * DAY, "petrov@clinic.example", None, state="claimed")
    add_letter(
        world, NOW - 2 * DAY, "kuznetsov@clinic.example", "deferred", state="deferred",
        detail={"deferral": {"since": (NOW - 2 * DAY).isoformat(), "ca_name": "УЦ Дальний"}},
    )  # fmt: skip
    with world.sessions() as session:
        register_ca(session, world.ca.cert, now=NOW - 30 * DAY)
        session.add(
            QuarantinedCertificate(
                sender="orlov@clinic.example", thumbprint_sha1="AB" * 20, serial="0A0B",
                issuer_dn="CN=Чужой УЦ", path="/nonexistent", status="pending",
                created_at=NOW - 3 * DAY - dt.timedelta(hours=2),
            )
        )  # fmt: skip
        session.add(
            OutboxMessage(
                kind="reply", recipients=["gone@clinic.example"], message_id="<failed@fund>",
                raw=b"", status="failed", last_error="550 5.1.1 no such user",
                created_at=first_monday + DAY,
            )
        )  # fmt: skip
        session.commit()
    world.register(NOW + 10 * DAY)  # listed (30 days)
    world.register(NOW + 40 * DAY, cn="Иванов И. И. (новый)")  # not listed


def report_letters(world: World) -> list[EmailMessage]:
    with world.sessions() as session:
        rows = session.scalars(
            select(OutboxMessage).where(OutboxMessage.kind == "report").order_by(OutboxMessage.id)
        ).all()
        messages = []
        for row in rows:
            assert row.recipients == [ADMIN]
            message = message_from_bytes(row.raw, policy=policy.default)
            assert isinstance(message, EmailMessage)
            messages.append(message)
        return messages


def csv_rows(message: EmailMessage) -> list[list[str]]:
    (attachment,) = list(message.iter_attachments())
    assert attachment.get_content_type() == "text/csv"
    data = attachment.get_payload(decode=True)
    assert isinstance(data, bytes) and data.startswith(b"\xef\xbb\xbf")  # BOM: Excel reads UTF-8
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline=""), delimiter=";"))


def test_the_weekly_report_is_queued_once_with_the_week_in_it(world: World) -> None:
    fill_the_week(world)
    period = report.current_period(world.config, NOW)
    assert period.key == "weekly:2026-02-23"

    result = report.send_report(world.config, world.sessions, period, NOW)

    assert result.status == report.SENT
    (letter,) = report_letters(world)
    assert letter["To"] == ADMIN
    assert letter["Auto-Submitted"] == "auto-generated"
    assert letter["Subject"] == "[mailbot] Еженедельный отчёт за 23.02.2026 — 01.03.2026: писем 9"
    body = letter.get_body(preferencelist=("plain",))
    assert body is not None
    text = body.get_content().replace("\r\n", "\n")
    assert "Письма за период по результату (всего 9):" in text
    assert "  нет файла сертификата: 3\n  сертификат зарегистрирован: 2\n" in text
    assert "  ждёт списка отзыва: 1" in text and "  в обработке: 1" in text
    assert "  не для mailbot (оставлено в ящике): 1" in text
    # Rejected: filed to Rejected (no_cer, no_reply); not success, leave or undecided.
    senders = text.split("отклонённых писем:\n")[1].split("\n\n")[0]
    assert senders == "  petrov@clinic.example: 3\n  spam@stranger.example: 1"
    assert "№1: серийный номер 0A0B, отправитель orlov@clinic.example, ждёт 3 дн. 2 ч 0 мин" in text
    assert "от kuznetsov@clinic.example, УЦ «УЦ Дальний», ждёт 2 дн. 0 ч 0 мин" in text
    assert (
        "ближайшие 30 дн. (1):\n  Иванов Иван Иванович, СНИЛС *********95: действует до 12.03.2026 12:00:00"
        in text
    )
    assert "  УЦ Тест: списка отзыва нет" in text
    assert "окончательно не принял (за период: 1):" in text
    assert "reply для gone@clinic.example: 550 5.1.1 no such user" in text

    rows = csv_rows(letter)
    assert rows[0] == ["№ в журнале", "Получено", "Отправитель", "Тема", "Результат", "Message-ID"]
    assert len(rows) == 1 + 9
    assert rows[1][1:3] == ["23.02.2026 01:00:00", "ivanov@clinic.example"]
    assert rows[1][4] == "сертификат зарегистрирован"
    assert all(row[5].startswith("<") for row in rows[1:])
    stranger = next(row for row in rows if row[2] == "spam@stranger.example")
    assert stranger[3] == '\'=HYPERLINK("http://evil.example")'  # never a formula in Excel

    # The job again in the same week, and after a "restart" (a new engine): nothing.
    again = report.send_report(world.config, world.sessions, period, NOW + DAY)
    assert again.status == report.ALREADY_SENT and again.sent_at == NOW
    engine = make_engine(world.config.database_url)
    try:
        later = report.current_period(world.config, NOW + 6 * DAY)
        assert later == period
        assert report.send_report(world.config, session_factory(engine), later, NOW + 6 * DAY)\
            .status == report.ALREADY_SENT  # fmt: skip
    finally:
        engine.dispose()
    assert len(report_letters(world)) == 1

    # The next week has its own report.
    following = report.current_period(world.config, NOW + 7 * DAY)
    assert following.key == "weekly:2026-03-02"
    assert report.send_report(world.config, world.sessions, following, NOW + 7 * DAY).sent
    letters = report_letters(world)
    assert len(letters) == 2 and "писем 1" in letters[1]["Subject"]  # the letter of 02.03
    with world.sessions() as session:
        keys = session.scalars(select(SentReport.period_key).order_by(SentReport.id)).all()
    assert keys == ["weekly:2026-02-23", "weekly:2026-03-02"]


def test_a_second_instance_racing_for_the_period_queues_nothing(
    world: World, database_url: str
) -> None:
    """Two mailbots both found the week unsent; the one that commits second is rolled back."""
    fill_the_week(world)
    period = report.current_period(world.config, NOW)
    engine = make_engine(database_url)
    try:
        with session_factory(engine)() as other:
            # The second instance reads and renders before the first one commits ...
            assert report.sent_report(other, period) is None
            contents = report.gather(world.config, other, session_factory(engine), period, NOW)
            letter = render_report(world.config, contents, NOW)
            # ... the first one sends ...
            assert report.send_report(world.config, world.sessions, period, NOW).sent
            # ... and the second one's insert fails on the period key: its letter goes too.
            raced = report.record_report(world.config, other, period, letter, NOW)
            assert raced.status == report.RACED and raced.outbox_id is None
    finally:
        engine.dispose()
    assert len(report_letters(world)) == 1
    with world.sessions() as session:
        assert session.scalar(select(func.count(SentReport.id))) == 1
        assert session.scalar(select(func.count(OutboxMessage.id))) == 2  # the failure + report


def test_dry_run_renders_and_writes_nothing(world: World) -> None:
    fill_the_week(world)
    period = report.last_period(world.config, NOW - DAY, "daily")
    assert period.key == "daily:2026-02-28"
    result = report.send_report(world.config, world.sessions, period, NOW, dry_run=True)
    assert result.status == report.DRY_RUN and result.letter is not None
    assert result.letter.subject == "Ежедневный отчёт за 28.02.2026: писем 1"
    assert result.letter.attachment[0] == "mailbot-journal-2026-02-28.csv"
    assert report_letters(world) == []
    with world.sessions() as session:
        assert session.scalar(select(func.count(SentReport.id))) == 0
    # A period already sent still previews.
    assert report.send_report(world.config, world.sessions, period, NOW).sent
    preview = report.send_report(world.config, world.sessions, period, NOW, dry_run=True)
    assert preview.status == report.DRY_RUN and len(report_letters(world)) == 1


def test_an_empty_week_says_so(world: World) -> None:
    period = report.current_period(world.config, NOW)
    result = report.send_report(world.config, world.sessions, period, NOW)
    assert result.letter is not None
    body = result.letter.body
    assert "(всего 0):\n  нет\n" in body
    assert "ждут решения администратора (0):\n  нет\n" in body
    assert csv_rows(report_letters(world)[0])[1:] == []
