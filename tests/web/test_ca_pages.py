"""The CAs and CRLs pages on real GOST CA certificates (SQLite and PostgreSQL): the list with
each CA's CRL state (stale in red), a CA's page, "refresh the CRL now" against a real CRL
server, deactivation and reactivation, the trust list; refusals, audit, hostile names."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import select

from mailbot.app.assembly import crl_store
from mailbot.directory.authorities import register_ca
from mailbot.directory.models import AuditEntry, CertificationAuthority
from testkit import pki as factory
from testkit import trust_list as tl
from testkit.crl_server import CrlServer
from testkit.trust_list_db import import_authorities
from testkit.web import PinnedClock, WebServer, add_web_user, csrf_token, web_server
from tests.app.world import SNILS, World, cert_letter

NOW = factory.NOW
HOSTILE_NAME = "УЦ <script>alert('x')</script> \u202eлож"


@pytest.fixture
def console(world: World) -> Iterator[WebServer]:
    """The console on the world's database (one CA registered), its clock at the PKI's "now"."""
    with web_server(world.config, clock=PinnedClock(NOW)) as running:
        for role in ("viewer", "operator", "admin"):
            add_web_user(running, role, role)
        yield running


@pytest.fixture
def crl_http() -> Iterator[CrlServer]:
    """A CRL distribution point on loopback (404 until given a CRL)."""
    server = CrlServer()
    yield server
    server.stop()


def _register(world: World, ca: factory.Issued) -> int:
    with world.sessions() as session:
        row, _ = register_ca(session, ca.cert, now=NOW)
        session.commit()
        return row.id


def _world_ca_id(world: World) -> int:
    with world.sessions() as session:
        row = session.scalars(
            select(CertificationAuthority).where(
                CertificationAuthority.thumbprint_sha1 == world.ca.cert.thumbprint_sha1
            )
        ).one()
        return row.id


def _row(html: str, needle: str) -> str:
    """The table row of *html* that contains *needle*."""
    rows = [r for r in re.findall(r"<tr[^>]*>.*?</tr>", html, re.S) if needle in r]
    assert len(rows) == 1, f"{len(rows)} rows contain {needle!r}"
    return rows[0]


def _audit(world: World) -> list[tuple[str, str, str, dict[str, object]]]:
    """The audit entries about CAs (logins are audited too)."""
    with world.sessions() as session:
        return [
            (e.actor, e.action, e.target, dict(e.details))
            for e in session.scalars(
                select(AuditEntry)
                .where(AuditEntry.target.startswith("ca:"))
                .order_by(AuditEntry.id)
            )
        ]


def _post(client: httpx.Client, page_path: str, action: str) -> int:
    """Open *page_path*, then POST *action* with its CSRF token; the status code."""
    page = client.get(page_path)
    assert page.status_code == 200
    return client.post(action, data={"csrf_token": csrf_token(page.text)}).status_code


def test_the_list_shows_each_cas_crl_state_stale_in_red_and_its_certificates(
    world: World, console: WebServer
) -> None:
    # A participant's certificate registered under the world's CA (its CRL taken from the
    # drop folder on the way: current), and a second CA whose only CRL ran out yesterday.
    world.process(cert_letter(factory.make_end_entity(world.ca, snils=SNILS)))
    stale_ca = factory.make_ca(HOSTILE_NAME, slot=5)
    _register(world, stale_ca)
    crl_store(world.config).ingest(
        factory.make_crl(
            stale_ca,
            this_update=NOW - dt.timedelta(days=10),
            next_update=NOW - dt.timedelta(days=1),
        ),
        stale_ca.cert,
    )
    unserved = factory.make_ca("УЦ Без СОС", slot=6)
    _register(world, unserved)
    with console.login("viewer") as client:
        page = client.get("/cas")
    assert page.status_code == 200
    fresh = _row(page.text, "УЦ Тест")
    assert 'class="stale"' not in fresh
    assert "актуален" in fresh
    assert world.ca.ski.hex().upper() in fresh
    assert "hand" in fresh and "not listed" in fresh
    assert '<td class="num">1</td>' in fresh  # the participant's certificate
    stale = _row(page.text, "alert(")
    assert '<tr class="stale">' in stale
    assert "устарел" in stale and "10 д 0 ч" in stale
    assert '<td class="num">0</td>' in stale
    none = _row(page.text, "УЦ Без СОС")
    assert '<tr class="stale">' in none and "нет СОС" in none
    # The hostile name is text: escaped, its right-to-left override shown as an escape.
    assert "<script" not in page.text
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; \\u202eлож" in page.text
    assert "\u202e" not in page.text


def test_a_cas_page_shows_its_certificate_crl_list_data_and_certificates(
    world: World, console: WebServer
) -> None:
    world.process(cert_letter(factory.make_end_entity(world.ca, snils=SNILS)))
    with world.sessions() as session:
        key = tl.TslKey((tl.TslCertificate(world.ca),), crl_urls=("http://list.example/ca.crl",))
        history = (
            tl.TslStatus(
                "Приостановлена", NOW - dt.timedelta(days=2000), NOW - dt.timedelta(days=1500)
            ),
        )
        import_authorities(
            session, world.config,
            [tl.TslAuthority("ООО «Тестовый УЦ»", (key,), registry_number="777", history=history)],
            version=1234,
        )  # fmt: skip
        session.commit()
    ca_id = _world_ca_id(world)
    pages = {}
    for role in ("viewer", "admin"):
        with console.login(role) as client:
            pages[role] = client.get(f"/cas/{ca_id}")
    viewer = pages["viewer"]
    assert viewer.status_code == 200
    text = viewer.text
    assert world.ca.cert.thumbprint_sha1 in text
    assert world.ca.cert.fingerprint_sha256 in text  # the certificate's own fields
    assert "1.2.643.7.1.1.1.1" in text  # its GOST 2012-256 key
    # The CRL taken for the letter: its number and state.
    assert "<th>Номер СОС</th><td>1</td>" in text
    assert "актуален" in text
    # The list's data and its status history.
    assert "<dt>В перечне как</dt><dd>ООО «Тестовый УЦ»</dd>" in text
    assert "<dt>Реестровый номер</dt><dd>777</dd>" in text
    assert "Приостановлена" in text
    assert "http://list.example/ca.crl" in text
    assert "<dd>1234</dd>" in text
    # The participant's certificate, its SNILS masked but for admins.
    assert "*********" + SNILS[-2:] in text and SNILS not in text
    assert SNILS in pages["admin"].text
    # A viewer is offered no action; an admin all three.
    assert "/refresh" not in text and "/deactivate" not in text
    assert f'action="/cas/{ca_id}/refresh"' in pages["admin"].text
    assert f'action="/cas/{ca_id}/deactivate"' in pages["admin"].text
    with console.login("viewer") as client:
        assert client.get("/cas/999999").status_code == 404


def test_refresh_now_fetches_from_the_cas_crl_server_and_records_the_outcome(
    world: World, console: WebServer, crl_http: CrlServer
) -> None:
    served = factory.make_ca("УЦ Сетевой", slot=4, crl_urls=(crl_http.url,))
    ca_id = _register(world, served)
    with console.login("operator") as client:
        # The distribution point answers 404: no CRL, and the page says why.
        assert _post(client, f"/cas/{ca_id}", f"/cas/{ca_id}/refresh") == 303
        failed = client.get(f"/cas/{ca_id}").text
        assert crl_http.requests >= 1
        assert "нет СОС" in failed
        assert "текущего СОС нет" in failed and "404" in failed
        crl_http.crl = factory.make_crl(served, number=42)
        seen = crl_http.requests
        assert _post(client, f"/cas/{ca_id}", f"/cas/{ca_id}/refresh") == 303
        page = client.get(f"/cas/{ca_id}").text
    assert crl_http.requests > seen
    assert "<th>Номер СОС</th><td>42</td>" in page
    assert "актуален" in page
    assert "получен СОС № 42" in page
    assert crl_http.url in page  # where it came from
    entries = [e for e in _audit(world) if e[1] == "crl.refresh"]
    assert [(e[0], e[2], e[3]["ok"]) for e in entries] == [
        ("operator", f"ca:{ca_id}", False),
        ("operator", f"ca:{ca_id}", True),
    ]
    assert entries[1][3]["crl_number"] == 42
    with console.login("viewer") as client:
        assert "актуален" in _row(client.get("/cas").text, "УЦ Сетевой")


def test_admins_deactivate_and_reactivate_a_ca_and_both_are_audited(
    world: World, console: WebServer
) -> None:
    ca_id = _world_ca_id(world)
    with console.login("admin") as client:
        assert _post(client, f"/cas/{ca_id}", f"/cas/{ca_id}/deactivate") == 303
        assert "отключён" in _row(client.get("/cas").text, "УЦ Тест")
        with world.sessions() as session:
            assert session.get(CertificationAuthority, ca_id).active is False  # type: ignore[union-attr]
        assert _post(client, f"/cas/{ca_id}", f"/cas/{ca_id}/reactivate") == 303
    with world.sessions() as session:
        assert session.get(CertificationAuthority, ca_id).active is True  # type: ignore[union-attr]
    assert [(e[0], e[1], e[2]) for e in _audit(world)] == [
        ("admin", "ca.deactivate", f"ca:{ca_id}"),
        ("admin", "ca.reactivate", f"ca:{ca_id}"),
    ]


def test_viewers_operators_and_forged_forms_change_nothing(
    world: World, console: WebServer, crl_http: CrlServer
) -> None:
    ca_id = _world_ca_id(world)
    with console.login("viewer") as client:
        for action in ("refresh", "deactivate", "reactivate"):
            assert _post(client, "/cas", f"/cas/{ca_id}/{action}") == 403
    with console.login("operator") as client:
        # Deactivation is the administrators' (it stops trusting every certificate of the CA).
        assert _post(client, "/cas", f"/cas/{ca_id}/deactivate") == 403
        # A form without the session's token is refused, whoever sends it.
        for action in ("refresh", "deactivate"):
            forged = client.post(f"/cas/{ca_id}/{action}", data={"csrf_token": "forged"})
            assert forged.status_code == 403
    with console.login("admin") as client:
        assert client.post(f"/cas/{ca_id}/deactivate", data={}).status_code == 403
    with console.client() as anonymous:
        response = anonymous.post(f"/cas/{ca_id}/deactivate", data={"csrf_token": "x"})
        assert response.status_code == 303 and response.headers["location"].startswith("/login")
    with world.sessions() as session:
        assert session.get(CertificationAuthority, ca_id).active is True  # type: ignore[union-attr]
    assert _audit(world) == []


def test_the_trust_list_page_shows_the_edition_counts_and_searchable_cas(
    world: World, console: WebServer
) -> None:
    with console.login("viewer") as client:
        assert "Перечень ещё не загружен" in client.get("/trust-list").text
    other = factory.make_ca("УЦ Другой", slot=3)
    with world.sessions() as session:
        report = import_authorities(
            session, world.config,
            [
                tl.TslAuthority("ООО Первый", (tl.TslKey((tl.TslCertificate(world.ca),)),),
                                registry_number="101", inn="7701000001"),
                tl.TslAuthority(HOSTILE_NAME, (tl.TslKey((tl.TslCertificate(other),)),),
                                registry_number="202", inn="7701000002",
                                status=tl.TslStatus("Прекращена", NOW - dt.timedelta(days=10))),
            ],
            version=555,
        )  # fmt: skip
        session.commit()
    with console.login("viewer") as client:
        page = client.get("/trust-list").text
        found = client.get("/trust-list", params={"q": "202"}).text
        nothing = client.get("/trust-list", params={"q": "нет такого"}).text
    assert "<dt>Версия</dt><dd>555</dd>" in page
    assert report.sha256 in page
    assert "<dt>УЦ в перечне</dt><dd>2 (всего известно: 2)</dd>" in page
    assert "<dt>Ключей</dt><dd>2</dd>" in page
    assert "Прекращена" in _row(page, "<td>202</td>")
    assert "ООО Первый" in page and "Действует" in _row(page, "ООО Первый")
    assert "<script" not in page and "&lt;script&gt;" in page
    assert "<td>202</td>" in found and "ООО Первый" not in found
    assert "ничего не найдено" in nothing
