"""The list of accredited CAs deciding letters end to end: the daemon, Dovecot, SMTP, real PKI.

The list is imported with :mod:`testkit.trust_list_db` (the importer behind
``mailbot ca import-tsl``); its CA certificates are
:func:`testkit.trust_list.ca_certificate`, whose keys issue the participants'
certificates.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import replace
from email.message import EmailMessage

import pytest
from sqlalchemy import select

from mailbot.cli.main import main
from mailbot.directory.engine import engine_from_config
from mailbot.directory.models import CertificationAuthority
from mailbot.directory.session import session_factory
from testkit import pki as factory
from testkit import trust_list as tl
from testkit.running import running
from testkit.scenario import ADMIN, PARTICIPANT, Scenario, now, publish_crl
from testkit.trust_list_db import import_authorities
from tests.e2e import test_end_to_end as e2e
from tests.e2e.test_end_to_end import inbox, replies, wait_for

# The end-to-end world (both databases), shared with the daemon's own end-to-end tests.
scenario_factory = e2e.scenario_factory
scenario = e2e.scenario

pytestmark = pytest.mark.timeout(180)

UNKNOWN_CA_TEXT = "выдан неизвестным системе удостоверяющим центром"
SUCCESS_PREFIX = "Установка сертификата ключа проверки электронной подписи выполнена успешно."
#: The list's Дата (testkit.pki.NOW) in the default zone, Europe/Moscow.
LIST_DATE = "02.03.2026 12:00:00"


def store_list(scenario: Scenario, *authorities: tl.TslAuthority) -> None:
    engine = engine_from_config(scenario.config)
    try:
        with session_factory(engine)() as session:
            import_authorities(session, scenario.config, authorities)
            session.commit()
    finally:
        engine.dispose()


def listed_ca(scenario: Scenario, authority: tl.TslAuthority) -> factory.Issued:
    """The authority's first key's certificate, with a current CRL in the drop folder."""
    ca = authority.keys[0].certificates[0].issued
    publish_crl(scenario, ca)
    return ca


def alert_texts(scenario: Scenario) -> list[str]:
    return [plain_text(m) for m in inbox(scenario, ADMIN)]


def plain_text(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    return str(body.get_content())


async def test_a_listed_unregistered_key_is_quarantined_and_the_alert_names_the_accredited_ca(
    scenario: Scenario,
) -> None:
    authority = tl.make_authority(1, keys=1)
    store_list(scenario, authority)
    ca = listed_ca(scenario, authority)
    scenario.deliver(scenario.add_cert_letter(scenario.participant_certificate(ca=ca)))
    async with running(scenario.config_path):
        await wait_for(lambda: len(inbox(scenario, PARTICIPANT)) == 1)
        await wait_for(lambda: len(inbox(scenario, ADMIN)) == 1)
    [reply] = replies(scenario)
    assert UNKNOWN_CA_TEXT in reply
    [alert] = alert_texts(scenario)
    listed = f"есть в перечне аккредитованных УЦ (версия 1000 от {LIST_DATE}), УЦ аккредитован"
    assert listed in alert
    assert authority.name in alert
    assert f"реестровый номер: 901, ИНН: {authority.inn}, ОГРН: {authority.ogrn}" in alert


async def test_auto_register_unknown_registers_the_key_and_answers_success(
    scenario_factory: Callable[..., Scenario], capsys: pytest.CaptureFixture[str]
) -> None:
    scenario = scenario_factory(extra_config="[trust_list]\nauto_register_unknown = true\n")
    authority = tl.make_authority(3, keys=1)
    store_list(scenario, authority)
    ca = listed_ca(scenario, authority)
    scenario.deliver(scenario.add_cert_letter(scenario.participant_certificate(ca=ca)))
    async with running(scenario.config_path):
        await wait_for(lambda: len(inbox(scenario, PARTICIPANT)) == 1)
    [reply] = replies(scenario)
    assert reply.startswith(SUCCESS_PREFIX)
    assert inbox(scenario, ADMIN) == []

    engine = engine_from_config(scenario.config)
    try:
        with session_factory(engine)() as session:
            row = session.scalars(
                select(CertificationAuthority).where(
                    CertificationAuthority.thumbprint_sha1 == ca.cert.thumbprint_sha1
                )
            ).one()
            assert (row.source, row.list_version, row.active) == ("trust_list", 1000, True)
    finally:
        engine.dispose()
    config = ["--config", str(scenario.config_path)]
    assert main(["letter", "show", "1", *config]) == 0
    shown = capsys.readouterr().out
    assert "trust_list_ca" in shown
    assert "registered from the list (auto_register_unknown)" in shown


async def test_after_the_accreditation_ended_invalid_and_an_unlisted_key_is_said_so(
    scenario_factory: Callable[..., Scenario],
) -> None:
    scenario = scenario_factory()
    ended = now() - dt.timedelta(days=10)
    authority = tl.make_authority(2, keys=1, status=tl.TslStatus("Прекращена", ended))
    authority = replace(
        authority, history=(tl.TslStatus("Действует", now() - dt.timedelta(days=1000), ended),)
    )
    store_list(scenario, authority)
    ca = listed_ca(scenario, authority)
    config = ["--config", str(scenario.config_path)]
    ca_file = scenario.directory / "listed-ca.cer"
    ca_file.write_bytes(ca.der)
    assert main(["ca", "add", str(ca_file), *config]) == 0  # registered by hand

    late = scenario.participant_certificate(ca=ca)  # issued yesterday, after the end
    stranger = factory.make_ca("Чужой УЦ", slot=4)
    scenario.deliver(scenario.add_cert_letter(late))
    scenario.deliver(scenario.add_cert_letter(scenario.participant_certificate(ca=stranger)))
    async with running(scenario.config_path):
        await wait_for(lambda: len(inbox(scenario, PARTICIPANT)) == 2)
        await wait_for(lambda: len(inbox(scenario, ADMIN)) == 1)
    texts = replies(scenario)
    assert (
        f"Сертификат ключа проверки электронной подписи: {late.cert.serial_hex} недействителен. "
        "Причина: удостоверяющий центр не имел действующей аккредитации на дату выдачи "
        "сертификата. Установка сертификата не может быть выполнена"
    ) in texts
    assert any(UNKNOWN_CA_TEXT in t for t in texts)
    [alert] = alert_texts(scenario)
    assert "Чужой УЦ" in alert
    absent = f"Перечень аккредитованных УЦ: нет в перечне аккредитованных УЦ (версия 1000 от {LIST_DATE})"
    assert absent in alert
