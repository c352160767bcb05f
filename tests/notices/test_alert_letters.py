"""Alerts raised by the real processor: an edited alert template is what the admins get,
and a long Cyrillic Subject keeps every space when folded (as replies' subjects do)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import select

from mailbot.directory.models import Alert, OutboxMessage
from mailbot.notices.alerts import build_alert_letter
from testkit import pki as factory

# The registration world of the processor's tests, its fixture included under its own name.
from tests.app.world import SNILS, World, cert_letter
from tests.app.world import make_world as make_world
from tests.notices.helpers import ADMIN, alert_config, copy_templates, cyrillic_name, parse


def queued_alerts(world: World) -> list[tuple[Alert, EmailMessage]]:
    with world.sessions() as session:
        rows = session.scalars(select(Alert).order_by(Alert.id)).all()
        return [(a, parse(session.get_one(OutboxMessage, a.outbox_id).raw)) for a in rows]


def text_of(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    return str(body.get_content())


def unknown_ca_letter(cn: str) -> bytes:
    ca = factory.make_ca(cn, slot=5)
    return cert_letter(factory.make_end_entity(ca, snils=SNILS, crl_urls=()))


# -- (a) an edited alert template reaches the letter in the outbox ---------------------------


def test_an_edited_alert_template_is_what_the_admins_get(
    make_world: Callable[..., World], tmp_path: Path
) -> None:
    templates = copy_templates(tmp_path)
    body = templates / "alerts" / "unknown_ca.txt"
    body.write_text(
        body.read_text(encoding="utf-8").replace("Что делать:", "Порядок действий (правка):"),
        encoding="utf-8",
    )
    (templates / "alerts" / "unknown_ca.subject.txt").write_text(
        "Правка: УЦ {issuer} не в справочнике, ждут {count}\n", encoding="utf-8"
    )
    world = make_world(admin={"alert_addresses": [ADMIN]}, paths={"templates_dir": str(templates)})
    assert world.process(unknown_ca_letter("Чужой УЦ")).outcome == "unknown_ca"
    [(alert, letter)] = queued_alerts(world)
    assert alert.kind == "unknown_ca"
    text = text_of(letter)
    assert "Порядок действий (правка):" in text and "Что делать:" not in text
    assert str(letter["Subject"]).endswith("Правка: УЦ Чужой УЦ не в справочнике, ждут 1")


# -- (b) every space of a long Cyrillic Subject survives folding -----------------------------


@pytest.mark.parametrize("length", [10, 37, 64, 101, 150, 200])
def test_unknown_ca_subject_keeps_every_space(
    make_world: Callable[..., World], length: int
) -> None:
    name = cyrillic_name(length)
    world = make_world(admin={"alert_addresses": [ADMIN]})
    world.process(unknown_ca_letter(name))
    [(_, letter)] = queued_alerts(world)
    instance = world.config.general.instance_name
    expected = f"[{instance}] Неизвестный УЦ {name}: сертификатов в технологической папке — 1"
    assert str(letter["Subject"]) == expected
    assert all(len(line) <= 78 for line in bytes(letter).split(b"\n"))


def test_a_notice_and_an_alert_keep_every_space_of_a_subject_of_any_length() -> None:
    """One folding path: whatever the length, the decoded Subject is the one written."""
    from mailbot.mail.reply import ReplySettings, build_notice

    config = alert_config()
    settings = ReplySettings(config.smtp.from_address, "mailbot")
    now = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
    for length in range(10, 201):
        subject = (
            f"Неизвестный УЦ {cyrillic_name(length)}: сертификатов в технологической папке — 2"
        )
        notice = build_notice("p@clinic.example", subject, "текст", settings, now)
        alert = build_alert_letter(config, subject, "текст", now=now)
        assert str(parse(bytes(notice))["Subject"]) == subject, length
        assert (
            str(parse(bytes(alert))["Subject"]) == f"[{config.general.instance_name}] {subject}"
        ), length
