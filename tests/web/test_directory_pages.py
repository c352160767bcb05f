"""The directory pages over HTTP on SQLite and PostgreSQL: lists and search, add, edit,
deactivate through the forms, refusals shown in Russian, audit with masked SNILS, the CSV
import's preview (writing nothing) and commit, hostile cells rendered inert, the export."""

from __future__ import annotations

import html
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import func, select

from mailbot.directory import subscribers as directory
from mailbot.directory.models import AuditEntry, CertificateRecord, Organisation, Subscriber
from mailbot.directory.session import database
from testkit import pki as factory
from testkit.directory_csv import snils_of
from testkit.web import PinnedClock, WebServer, add_web_user, csrf_token, web_server
from tests.app.world import SNILS, World, cert_letter

GOOD_SNILS = snils_of(7)
MASKED = "*********" + GOOD_SNILS[-2:]


def _seed(server: WebServer) -> tuple[int, int]:
    """An organisation with one subscriber (SNILS, one address): their ids."""
    with database(server.config) as sessions, sessions() as session:
        organisation = directory.add_organisation(session, "Поликлиника № 1", inn="7707083893")
        directory.add_organisation(session, "Аптека «Здоровье»")
        subscriber = directory.add_subscriber(
            session, organisation.id, surname="Петров", given_names="Пётр Петрович",
            snils=GOOD_SNILS, addresses=["petrov@clinic.example"],
        )  # fmt: skip
        session.commit()
        return organisation.id, subscriber.id


def _post(client: httpx.Client, page: str, action: str, data: dict[str, str]) -> httpx.Response:
    """Submit a form of *page* (its CSRF token taken from the page)."""
    token = csrf_token(client.get(page).text)
    return client.post(action, data={**data, "csrf_token": token})


def _audit(server: WebServer, action: str) -> list[AuditEntry]:
    with database(server.config) as sessions, sessions() as session:
        query = select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)
        return list(session.scalars(query))


def test_lists_search_and_paginate(server: WebServer) -> None:
    organisation_id, subscriber_id = _seed(server)
    with database(server.config) as sessions, sessions() as session:
        for number in range(55):
            directory.add_organisation(session, f"Клиника {number:02d}")
        session.commit()
    with server.login("viewer") as client:
        everything = client.get("/organisations")
        second = client.get("/organisations", params={"page": "2"})
        by_inn = client.get("/organisations", params={"q": "7707083893"})
        by_name = client.get("/subscribers", params={"q": "Петров"})
        by_address = client.get("/subscribers", params={"q": "petrov@clinic"})
        by_snils = client.get("/subscribers", params={"q": GOOD_SNILS[:3] + "-" + GOOD_SNILS[3:]})
        nobody = client.get("/subscribers", params={"q": "Сидоров"})
        trusted = client.get("/addresses", params={"q": "PETROV@"})
        no_address = client.get("/addresses", params={"q": "%"})
        shown = client.get(f"/organisations/{organisation_id}")
    assert everything.status_code == 200
    assert "дальше →" in everything.text and "Клиника 54" not in everything.text
    assert "Клиника 54" in second.text and "← назад" in second.text
    assert "Поликлиника № 1" in by_inn.text and "Аптека" not in by_inn.text
    for found in (by_name, by_address, by_snils):
        assert f'href="/subscribers/{subscriber_id}"' in found.text
    assert "ничего не найдено" in nobody.text
    assert "petrov@clinic.example" in trusted.text
    assert f'href="/subscribers/{subscriber_id}"' in trusted.text
    assert "ничего не найдено" in no_address.text  # LIKE wildcards are taken literally
    # A viewer sees SNILS masked, and no forms that change anything.
    assert MASKED in shown.text and GOOD_SNILS not in shown.text
    assert "/edit" not in shown.text


