"""Letters decided with the list of accredited CAs in the database (both databases).

The list is imported with :mod:`testkit.trust_list_db` (the real importer);
the processor reads it through ``DbAccreditationRegister``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import replace

from sqlalchemy import select

from mailbot.app.adapters import DbCaDirectory
from mailbot.app.quarantine import QuarantineReview, pending_ids
from mailbot.directory.authorities import register_ca
from mailbot.directory.models import Alert, CertificationAuthority, LetterRecord
from testkit import pki as factory
from testkit import trust_list as tl
from testkit.trust_list_db import import_authorities
from tests.app.world import SNILS, World, cert_letter

ENDED = factory.NOW - dt.timedelta(days=10)
#: pki.NOW (the list's default Дата) in the default zone, Europe/Moscow.
LIST_DATE = "02.03.2026 12:00:00"


def participant(ca: factory.Issued, days_ago: int = 30) -> factory.Issued:
    start = factory.NOW - dt.timedelta(days=days_ago)
    return factory.make_end_entity(
        ca, snils=SNILS, crl_urls=(), not_before=start, not_after=start + dt.timedelta(days=365)
    )


def store_list(world: World, *authorities: tl.TslAuthority) -> None:
    with world.sessions() as session:
        import_authorities(session, world.config, authorities)
        session.commit()


def listed_ca(world: World, authority: tl.TslAuthority) -> factory.Issued:
    """The first certificate of the authority's first key, with a current CRL dropped."""
    ca = authority.keys[0].certificates[0].issued
    world.drop_crl(factory.make_crl(ca), name=f"{ca.cert.thumbprint_sha1}.crl")
    return ca


def alert_bodies(world: World) -> list[str]:
    with world.sessions() as session:
        return [a.body for a in session.scalars(select(Alert).where(Alert.kind == "unknown_ca"))]


def test_auto_register_unknown_registers_the_listed_key_and_the_letter_succeeds(
    make_world: Callable[..., World],
) -> None:
    world = make_world(trust_list={"auto_register_unknown": True})
    authority = tl.make_authority(1, keys=1)
    store_list(world, authority)
    ca = listed_ca(world, authority)

    result = world.process(cert_letter(participant(ca)), uid=1)
    assert result.outcome == "success", result.detail
    rules = [(h["rule"], h["hit"]) for h in result.rule_hits]
    assert ("registered_ca", False) in rules and ("trust_list_ca", True) in rules
    assert ("ca_signature", True) in rules
    hit = next(h for h in result.rule_hits if h["rule"] == "trust_list_ca")
    assert "registry no. 901" in str(hit["detail"])
    assert result.detail["trust_list"]["registered"] == [ca.cert.thumbprint_sha1]
    with world.sessions() as session:
        row = session.scalars(
            select(CertificationAuthority).where(
                CertificationAuthority.thumbprint_sha1 == ca.cert.thumbprint_sha1
            )
        ).one()
        assert (row.source, row.list_version, row.active) == ("trust_list", 1000, True)
        assert set(authority.keys[0].crl_urls) <= set(row.crl_urls)
        letter = session.scalars(select(LetterRecord)).one()
        assert letter.certificate_id is not None
    assert alert_bodies(world) == []

    # The next certificate of that CA finds it registered.
    again = world.process(cert_letter(participant(ca, days_ago=20)), uid=2)
    assert again.outcome == "success"
    assert "trust_list_ca" not in [h["rule"] for h in again.rule_hits]


def test_without_auto_register_the_alert_names_the_accredited_ca(
    make_world: Callable[..., World],
) -> None:
    world = make_world()
    authority = tl.make_authority(1, keys=1)
    store_list(world, authority)
    ca = listed_ca(world, authority)

    result = world.process(cert_letter(participant(ca)), uid=1)
    assert result.outcome == "unknown_ca"
    hit = next(h for h in result.rule_hits if h["rule"] == "trust_list_ca")
    assert hit["hit"] is False and "auto_register_unknown is off" in str(hit["detail"])
    [body] = alert_bodies(world)
    assert f"ключ УЦ есть в перечне аккредитованных УЦ (версия 1000 от {LIST_DATE}), " in body
    assert "УЦ аккредитован:" in body
    assert authority.name in body
    assert "статус аккредитации: «Действует» с " in body
    assert f"реестровый номер: 901, ИНН: {authority.inn}, ОГРН: {authority.ogrn}" in body
    with world.sessions() as session:
        assert (
            session.scalars(
                select(CertificationAuthority).where(CertificationAuthority.source == "trust_list")
            ).all()
            == []
        )


