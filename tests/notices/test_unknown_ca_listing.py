"""The unknown-CA alert's line on the list of accredited CAs, for every answer the list gives."""

from __future__ import annotations

import io
from dataclasses import replace
from datetime import timedelta

from mailbot.notices.unknown_ca_digest import CaKey, accreditation_text
from mailbot.trustlist import load_trust_list
from mailbot.trustlist.register import InMemoryRegister, ListEdition
from testkit import pki
from testkit import trust_list as tl
from tests.notices.helpers import alert_config

ISSUER = "CN=Тестовый аккредитованный УЦ 1"
ACTIVE = tl.make_authority(1, keys=1)
ENDED = tl.make_authority(2, keys=1, status=tl.TslStatus("Прекращена", pki.NOW))
REGISTER = InMemoryRegister.from_trust_list(
    load_trust_list(io.BytesIO(tl.trust_list_xml([ACTIVE, ENDED], version=77)))
)
#: pki.NOW in Europe/Moscow, the default zone.
DATE = "02.03.2026 12:00:00"


def key_of(authority: tl.TslAuthority) -> CaKey:
    return CaKey(authority.keys[0].certificates[0].issued.ski.hex().upper(), ISSUER)


def test_no_list_and_no_aki() -> None:
    config = alert_config()
    none = accreditation_text(config, key_of(ACTIVE), InMemoryRegister.empty())
    assert none.startswith("перечень аккредитованных УЦ не загружен")
    assert accreditation_text(config, key_of(ACTIVE), None) == none
    no_aki = accreditation_text(config, CaKey(None, ISSUER), REGISTER)
    assert no_aki.startswith("в сертификатах нет AKI")
    assert f"(версия 77 от {DATE})" in no_aki


def test_absent_accredited_and_not_accredited() -> None:
    config = alert_config()
    absent = accreditation_text(config, CaKey("0102", ISSUER), REGISTER)
    assert absent == f"нет в перечне аккредитованных УЦ (версия 77 от {DATE})"

    accredited = accreditation_text(config, key_of(ACTIVE), REGISTER)
    assert ", УЦ аккредитован:" in accredited
    assert ACTIVE.name in accredited and "«Действует»" in accredited
    assert f"реестровый номер: 901, ИНН: {ACTIVE.inn}, ОГРН: {ACTIVE.ogrn}" in accredited

    ended = accreditation_text(config, key_of(ENDED), REGISTER)
    assert "но УЦ НЕ аккредитован" in ended
    assert f"«Прекращена» с {DATE}" in ended


def test_a_key_gone_from_the_newest_edition() -> None:
    newer = ListEdition(78, pki.NOW + timedelta(days=1))
    keys = {k: replace(v, current=newer) for k, v in REGISTER.keys.items()}
    text = accreditation_text(alert_config(), key_of(ACTIVE), InMemoryRegister(keys, newer))
    assert text.startswith("ключа УЦ нет в текущем перечне аккредитованных УЦ (версия 78 от 03.03")
    assert f"последний раз он был в перечне версии 77 от {DATE}" in text
    assert ACTIVE.name in text