def test_an_operator_adds_edits_and_deactivates_through_the_forms(server: WebServer) -> None:
    with server.login("operator") as client:
        added = _post(client, "/organisations/new", "/organisations/new",
                      {"name": "Больница № 2", "inn": "", "ogrn": "", "registry_code": "B2"})  # fmt: skip
        assert added.status_code == 303
        page = added.headers["location"]
        organisation_id = int(page.rsplit("/", 1)[1])
        edited = _post(client, page, f"{page}/edit",
                       {"name": "Больница № 2 им. Пирогова", "registry_code": "B2"})  # fmt: skip
        assert edited.status_code == 303
        new = _post(client, f"{page}/subscribers/new", f"{page}/subscribers/new", {
            "surname": "Сидорова", "given_names": "Анна", "snils": GOOD_SNILS,
            "addresses": "anna@b2.example"})  # fmt: skip
        assert new.status_code == 303
        subscriber_page = new.headers["location"]
        subscriber_id = int(subscriber_page.rsplit("/", 1)[1])
        assert _post(client, subscriber_page, f"{subscriber_page}/addresses",
                     {"address": "Anna2@B2.example"}).status_code == 303  # fmt: skip
        assert _post(client, subscriber_page, f"{subscriber_page}/addresses/remove",
                     {"address": "anna@b2.example"}).status_code == 303  # fmt: skip
        # An empty SNILS field keeps the stored SNILS.
        assert _post(client, subscriber_page, f"{subscriber_page}/edit",
                     {"surname": "Сидорова-Ким", "given_names": "Анна", "snils": ""}
                     ).status_code == 303  # fmt: skip
        assert _post(client, subscriber_page, f"{subscriber_page}/active",
                     {"active": "0"}).status_code == 303  # fmt: skip
        assert _post(client, page, f"{page}/active", {"active": "0"}).status_code == 303
        shown = client.get(subscriber_page).text
    with database(server.config) as sessions, sessions() as session:
        organisation = session.get(Organisation, organisation_id)
        subscriber = directory.get_subscriber(session, subscriber_id)
        assert organisation is not None
        assert (organisation.name, organisation.active) == ("Больница № 2 им. Пирогова", False)
        assert (subscriber.surname, subscriber.snils, subscriber.active) == (
            "Сидорова-Ким", GOOD_SNILS, False,
        )  # fmt: skip
        assert {(a.address, a.active) for a in subscriber.addresses} == {
            ("anna@b2.example", False), ("anna2@b2.example", True),
        }  # fmt: skip
    assert "Включить абонента" in shown and MASKED in shown and GOOD_SNILS not in shown
    # Reactivation goes the same way back.
    with server.login("operator") as client:
        assert _post(client, subscriber_page, f"{subscriber_page}/active",
                     {"active": "1"}).status_code == 303  # fmt: skip
    actions = [e.action for e in _audit(server, "subscriber.activate")]
    assert actions == ["subscriber.activate"]


def test_every_change_is_audited_with_before_and_after_and_the_snils_masked(
    server: WebServer,
) -> None:
    _, subscriber_id = _seed(server)
    other = snils_of(8)
    page = f"/subscribers/{subscriber_id}"
    with server.login("operator") as client:
        assert _post(client, page, f"{page}/edit", {"surname": "Петров", "given_names":
                     "Пётр Петрович", "title": "врач", "snils": other}).status_code == 303  # fmt: skip
    [entry] = _audit(server, "subscriber.edit")
    assert entry.actor == "operator" and entry.target == f"subscriber:{subscriber_id}"
    assert entry.details["before"]["title"] is None
    assert entry.details["after"]["title"] == "врач"
    assert entry.details["before"]["snils"] == MASKED
    assert entry.details["after"]["snils"] == "*********" + other[-2:]
    assert GOOD_SNILS not in str(entry.details) and other not in str(entry.details)


@pytest.mark.parametrize(
    ("action", "data", "shown"),
    [
        ("edit", {"surname": "Петров", "snils": "123-456-789 00"}, "СНИЛС неверен"),
        ("addresses", {"address": "petrov@clinic.example"}, "уже в списке доверенных"),
        ("addresses", {"address": "not an address"}, "Это не адрес электронной почты"),
    ],
)
def test_a_refused_change_is_shown_on_its_form_in_russian_and_nothing_changes(
    server: WebServer, action: str, data: dict[str, str], shown: str
) -> None:
    _, subscriber_id = _seed(server)
    page = f"/subscribers/{subscriber_id}"
    with server.login("operator") as client:
        refused = _post(client, page, f"{page}/{action}", data)
    assert refused.status_code == 400
    assert html.escape(shown) in refused.text
    typed = data.get("snils") or data["address"]
    assert f'value="{html.escape(typed)}"' in refused.text  # the form is refilled
    assert _audit(server, "subscriber.edit") == [] and _audit(server, "address.add") == []