def test_the_alert_says_when_the_key_is_not_listed_or_no_list_was_imported(
    make_world: Callable[..., World],
) -> None:
    world = make_world()
    stranger = factory.make_ca("Чужой УЦ", slot=4)
    world.process(cert_letter(participant(stranger)), uid=1)
    [before] = alert_bodies(world)
    assert "перечень аккредитованных УЦ не загружен" in before

    store_list(world, tl.make_authority(1, keys=1))
    stranger2 = factory.make_ca("Другой чужой УЦ", slot=5)
    world.process(cert_letter(participant(stranger2)), uid=2)
    after = [b for b in alert_bodies(world) if "Другой чужой УЦ" in b]
    assert len(after) == 1
    assert f"нет в перечне аккредитованных УЦ (версия 1000 от {LIST_DATE})" in after[0]


def test_a_certificate_issued_after_the_accreditation_ended_is_invalid(
    make_world: Callable[..., World],
) -> None:
    world = make_world()
    authority = tl.make_authority(2, keys=1, status=tl.TslStatus("Прекращена", ENDED))
    authority = replace(
        authority,
        history=(tl.TslStatus("Действует", factory.NOW - dt.timedelta(days=1000), ENDED),),
    )
    store_list(world, authority)
    ca = listed_ca(world, authority)
    with world.sessions() as session:
        register_ca(session, ca.cert, now=factory.NOW)  # registered by hand long ago
        session.commit()

    late = participant(ca, days_ago=5)
    result = world.process(cert_letter(late), uid=1)
    assert result.outcome == "invalid_cert"
    assert result.reply_text == (
        f"Сертификат ключа проверки электронной подписи: {late.cert.serial_hex} недействителен. "
        "Причина: удостоверяющий центр не имел действующей аккредитации на дату выдачи "
        "сертификата. Установка сертификата не может быть выполнена"
    )
    hit = next(h for h in result.rule_hits if h["rule"] == "ca_accredited_at_issuance")
    assert hit["hit"] is False
    # Issued while the CA was accredited: registered as usual.
    early = world.process(cert_letter(participant(ca, days_ago=30)), uid=2)
    assert early.outcome == "success"
    hit = next(h for h in early.rule_hits if h["rule"] == "ca_accredited_at_issuance")
    assert hit["hit"] is True and str(hit["detail"]).startswith("accredited on notBefore")


def test_the_lists_crl_urls_come_after_the_directorys(make_world: Callable[..., World]) -> None:
    world = make_world()
    authority = tl.make_authority(1, keys=1)
    ca = authority.keys[0].certificates[0].issued
    with world.sessions() as session:
        row, _ = register_ca(session, ca.cert, ["http://admin.example.ru/uc1.crl"])
        own = list(DbCaDirectory(session).crl_urls(ca.cert))
        import_authorities(session, world.config, [authority])
        # A directory answers for one transaction; the next one sees the import.
        urls = list(DbCaDirectory(session).crl_urls(ca.cert))
        session.rollback()
    assert own == row.crl_urls  # without a list: the directory's alone
    assert urls == [*own, "http://reserve.example.ru/uc1/key0.crl"]
    assert urls[0] == "http://admin.example.ru/uc1.crl"


def test_a_quarantined_certificate_is_registered_from_the_list_on_retry(
    make_world: Callable[..., World],
) -> None:
    """Quarantined while the policy was off; ``quarantine retry`` with it on registers it."""
    world = make_world()
    authority = tl.make_authority(1, keys=1)
    store_list(world, authority)
    ca = listed_ca(world, authority)
    assert world.process(cert_letter(participant(ca)), uid=1).outcome == "unknown_ca"

    config = replace(world.config, trust_list=replace(world.config.trust_list,
                                                      auto_register_unknown=True))  # fmt: skip
    processor = world.processor
    review = QuarantineReview(config, world.sessions, processor.templates,
                              processor.crl_source_for, clock=lambda: factory.NOW)  # fmt: skip
    with world.sessions() as session:
        [pending] = pending_ids(session)
    [decision] = review.recheck([pending], "admin")
    assert (decision.status, decision.followup) == ("registered", "success")
    with world.sessions() as session:
        row = session.scalars(
            select(CertificationAuthority).where(
                CertificationAuthority.thumbprint_sha1 == ca.cert.thumbprint_sha1
            )
        ).one()
        assert (row.source, row.list_version) == ("trust_list", 1000)
