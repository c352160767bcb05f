"""The pages on letters the real pipeline processed: dashboard, journal search, a letter's page,
the raw letter for admins, SNILS by role, hostile letter data rendered as text."""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from mailbot.directory.models import AuditEntry, LetterRecord
from testkit import letters
from testkit import pki as factory
from testkit.web import PinnedClock, WebServer, add_web_user, web_server
from tests.app.world import SNILS, World, cert_letter

HOSTILE_SUBJECT = "ADD_CERT <script>alert('x')</script> \u202eгзакло\u200b 𝔘𝔫𝔦 \"q\" & <img src=x>"


@pytest.fixture
def console(world: World) -> Iterator[WebServer]:
    """The console on the world's database, its clock at the world's "now"."""
    with web_server(world.config, clock=PinnedClock(factory.NOW)) as running:
        for role in ("viewer", "operator", "admin"):
            add_web_user(running, role, role)
        yield running


def _letter_id(world: World, raw: bytes) -> int:
    world.process(raw)
    with world.sessions() as session:
        row = session.scalars(select(LetterRecord).order_by(LetterRecord.id.desc())).first()
        assert row is not None
        return row.id


def test_a_hostile_subject_renders_as_text_in_the_journal_and_on_the_letters_page(
    world: World, console: WebServer
) -> None:
    letter_id = _letter_id(world, letters.no_attachment_letter(subject=HOSTILE_SUBJECT))
    with console.login("admin") as client:
        journal = client.get("/journal")
        page = client.get(f"/letters/{letter_id}")
    for response in (journal, page):
        assert response.status_code == 200
        assert "<script" not in response.text
        assert "<img" not in response.text
        assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in response.text
        # The right-to-left override is shown as an escape (it would disguise the text);
        # other odd characters arrive as they are, as text.
        assert "\\u202eгзакло\u200b 𝔘𝔫𝔦 &#34;q&#34; &amp; &lt;img src=x&gt;" in response.text
        assert "\u202e" not in response.text
    assert "Subject" in page.text


def test_the_letters_page_tells_the_story_and_masks_the_snils_but_for_admins(
    world: World, console: WebServer
) -> None:
    participant = factory.make_end_entity(world.ca, snils=SNILS)
    letter_id = _letter_id(world, cert_letter(participant))
    pages = {}
    for role in ("viewer", "operator", "admin"):
        with console.login(role) as client:
            pages[role] = client.get(f"/letters/{letter_id}").text
    masked = "*********" + SNILS[-2:]
    for role in ("viewer", "operator"):
        assert masked in pages[role]
        assert SNILS not in pages[role]
    admin = pages["admin"]
    assert SNILS in admin
    # The deciding rule, the reply as queued, the outbox state.
    assert "snils_matches — решающее" in admin
    assert "success" in admin
    assert "Очередь отправки №" in admin
    assert html.escape("Сертификат") in admin


def test_only_admins_download_the_raw_letter_and_every_download_is_audited(
    world: World, console: WebServer
) -> None:
    raw = letters.no_attachment_letter(subject="Скачайте меня")
    letter_id = _letter_id(world, raw)
    for role in ("viewer", "operator"):
        with console.login(role) as client:
            assert f"/letters/{letter_id}/raw" not in client.get(f"/letters/{letter_id}").text
            assert client.get(f"/letters/{letter_id}/raw").status_code == 403
    with console.login("admin") as client:
        assert f"/letters/{letter_id}/raw" in client.get(f"/letters/{letter_id}").text
        download = client.get(f"/letters/{letter_id}/raw")
    assert download.status_code == 200
    assert download.content == raw
    assert download.headers["content-type"] == "application/octet-stream"
    assert download.headers["content-disposition"].startswith("attachment;")
    with world.sessions() as session:
        entries = session.scalars(select(AuditEntry).where(AuditEntry.action == "letter.download"))
        assert [(e.actor, e.target) for e in entries] == [("admin", f"letter:{letter_id}")]


def test_an_unknown_letter_is_404(console: WebServer) -> None:
    with console.login("viewer") as client:
        assert client.get("/letters/999999").status_code == 404


def _add_rows(world: World, count: int, **fields: object) -> None:
    with world.sessions() as session:
        for index in range(count):
            values: dict[str, object] = {
                "mailbox": "INBOX", "sha256": f"{index:064x}", "sender": "bulk@clinic.example",
                "subject": f"bulk {index}", "state": "done", "outcome": "no_cer",
                "received_at": factory.NOW - dt.timedelta(minutes=index),
            }  # fmt: skip
            values.update(fields)
            session.add(LetterRecord(**values))
        session.commit()


def test_the_journal_searches_by_sender_subject_outcome_and_dates_and_pages(
    world: World, console: WebServer
) -> None:
    _add_rows(world, 55)
    _add_rows(world, 1, sender="other@clinic.example", subject="Про 100%_скидку Add_Cert",
              outcome="success", received_at=factory.NOW - dt.timedelta(days=3))  # fmt: skip
    with console.login("viewer") as client:
        first = client.get("/journal", params={"sender": "bulk@clinic.example"})
        second = client.get("/journal", params={"sender": "bulk@clinic.example", "page": "2"})
        # SQL wildcards are literal; Latin letters match in any case (Cyrillic: SQLite
        # folds ASCII only, so exactly).
        subject = client.get("/journal", params={"subject": "100%_скидку add_CERT"})
        wildcard = client.get("/journal", params={"subject": "%"})
        outcome = client.get("/journal", params={"outcome": "success"})
        day = (factory.NOW - dt.timedelta(days=3)).date().isoformat()
        dates = client.get("/journal", params={"since": day, "until": day})
        wrong = client.get("/journal", params={"since": "yesterday"})
    assert first.text.count("<td>bulk@clinic.example</td>") == 50
    assert "page=2" in first.text
    assert second.text.count("<td>bulk@clinic.example</td>") == 5
    assert "page=3" not in second.text
    for response in (subject, wildcard, outcome, dates):  # each finds only the one
        assert "other@clinic.example" in response.text, response.url
        assert "<td>bulk@clinic.example</td>" not in response.text
    assert "не в виде ГГГГ-ММ-ДД" in wrong.text


def test_the_dashboard_counts_today_and_the_week_and_shows_what_waits(
    world: World, console: WebServer, tmp_path: Path
) -> None:
    _letter_id(world, cert_letter(factory.make_end_entity(world.ca, snils=SNILS)))
    _add_rows(world, 2, received_at=factory.NOW - dt.timedelta(days=40))
    with console.login("viewer") as client:
        page = client.get("/")
    assert page.status_code == 200
    assert "Сегодня: 1" in page.text
    assert "outcome-success" in page.text
    # The world's CA, with the CRL the letter's check fetched from the drop folder.
    assert "УЦ Тест" in page.text
