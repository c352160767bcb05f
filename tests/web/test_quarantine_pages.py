"""The quarantine pages: viewers see, operators decide through the command line's code path
(``ca add``, ``quarantine reject``, ``quarantine retry``), every decision audited, hostile
issuer names inert; on SQLite and PostgreSQL, letters through the real pipeline."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from mailbot.cli.main import main
from mailbot.directory.authorities import register_ca
from mailbot.directory.models import (
    AuditEntry,
    CertificateRecord,
    CertificationAuthority,
    OutboxMessage,
    QuarantinedCertificate,
)
from mailbot.web.pages.quarantine import MAX_CA_FILE_BYTES
from testkit import letters
from testkit import pki as factory
from testkit import trust_list as tl
from testkit.trust_list_db import import_authorities
from testkit.web import PinnedClock, WebServer, add_web_user, csrf_token, web_server
from tests.app.world import SNILS, World, cert_letter
from tests.cli.test_quarantine_cli import (
    SUCCESS_PREFIX,
    followups,
    participant,
    publish_crl,
    quarantine,
    real_now,
    rows,
    stranger_ca,
    text_of,
    write_config,
)

HOSTILE_CA = "УЦ <script>alert('x')</script> \u202eгзакло"


@pytest.fixture
def world(make_world: Callable[..., World]) -> World:
    """The registration world deciding "now", as the command line does."""
    world = make_world(admin={"alert_addresses": ["admin@fund.example"]})
    world.processor.clock = real_now
    return world


def console_of(world: World, now: dt.datetime) -> Iterator[WebServer]:
    with web_server(world.config, clock=PinnedClock(now)) as running:
        for role in ("viewer", "operator", "admin"):
            add_web_user(running, role, role)
        yield running


@pytest.fixture
def console(world: World) -> Iterator[WebServer]:
    """The console on the world's configuration and database, its clock at the real "now"."""
    yield from console_of(world, real_now())


def item_page(client: httpx.Client, quarantine_id: int) -> httpx.Response:
    page = client.get(f"/quarantine/{quarantine_id}")
    assert page.status_code == 200, page.text
    return page


def quarantine_id_of(world: World, letter_id: int) -> int:
    return next(r.id for r in rows(world).values() if r.letter_id == letter_id)


def audit_actions(world: World) -> list[tuple[str, str]]:
    with world.sessions() as session:
        entries = session.scalars(select(AuditEntry).order_by(AuditEntry.id))
        return [(e.action, e.target) for e in entries if e.action != "login"]


def comparable(row: OutboxMessage, serial: str) -> tuple[object, ...]:
    """A follow-up without what differs between two certificates (serial, ids)."""
    return (row.kind, row.template_key, row.recipients, text_of(row).replace(serial, "SERIAL"))


def test_a_viewer_sees_the_quarantine_but_cannot_decide(
    world: World, console: WebServer, tmp_path: Path
) -> None:
    ca, _ = stranger_ca(world, tmp_path)
    certificate = participant(ca, 0xD01)
    letter_id = quarantine(world, certificate)
    quarantine_id = quarantine_id_of(world, letter_id)
    with console.login("viewer") as client:
        listing = client.get("/quarantine")
        page = item_page(client, quarantine_id)
        refused = [
            client.post(f"/quarantine/{quarantine_id}/{action}",
                        data={"csrf_token": csrf_token(page.text), "reason": "нет"})
            for action in ("reject", "retry", "register-listed")
        ]  # fmt: skip
        upload = client.post(
            f"/quarantine/{quarantine_id}/register-ca",
            data={"csrf_token": csrf_token(page.text)},
            files={"ca_file": ("ca.cer", ca.der, "application/pkix-cert")},
        )
    assert listing.status_code == 200
    assert certificate.cert.serial_hex in listing.text
    assert f'href="/letters/{letter_id}"' in listing.text
    assert f'href="/quarantine/{quarantine_id}"' in listing.text
    assert "Чужой УЦ 5" in page.text
    assert ca.ski.hex().upper() in page.text  # the AKI
    assert "перечень аккредитованных УЦ не загружен" in page.text  # the list's verdict
    assert "*********" + SNILS[-2:] in page.text and SNILS not in page.text
    assert "register-ca" not in page.text and "/reject" not in page.text  # no forms
    assert [r.status_code for r in (*refused, upload)] == [403, 403, 403, 403]
    assert {r.status for r in rows(world).values()} == {"pending"}
    assert followups(world) == []
    with world.sessions() as session:
        assert session.scalars(select(CertificationAuthority.name)).all() == ["УЦ Тест"]
    assert audit_actions(world) == []


