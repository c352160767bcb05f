"""Revocation watch: a new CRL listing a registered certificate marks it, notifies once.

Processor level on SQLite and PostgreSQL: the certificate is registered
through a letter, then a CRL revoking it is dropped and the watch runs.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from sqlalchemy import select

from mailbot.app.adapters import DbCaDirectory
from mailbot.app.assembly import crl_source_factory
from mailbot.app.revocation_watch import RevocationWatch, poll_newer_crl, reason_key
from mailbot.cli.main import main
from mailbot.directory.models import Alert, CertificateRecord, OutboxMessage
from mailbot.notices.templates import load_templates
from mailbot.pki.crl_fetch import CachingCrlSource
from testkit import letters
from testkit import pki as factory
from tests.app.world import SNILS, World, cert_letter
from tests.cli.test_process_cli import config_file

ADMIN = "pki-admin@fund.example"
REVOKED_AT = dt.datetime(2026, 3, 1, 7, 30, 5, tzinfo=dt.UTC)  # 10:30:05 in Moscow
SHIPPED_TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


@pytest.fixture
def world(make_world: Callable[..., World]) -> World:
    return make_world(admin={"alert_addresses": [ADMIN]})


def register(world: World, serial: int, uid: int) -> factory.Issued:
    participant = factory.make_end_entity(world.ca, snils=SNILS, serial=serial, crl_urls=())
    assert world.process(cert_letter(participant), uid=uid).outcome == "success"
    return participant


def ingest_dropped(world: World) -> None:
    """What a refresh does: the cached CRL is still fresh, yet the dropped newer one wins."""
    with world.sessions() as session:
        source = crl_source_factory(world.config)(DbCaDirectory(session))
        assert isinstance(source, CachingCrlSource)
        _index, problem = source.fresh_index(world.ca.cert, factory.NOW)
        assert problem is None
        newer = poll_newer_crl(source, world.ca.cert)
        assert newer is not None and newer.meta.crl_number == max(
            int(p.stem) for p in world.config.crl_drop_dir.glob("[0-9]*.crl")
        )


def watch(world: World) -> RevocationWatch:
    return RevocationWatch(
        world.config, world.sessions, world.processor.templates, clock=lambda: factory.NOW
    )


def sent(world: World, kind: str) -> list[OutboxMessage]:
    with world.sessions() as session:
        return list(
            session.scalars(
                select(OutboxMessage).where(OutboxMessage.kind == kind).order_by(OutboxMessage.id)
            )
        )


def test_a_new_crl_revoking_a_registered_certificate_notifies_once(world: World) -> None:
    revoked = register(world, 0x4001, uid=1)
    kept = register(world, 0x4002, uid=2)
    first_watch = watch(world)
    assert first_watch.run().revoked == []  # CRL 1 lists nothing

    world.drop_crl(
        factory.make_crl(world.ca, [factory.Revoked(0x4001, REVOKED_AT, 1)], number=2), "2.crl"
    )
    ingest_dropped(world)
    report = first_watch.run()
    assert [r.serial for r in report.revoked] == [revoked.cert.serial_hex]
    with world.sessions() as session:
        rows = {c.serial: c for c in session.scalars(select(CertificateRecord))}
    row = rows[revoked.cert.serial_hex]
    assert (row.status, row.revocation_reason, row.revoked_at) == (
        "revoked", "keyCompromise", REVOKED_AT,
    )  # fmt: skip
    assert rows[kept.cert.serial_hex].status == "valid"

    (notice,) = sent(world, "notice")
    assert notice.recipients == [letters.TRUSTED_SENDER]
    assert notice.template_key == "revoked_notice" and notice.letter_id is None
    message = message_from_bytes(notice.raw, policy=policy.default)
    assert message["To"] == letters.TRUSTED_SENDER
    assert message["Auto-Submitted"] == "auto-generated"
    assert (
        message["Subject"] == f"Сертификат {revoked.cert.serial_hex} отозван удостоверяющим центром"
    )
    assert message.get_content().strip() == (
        f"Сертификат ключа проверки электронной подписи: {revoked.cert.serial_hex} (выдан: "
        "Иванов Иван Иванович) отозван удостоверяющим центром 01.03.2026 10:30:05. "
        "Причина отзыва: компрометация ключа. Работа с этим сертификатом невозможна. "
        "Получите новый сертификат и направьте его письмом с темой ADD_CERT"
    )
    (alert,) = sent(world, "alert")
    assert alert.recipients == [ADMIN]
    with world.sessions() as session:
        alert_row = session.scalars(select(Alert)).one()
    assert alert_row.kind == "certificate_revoked"
    assert revoked.cert.serial_hex in alert_row.body
    assert f"уведомление отправлено: {letters.TRUSTED_SENDER}" in alert_row.body
    assert "keyCompromise" in alert_row.body

    # The same CRL again, a restart (a new watch), and a newer CRL listing it too: silence.
    assert first_watch.run().checked_crls == 0
    assert watch(world).run().revoked == []
    world.drop_crl(
        factory.make_crl(world.ca, [factory.Revoked(0x4001, REVOKED_AT, 1)], number=3), "3.crl"
    )
    ingest_dropped(world)
    again = watch(world).run()
    assert (again.checked_crls, again.revoked) == (1, [])
    assert len(sent(world, "notice")) == 1
    assert len(sent(world, "alert")) == 1


def test_no_active_address_means_no_notice_but_an_alert(world: World) -> None:
    from mailbot.directory.models import TrustedAddress

    register(world, 0x4101, uid=1)
    with world.sessions() as session:
        for address in session.scalars(select(TrustedAddress)):
            address.active = False
        session.commit()
    world.drop_crl(factory.make_crl(world.ca, [factory.Revoked(0x4101)], number=2), "2.crl")
    ingest_dropped(world)
    (found,) = watch(world).run().revoked
    assert found.notified == ()
    assert sent(world, "notice") == []
    with world.sessions() as session:
        assert "уведомление НЕ отправлено" in session.scalars(select(Alert)).one().body


@pytest.mark.parametrize(
    ("code", "text"),
    [
        (1, "компрометация ключа"),
        (4, "сертификат заменён новым"),
        (None, "не указана"),
        (7, "не указана"),
    ],
)
def test_reason_names_are_russian(code: int | None, text: str) -> None:
    templates = load_templates(SHIPPED_TEMPLATES)
    assert templates.phrase("revocation_reasons", reason_key(code)) == text


def test_crl_refresh_runs_the_watch(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    revoked = register(world, 0x4201, uid=1)
    now = dt.datetime.now(dt.UTC)
    world.drop_crl(
        factory.make_crl(
            world.ca, [factory.Revoked(0x4201)], number=7,
            this_update=now - dt.timedelta(hours=1), next_update=now + dt.timedelta(days=1),
        ),
        "7.crl",
    )  # fmt: skip
    config = str(config_file(world, tmp_path))
    assert main(["crl", "refresh", "--config", config]) == 0
    out = capsys.readouterr().out
    assert f"serial {revoked.cert.serial_hex}) REVOKED (keyCompromise)" in out
    assert f"notice queued to {letters.TRUSTED_SENDER}" in out
    assert main(["crl", "refresh", "--config", config]) == 0
    assert "REVOKED" not in capsys.readouterr().out
    assert len(sent(world, "notice")) == 1


def test_poll_fetches_a_newer_crl_before_the_cached_one_runs_out(world: World) -> None:
    from mailbot.directory.models import CertificationAuthority
    from testkit.crl_server import CrlServer

    register(world, 0x4301, uid=1)
    server = CrlServer()
    try:
        with world.sessions() as session:
            session.scalars(select(CertificationAuthority)).one().crl_urls = [server.url]
            session.commit()
        with world.sessions() as session:
            source = crl_source_factory(world.config)(DbCaDirectory(session))
            assert isinstance(source, CachingCrlSource)
            assert source.fresh_index(world.ca.cert, factory.NOW)[1] is None  # CRL 1, fresh
            kept = poll_newer_crl(source, world.ca.cert)  # 404: the dropped CRL 1 stays
            assert kept is not None and kept.meta.crl_number == 1
            server.crl = factory.make_crl(world.ca, [factory.Revoked(0x4301)], number=2)
            newer = poll_newer_crl(source, world.ca.cert)
            assert newer is not None and newer.meta.crl_number == 2
            assert newer.meta.source_url == server.url
        assert [r.serial for r in watch(world).run().revoked] == ["4301"]
    finally:
        server.stop()