def test_an_invalid_new_organisation_keeps_what_was_typed(server: WebServer) -> None:
    with server.login("operator") as client:
        refused = _post(client, "/organisations/new", "/organisations/new",
                        {"name": "Клиника Бета", "inn": "1234567890"})  # fmt: skip
    assert refused.status_code == 400
    assert "ИНН неверен" in refused.text and 'value="Клиника Бета"' in refused.text
    with database(server.config) as sessions, sessions() as session:
        assert session.scalar(select(func.count(Organisation.id))) == 0


def test_a_viewer_is_refused_every_change(server: WebServer) -> None:
    organisation_id, subscriber_id = _seed(server)
    with server.login("viewer") as client:
        token = csrf_token(client.get("/organisations").text)
        for action in (
            "/organisations/new",
            f"/organisations/{organisation_id}/edit",
            f"/organisations/{organisation_id}/active",
            f"/subscribers/{subscriber_id}/active",
            f"/subscribers/{subscriber_id}/addresses",
            "/directory/import/commit",
        ):
            answer = client.post(action, data={"csrf_token": token, "active": "0", "name": "X"})
            assert answer.status_code == 403, action
        assert client.get("/directory/import").status_code == 403
        assert client.get("/organisations/new").status_code == 403
        assert client.get(f"/organisations/{organisation_id}/subscribers/new").status_code == 403
        assert client.get("/directory/export").status_code == 403
    with server.login("operator") as client:
        # Without the CSRF token an operator is refused too.
        answer = client.post(f"/subscribers/{subscriber_id}/active", data={"active": "0"})
        assert answer.status_code == 403
    with database(server.config) as sessions, sessions() as session:
        assert all(s.active for s in session.scalars(select(Subscriber)))


CSV_HEADER = "organisation;surname;given_names;snils;addresses\r\n"


def _preview(client: httpx.Client, content: bytes) -> httpx.Response:
    token = csrf_token(client.get("/directory/import").text)
    return client.post(
        "/directory/import/preview",
        data={"csrf_token": token},
        files={"file": ("справочник.csv", content, "text/csv")},
    )


def _counts(server: WebServer) -> tuple[int, int]:
    with database(server.config) as sessions, sessions() as session:
        return (
            int(session.scalar(select(func.count(Organisation.id))) or 0),
            int(session.scalar(select(func.count(Subscriber.id))) or 0),
        )


def test_the_csv_preview_writes_nothing_and_the_commit_applies_that_file(
    server: WebServer,
) -> None:
    _seed(server)
    content = (
        CSV_HEADER
        + f"Поликлиника № 1;Петров;Пётр Петрович;{GOOD_SNILS};petrov@clinic.example\r\n"
        + f"Поликлиника № 1;Петров;Пётр Петрович;{GOOD_SNILS};second@clinic.example\r\n"
        + f"Новая клиника;Орлова;Ольга;{snils_of(9)};orlova@new.example\r\n"
    ).encode("cp1251")
    before = _counts(server)
    with server.login("operator") as client:
        preview = _preview(client, content)
        assert preview.status_code == 200, preview.text
        assert _counts(server) == before  # nothing written
        assert "cp1251" in preview.text
        assert "Орлова" in preview.text and "добавление" in preview.text
        assert "изменение" in preview.text
        assert GOOD_SNILS not in preview.text  # an operator sees SNILS masked
        commit = client.post("/directory/import/commit", data={
            "csrf_token": csrf_token(preview.text),
            "token": _field(preview.text, "token"),
            "sha256": _field(preview.text, "sha256"),
        })  # fmt: skip
        assert commit.status_code == 303
        done = client.get(commit.headers["location"])
        assert "добавлено 1, изменено 1, без изменений 1" in done.text
        # The upload is gone once applied: the same commit again is refused.
        again = client.post("/directory/import/commit", data={
            "csrf_token": csrf_token(preview.text),
            "token": _field(preview.text, "token"),
            "sha256": _field(preview.text, "sha256"),
        })  # fmt: skip
        assert again.status_code == 409
    assert _counts(server) == (before[0] + 1, before[1] + 1)
    [entry] = _audit(server, "directory.import")
    assert (entry.details["added"], entry.details["updated"], entry.details["unchanged"]) == (
        1,
        1,
        1,
    )