def test_a_decision_without_the_sessions_csrf_token_is_refused(
    world: World, console: WebServer, tmp_path: Path
) -> None:
    ca, _ = stranger_ca(world, tmp_path)
    quarantine_id = quarantine_id_of(world, quarantine(world, participant(ca, 0xD02)))
    with console.login("operator") as client:
        page = item_page(client, quarantine_id)
        assert f'action="/quarantine/{quarantine_id}/reject"' in page.text
        forged = client.post(f"/quarantine/{quarantine_id}/reject",
                             data={"csrf_token": "forged", "reason": "нет"})  # fmt: skip
        missing = client.post(
            f"/quarantine/{quarantine_id}/register-ca",
            files={"ca_file": ("ca.cer", ca.der, "application/pkix-cert")},
        )
    assert (forged.status_code, missing.status_code) == (403, 403)
    assert "Форма устарела или подделана" in forged.text
    assert {r.status for r in rows(world).values()} == {"pending"}
    assert followups(world) == []


def test_registering_the_ca_by_upload_does_what_ca_add_does(
    world: World, console: WebServer, tmp_path: Path
) -> None:
    # Two certificates of one CA decided in the console, one of another CA by `ca add`.
    ca, _ = stranger_ca(world, tmp_path)
    other, other_file = stranger_ca(world, tmp_path, slot=6)
    first, second, third = participant(ca, 0xE01), participant(ca, 0xE02), participant(other, 0xE03)
    web_letters = [quarantine(world, first), quarantine(world, second)]
    cli_letter = quarantine(world, third)
    publish_crl(world, ca)
    publish_crl(world, other)
    quarantine_id = quarantine_id_of(world, web_letters[0])

    with console.login("operator") as client:
        page = item_page(client, quarantine_id)
        answer = client.post(
            f"/quarantine/{quarantine_id}/register-ca",
            data={"csrf_token": csrf_token(page.text)},
            files={"ca_file": ("ca.cer", ca.pem(), "application/x-pem-file")},
        )
        assert answer.status_code == 303
        assert answer.headers["location"] == f"/quarantine/{quarantine_id}"
        decided = item_page(client, quarantine_id)
    assert f"Карантин № {quarantine_id}: registered" in decided.text
    assert "/reject" not in decided.text  # decided: no more forms

    config = write_config(world, tmp_path)
    assert main(["ca", "add", str(other_file), "--by", "operator", *config]) == 0

    by_letter = {r.letter_id: r for r in rows(world).values()}
    for letter_id in (*web_letters, cli_letter):
        row = by_letter[letter_id]
        assert (row.status, row.decided_by) == ("registered", "operator")
        assert row.reason and row.reason.startswith("certificate ")
    with world.sessions() as session:
        registered = session.scalars(select(CertificateRecord.letter_id)).all()
        query = select(CertificationAuthority.name, CertificationAuthority.source)
        sources = dict(session.execute(query).all())
    assert set(registered) == {*web_letters, cli_letter}
    assert (sources["Чужой УЦ 5"], sources["Чужой УЦ 6"]) == ("manual", "manual")

    sent = {f.letter_id: f for f in followups(world)}
    assert [sent[i].template_key for i in (*web_letters, cli_letter)] == ["success"] * 3
    assert text_of(sent[web_letters[0]]).startswith(SUCCESS_PREFIX)
    assert comparable(sent[web_letters[0]], first.cert.serial_hex) == comparable(
        sent[cli_letter], third.cert.serial_hex
    )
    ids = {letter_id: quarantine_id_of(world, letter_id) for letter_id in web_letters}
    assert audit_actions(world) == [
        ("ca.add", f"quarantine:{quarantine_id}"),
        *(("quarantine.decide", f"quarantine:{ids[i]}") for i in web_letters),
    ]


def test_rejecting_does_what_quarantine_reject_does(
    world: World, console: WebServer, tmp_path: Path
) -> None:
    ca, _ = stranger_ca(world, tmp_path)
    web_cert, cli_cert = participant(ca, 0xF01), participant(ca, 0xF02)
    web_id = quarantine_id_of(world, quarantine(world, web_cert))
    cli_id = quarantine_id_of(world, quarantine(world, cli_cert))
    with console.login("operator") as client:
        page = item_page(client, web_id)
        empty = client.post(
            f"/quarantine/{web_id}/reject",
            data={"csrf_token": csrf_token(page.text), "reason": "  \n "},
        )
        answer = client.post(
            f"/quarantine/{web_id}/reject",
            data={"csrf_token": csrf_token(page.text),
                  "reason": "  удостоверяющий центр\n не аккредитован "},
        )  # fmt: skip
        again = client.post(
            f"/quarantine/{web_id}/reject",
            data={"csrf_token": csrf_token(page.text), "reason": "ещё раз"},
        )
    assert empty.status_code == 400 and "Укажите причину" in empty.text
    assert (answer.status_code, again.status_code) == (303, 303)
    config = write_config(world, tmp_path)
    reason = "удостоверяющий центр не аккредитован"
    assert main(["quarantine", "reject", str(cli_id), "--reason", reason, "--by", "operator",
                 *config]) == 0  # fmt: skip

    decided = rows(world)
    for quarantine_id in (web_id, cli_id):
        row = decided[quarantine_id]
        assert (row.status, row.decided_by, row.reason) == ("rejected", "operator", reason)
    web_followup, cli_followup = followups(world)  # the second rejection changed nothing
    assert web_followup.template_key == cli_followup.template_key == "unknown_ca_rejected"
    assert comparable(web_followup, web_cert.cert.serial_hex) == comparable(
        cli_followup, cli_cert.cert.serial_hex
    )
    assert text_of(web_followup).endswith(f"Причина: {reason}")
    assert audit_actions(world) == [("quarantine.decide", f"quarantine:{web_id}")] * 2


def test_retry_installs_once_the_ca_is_in_the_directory(
    world: World, console: WebServer, tmp_path: Path
) -> None:
    ca, _ = stranger_ca(world, tmp_path)
    quarantine_id = quarantine_id_of(world, quarantine(world, participant(ca, 0xF11)))
    publish_crl(world, ca)
    with console.login("operator") as client:
        page = item_page(client, quarantine_id)
        still = client.post(f"/quarantine/{quarantine_id}/retry",
                            data={"csrf_token": csrf_token(page.text)})  # fmt: skip
        assert rows(world)[quarantine_id].status == "pending"  # the CA is still unknown
        with world.sessions() as session:
            register_ca(session, ca.cert)
            session.commit()
        done = client.post(f"/quarantine/{quarantine_id}/retry",
                           data={"csrf_token": csrf_token(page.text)})  # fmt: skip
    assert (still.status_code, done.status_code) == (303, 303)
    assert rows(world)[quarantine_id].status == "registered"
    assert [f.template_key for f in followups(world)] == ["success"]
    assert [a for a, _ in audit_actions(world)] == ["quarantine.decide"] * 2