def test_an_upload_is_redeemed_only_by_its_uploader(server: WebServer) -> None:
    add_web_user(server, "operator2", "operator")
    content = (CSV_HEADER + f"Клиника;Орлова;Ольга;{snils_of(9)};o@x.example\r\n").encode()
    with server.login("operator") as client:
        preview = _preview(client, content)
    with server.login("operator2") as client:
        token = csrf_token(client.get("/directory/import").text)
        stolen = client.post("/directory/import/commit", data={
            "csrf_token": token, "token": _field(preview.text, "token"),
            "sha256": _field(preview.text, "sha256"),
        })  # fmt: skip
    assert stolen.status_code == 409
    assert _counts(server) == (0, 0)


def test_a_csv_with_errors_lists_them_by_line_and_offers_no_commit(server: WebServer) -> None:
    content = (
        CSV_HEADER + "Клиника;Орлова;Ольга;123;o@x.example\r\n;Без;Организации;;\r\n"
    ).encode()
    with server.login("operator") as client:
        preview = _preview(client, content)
    assert preview.status_code == 200
    assert "line 2:" in preview.text and "line 3:" in preview.text
    assert "/directory/import/commit" not in preview.text
    assert _counts(server) == (0, 0)


def test_hostile_csv_cells_render_inert_in_the_preview(server: WebServer) -> None:
    hostile = "<script>alert(1)</script>\u202eтекст"
    content = (
        "\ufeff" + CSV_HEADER + f"{hostile};<img src=x onerror=alert(2)>;\u2066Имя;;\r\n"
    ).encode("utf-8")
    with server.login("operator") as client:
        preview = _preview(client, content)
    assert preview.status_code == 200
    assert "<script>" not in preview.text and "<img" not in preview.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;\\u202eтекст" in preview.text
    assert "\u202e" not in preview.text and "\u2066" not in preview.text
    assert "utf-8-sig" in preview.text


def test_the_export_downloads_the_directory_for_admins_and_is_audited(
    server: WebServer,
) -> None:
    _seed(server)
    with server.login("admin") as client:
        download = client.get("/directory/export")
    assert download.status_code == 200
    assert download.headers["content-disposition"].startswith("attachment;")
    text = download.content.decode("utf-8-sig")
    assert text.startswith("organisation;")
    assert "Поликлиника № 1" in text and "petrov@clinic.example" in text
    assert [e.actor for e in _audit(server, "directory.export")] == ["admin"]


def _field(page: str, name: str) -> str:
    marker = f'name="{name}" value="'
    start = page.index(marker) + len(marker)
    return page[start : page.index('"', start)]


@pytest.fixture
def console(world: World) -> Iterator[WebServer]:
    with web_server(world.config, clock=PinnedClock(factory.NOW)) as running:
        add_web_user(running, "viewer", "viewer")
        yield running


def test_a_subscribers_page_lists_registered_certificates_with_their_letter(
    world: World, console: WebServer
) -> None:
    participant = factory.make_end_entity(world.ca, snils=SNILS)
    world.process(cert_letter(participant))
    with world.sessions() as session:
        record = session.scalars(select(CertificateRecord)).one()
        serial, thumbprint, letter_id = record.serial, record.thumbprint_sha1, record.letter_id
    with console.login("viewer") as client:
        page = client.get(f"/subscribers/{world.subscriber_id}")
    assert page.status_code == 200
    assert serial in page.text and thumbprint in page.text
    assert f'href="/letters/{letter_id}"' in page.text
    assert SNILS not in page.text