def test_a_bad_or_oversized_upload_changes_nothing(
    world: World, console: WebServer, tmp_path: Path
) -> None:
    ca, _ = stranger_ca(world, tmp_path)
    other, _ = stranger_ca(world, tmp_path, slot=6)
    certificate = participant(ca, 0xF21)
    quarantine_id = quarantine_id_of(world, quarantine(world, certificate))
    with console.login("operator") as client:
        token = csrf_token(item_page(client, quarantine_id).text)
        target = f"/quarantine/{quarantine_id}/register-ca"
        answers = [
            client.post(target, data={"csrf_token": token},
                        files={"ca_file": ("ca.cer", body, "application/octet-stream")})
            for body in (b"not a certificate", certificate.der, other.der,
                         b"0" * (MAX_CA_FILE_BYTES + 1))
        ]  # fmt: skip
    assert [a.status_code for a in answers] == [400, 400, 400, 413]
    assert "не ждёт УЦ из файла" in answers[2].text  # another CA's certificate
    assert "Файл не подходит" in answers[0].text
    assert "no CA certificate in the file" in answers[1].text  # a participant's, not a CA's
    assert {r.status for r in rows(world).values()} == {"pending"}
    with world.sessions() as session:
        assert session.scalars(select(CertificationAuthority.name)).all() == ["УЦ Тест"]
    assert audit_actions(world) == []


def test_a_hostile_issuer_name_renders_inert(
    world: World, console: WebServer, tmp_path: Path
) -> None:
    hostile = factory.make_ca(HOSTILE_CA, slot=9)
    quarantine_id = quarantine_id_of(world, quarantine(world, participant(hostile, 0xF31)))
    with console.login("operator") as client:
        pages = [client.get("/quarantine"), item_page(client, quarantine_id)]
    for page in pages:
        assert page.status_code == 200
        assert "<script" not in page.text and "\u202e" not in page.text
        assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in page.text
        assert "\\u202eгзакло" in page.text


def test_registering_the_ca_from_the_list_releases_the_waiting_certificate(
    make_world: Callable[..., World],
) -> None:
    world = make_world()  # the list's world is pinned at the test PKI's "now"
    authority = tl.make_authority(1, keys=1)
    with world.sessions() as session:
        import_authorities(session, world.config, [authority])
        session.commit()
    ca = authority.keys[0].certificates[0].issued
    world.drop_crl(factory.make_crl(ca), name=f"{ca.cert.thumbprint_sha1}.crl")
    start = factory.NOW - dt.timedelta(days=30)
    certificate = factory.make_end_entity(
        ca, snils=SNILS, crl_urls=(), not_before=start, not_after=start + dt.timedelta(days=365)
    )
    letter_id = world.process(cert_letter(certificate), uid=1).letter_id
    assert letter_id is not None
    quarantine_id = quarantine_id_of(world, letter_id)

    for console in console_of(world, factory.NOW):
        with console.login("operator") as client:
            page = item_page(client, quarantine_id)
            assert "УЦ аккредитован" in page.text  # the alert's verdict, word for word
            assert "Зарегистрировать УЦ из перечня" in page.text
            answer = client.post(f"/quarantine/{quarantine_id}/register-listed",
                                 data={"csrf_token": csrf_token(page.text)})  # fmt: skip
    assert answer.status_code == 303
    row = rows(world)[quarantine_id]
    assert (row.status, row.decided_by) == ("registered", "operator")
    [followup] = followups(world)
    assert (followup.template_key, followup.recipients) == ("success", [letters.TRUSTED_SENDER])
    with world.sessions() as session:
        listed = session.scalars(
            select(CertificationAuthority).where(
                CertificationAuthority.thumbprint_sha1 == ca.cert.thumbprint_sha1
            )
        ).one()
        assert (listed.source, listed.list_version) == ("trust_list", 1000)
        decided = session.get_one(QuarantinedCertificate, quarantine_id)
        assert decided.subscriber_id == world.subscriber_id
    assert [a for a, _ in audit_actions(world)] == ["ca.add", "quarantine.decide"]
