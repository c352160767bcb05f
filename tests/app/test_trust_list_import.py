"""Importing generated lists of accredited CAs, on SQLite and PostgreSQL: the stored list,
the change report, the CA directory by the policy, flags and the one alert."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import func, select

from mailbot.app.adapters import DbAccreditationRegister
from mailbot.app.trust_list_import import Download, ImportRefused, import_trust_list
from mailbot.directory.authorities import register_ca
from mailbot.directory.models import (
    AccreditedCa,
    AccreditedCertificate,
    AccreditedKey,
    Alert,
    CertificationAuthority,
    OutboxMessage,
    TrustListEdition,
)
from mailbot.trustlist import TrustListError
from mailbot.trustlist.changes import ImportReport
from testkit import pki
from testkit import trust_list as tl
from tests.app.world import World

ADMIN = "admin@example.test"
LATER = pki.NOW + dt.timedelta(days=2)


def authorities() -> list[tl.TslAuthority]:
    """Three CAs: two accredited (one re-issued key), one terminated; a malformed and a bad entry."""
    first = tl.make_authority(1, keys=2)
    second = tl.make_authority(2, keys=1, certificates_per_key=2)
    terminated = tl.make_authority(
        3, keys=1, status=tl.TslStatus("Прекращена", pki.NOW - dt.timedelta(days=30))
    )
    # A certificate whose SHA-1 does not match its Отпечаток: left out, reported.
    bad_key = tl.TslKey(
        certificates=(tl.TslCertificate(tl.ca_certificate(4, 0), tl.CertFault.WRONG_THUMBPRINT),),
        crl_urls=("http://uc4.example.ru/cdp/key0.crl",),
    )
    mismatched = replace(tl.make_authority(4, keys=1), keys=(bad_key,))
    nameless = replace(tl.make_authority(5, keys=1), omit=frozenset({"Название"}))
    return [first, second, terminated, mismatched, nameless]


def write(tmp_path: Path, items: list[tl.TslAuthority], version: int, name: str = "") -> Path:
    path = tmp_path / (name or f"tsl-{version}.xml")
    tl.write_trust_list(path, items, version=version, published_at=pki.NOW)
    return path


def run(world: World, path: Path, **options: object) -> ImportReport:
    with world.sessions() as session:
        report = import_trust_list(
            session,
            path,
            world.config,
            Download(str(path)),
            now=pki.NOW,
            **options,  # type: ignore[arg-type]
        )
        if options.get("dry_run"):
            session.rollback()
        else:
            session.commit()
    return report


def counts(world: World) -> tuple[int, ...]:
    with world.sessions() as session:
        return tuple(
            session.scalar(select(func.count()).select_from(table)) or 0
            for table in (
                TrustListEdition,
                AccreditedCa,
                AccreditedKey,
                AccreditedCertificate,
                CertificationAuthority,
                Alert,
            )
        )


@pytest.fixture
def accredited(make_world: Callable[..., World]) -> World:
    return make_world(trust_list={"register": "accredited"}, admin={"alert_addresses": [ADMIN]})


def test_import_stores_the_list_and_registers_the_accredited_keys(
    accredited: World, tmp_path: Path
) -> None:
    world = accredited
    report = run(world, write(tmp_path, authorities(), 1000))

    assert report.previous_version is None and not report.unchanged
    assert report.authorities == 4  # the nameless entry is refused
    assert [c.registry_number for c in report.cas_added] == ["901", "902", "903", "904"]
    assert any("thumbprint" in p.lower() or "sha-1" in p.lower() for p in report.problems)
    assert any("authority #5" in p for p in report.problems)
    with world.sessions() as session:
        edition = session.scalars(select(TrustListEdition)).one()
        assert (edition.version, edition.sha256, edition.source) == (
            1000,
            report.sha256,
            str(tmp_path / "tsl-1000.xml"),
        )
        ca = session.scalars(select(AccreditedCa).where(AccreditedCa.identity == "reg:901")).one()
        assert (ca.status_text, ca.first_version, ca.last_version) == ("Действует", 1000, 1000)
        assert [item["text"] for item in ca.history] == ["Действует", "Приостановлена"]
        assert len(ca.keys) == 2
        assert ca.keys[0].crl_urls == [
            "http://uc1.example.ru/cdp/key0.crl",
            "http://reserve.example.ru/uc1/key0.crl",
        ]
        rows = session.scalars(
            select(CertificationAuthority).where(CertificationAuthority.source == "trust_list")
        ).all()
        # CA 1: 2 keys x 1 certificate; CA 2: 1 key x 2; the terminated CA 3 is not registered.
        assert len(rows) == 4
        assert {r.list_version for r in rows} == {1000}
        key0 = tl.ca_certificate(1, 0).ski.hex().upper()
        row = next(r for r in rows if r.ski == key0)
        assert row.crl_urls[:2] == [
            "http://uc1.example.ru/cdp/key0.crl",
            "http://reserve.example.ru/uc1/key0.crl",
        ]
        assert row.active and row.list_flag is None
        terminated = tl.ca_certificate(3, 0).ski.hex().upper()
        assert not any(r.ski == terminated for r in rows)
        # The register answers from what was stored.
        listed = DbAccreditationRegister(session).key(tl.ca_certificate(3, 0).ski)
        assert listed is not None and listed.present and not listed.accredited
    assert len(report.registered) == 4


def test_the_same_file_again_changes_nothing(accredited: World, tmp_path: Path) -> None:
    path = write(tmp_path, authorities(), 1000)
    run(accredited, path)
    before = counts(accredited)
    again = run(accredited, path)
    assert again.unchanged and not again.changed
    assert again.sha256 == run(accredited, path).sha256
    assert counts(accredited) == before


def test_a_newer_edition_reports_changes_flags_and_alerts_once(
    accredited: World, tmp_path: Path
) -> None:
    world = accredited
    run(world, write(tmp_path, authorities(), 1000))
    first, second, terminated, *_ = authorities()
    ended = replace(second, status=tl.TslStatus("Прекращена", pki.NOW - dt.timedelta(days=1)))
    rekeyed = replace(first, keys=first.keys[:1])  # key 1 of CA 1 is gone
    reissued = tl.make_authority(3, keys=1, certificates_per_key=2, status=terminated.status)
    newer = write(tmp_path, [rekeyed, ended, reissued], 1001)

    report = run(world, newer)

    assert report.previous_version == 1000
    assert [(s.ca.registry_number, s.old, s.new) for s in report.status_changes] == [
        ("902", "Действует", "Прекращена")
    ]
    gone_key = tl.ca_certificate(1, 1).ski.hex().upper()
    # CA 1's key 1, and the key of CA 4 that left the list with its CA.
    assert sorted((k.ca.registry_number, k.ski) for k in report.keys_gone) == [
        ("901", gone_key),
        ("904", tl.ca_certificate(4, 0).ski.hex().upper()),
    ]
    assert [c.registry_number for c in report.cas_gone] == ["904"]
    assert [c.ski for c in report.certificates_added] == [tl.ca_certificate(3, 0).ski.hex().upper()]
    assert report.cas_added == [] and report.keys_added == []
    flags = {(d.ski, d.flag) for d in report.flagged}
    ended_key = tl.ca_certificate(2, 0).ski.hex().upper()
    # CA 2's two certificates (one key) lost accreditation; CA 1's key 1 left the list.
    assert flags == {(ended_key, "accreditation_lost"), (gone_key, "key_gone")}
    assert len(report.flagged) == 3
    assert report.alert_queued
    with world.sessions() as session:
        alerts = session.scalars(select(Alert).where(Alert.kind == "trust_list_flags")).all()
        assert len(alerts) == 1
        assert "версия 1001" in alerts[0].subject
        assert "удостоверяющий центр утратил аккредитацию" in alerts[0].body
        assert "ключа больше нет в перечне" in alerts[0].body
        assert session.scalar(select(func.count(OutboxMessage.id))) == 1
        flagged = session.scalars(
            select(CertificationAuthority).where(CertificationAuthority.list_flag.is_not(None))
        ).all()
        # Flagged, not deleted, still active.
        assert len(flagged) == 3 and all(r.active and r.list_flagged_at for r in flagged)
        ca2 = session.scalars(select(AccreditedCa).where(AccreditedCa.identity == "reg:902")).one()
        # The status it had is kept in the history.
        assert (ca2.history[-1]["text"], ca2.status_text) == ("Действует", "Прекращена")

    # The same edition again (another file, same bytes): unchanged, no second alert.
    again = run(world, write(tmp_path, [rekeyed, ended, reissued], 1001, "again.xml"))
    assert again.unchanged
    with world.sessions() as session:
        assert session.scalar(select(func.count(Alert.id))) == 1

    # The accreditation comes back: the flags go.
    back = run(world, write(tmp_path, [rekeyed, second, reissued], 1002))
    assert {d.ski for d in back.unflagged} == {ended_key}
    assert back.flagged == []


def test_hand_registered_keys_are_never_changed_but_flagged(
    accredited: World, tmp_path: Path
) -> None:
    world = accredited
    hand = tl.ca_certificate(2, 0)
    with world.sessions() as session:
        row, _ = register_ca(session, hand.cert, ["http://hand.example/ca.crl"], now=pki.NOW)
        hand_id = row.id
        session.commit()
    run(world, write(tmp_path, authorities(), 1000))
    with world.sessions() as session:
        row = session.get(CertificationAuthority, hand_id)
        assert row is not None
        assert (row.source, row.list_version) == ("manual", None)
        assert row.crl_urls == ["http://hand.example/ca.crl", *hand.cert.crl_urls]
    first, second, *_ = authorities()
    ended = replace(second, status=tl.TslStatus("Аннулирована", pki.NOW))
    report = run(world, write(tmp_path, [first, ended], 1001))
    assert hand_id in {d.ca_id for d in report.flagged if d.source == "manual"}
    with world.sessions() as session:
        row = session.get(CertificationAuthority, hand_id)
        assert row is not None
        assert (row.source, row.active, row.list_flag) == ("manual", True, "accreditation_lost")
        assert row.crl_urls == ["http://hand.example/ca.crl", *hand.cert.crl_urls]
        # The test world's own CA was never listed: no flag.
        own = session.scalars(
            select(CertificationAuthority).where(
                CertificationAuthority.ski == world.ca.ski.hex().upper()
            )
        ).one()
        assert own.list_flag is None


def test_policy_none_registers_nothing(make_world: Callable[..., World], tmp_path: Path) -> None:
    world = make_world()
    report = run(world, write(tmp_path, authorities(), 1000))
    assert report.registered == [] and len(report.cas_added) == 4
    with world.sessions() as session:
        assert session.scalar(select(func.count(CertificationAuthority.id))) == 1


def test_dry_run_writes_nothing(accredited: World, tmp_path: Path) -> None:
    before = counts(accredited)
    report = run(accredited, write(tmp_path, authorities(), 1000), dry_run=True)
    assert report.dry_run and len(report.cas_added) == 4 and len(report.registered) == 4
    assert counts(accredited) == before


def test_a_truncated_file_writes_nothing(accredited: World, tmp_path: Path) -> None:
    path = write(tmp_path, authorities(), 1000)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * 0.7)])
    before = counts(accredited)
    with pytest.raises(TrustListError):
        run(accredited, path)
    assert counts(accredited) == before


def test_an_older_edition_is_refused_unless_forced(accredited: World, tmp_path: Path) -> None:
    world = accredited
    run(world, write(tmp_path, authorities(), 1001))
    first, *_ = authorities()
    older = write(tmp_path, [first], 1000)
    with pytest.raises(ImportRefused, match="older than the current version 1001"):
        run(world, older)
    altered = write(tmp_path, [first], 1001, "altered.xml")
    with pytest.raises(ImportRefused, match="content differs"):
        run(world, altered)
    report = run(world, older, force=True)
    assert report.previous_version == 1001
    assert {c.registry_number for c in report.cas_gone} == {"902", "903", "904"}
    with world.sessions() as session:
        assert DbAccreditationRegister(session).edition() is not None
        assert [e.version for e in session.scalars(select(TrustListEdition))] == [1000]
        gone = DbAccreditationRegister(session).key(tl.ca_certificate(2, 0).ski)
        assert gone is not None and not gone.present


def test_only_status_narrows_the_report(accredited: World, tmp_path: Path) -> None:
    report = run(accredited, write(tmp_path, authorities(), 1000), dry_run=True)
    narrowed = report.only_status("прекращена")
    assert [c.registry_number for c in narrowed.cas_added] == ["903"]
    assert narrowed.registered == []


def test_the_list_respects_what_administrators_did(accredited: World, tmp_path: Path) -> None:
    world = accredited
    run(world, write(tmp_path, authorities(), 1000))
    key = tl.ca_certificate(1, 0, 0, 0)  # the very certificate of the list
    with world.sessions() as session:
        row = session.scalars(
            select(CertificationAuthority).where(
                CertificationAuthority.thumbprint_sha1 == key.cert.thumbprint_sha1
            )
        ).one()
        row.active = False  # `ca deactivate`
        taken = session.scalars(
            select(CertificationAuthority).where(
                CertificationAuthority.ski == tl.ca_certificate(1, 1).ski.hex().upper()
            )
        ).one()
        register_ca(session, tl.ca_certificate(1, 1, 0, 0).cert, now=pki.NOW)  # `ca add`
        assert taken.source == "manual"
        session.commit()
    run(world, write(tmp_path, authorities(), 1001))
    with world.sessions() as session:
        row = session.scalars(
            select(CertificationAuthority).where(
                CertificationAuthority.thumbprint_sha1 == key.cert.thumbprint_sha1
            )
        ).one()
        assert (row.active, row.list_version) == (False, 1001)


def test_one_listed_key_can_be_registered_on_its_own(
    make_world: Callable[..., World], tmp_path: Path
) -> None:
    from mailbot.app.trust_list_policy import register_listed_key

    world = make_world()  # policy "none": the import registers nothing
    run(world, write(tmp_path, authorities(), 1000))
    with world.sessions() as session:
        listed = DbAccreditationRegister(session).key(tl.ca_certificate(2, 0).ski)
        assert listed is not None and listed.accredited
        rows = register_listed_key(session, listed, pki.NOW)
        session.commit()
        assert len(rows) == 2
        assert {(r.source, r.list_version) for r in rows} == {("trust_list", 1000)}
        assert rows[0].crl_urls[0] == "http://uc2.example.ru/cdp/key0.crl"


def test_the_same_version_with_other_content_is_forced_in(
    accredited: World, tmp_path: Path
) -> None:
    world = accredited
    run(world, write(tmp_path, authorities(), 1001))
    first, *_ = authorities()
    report = run(world, write(tmp_path, [first], 1001, "altered.xml"), force=True)
    assert not report.unchanged
    assert {c.registry_number for c in report.cas_gone} == {"902", "903", "904"}
    assert {d.flag for d in report.flagged} == {"key_gone"}
    with world.sessions() as session:
        register = DbAccreditationRegister(session)
        gone = register.key(tl.ca_certificate(2, 0).ski)
        kept = register.key(tl.ca_certificate(1, 0).ski)
        assert gone is not None and not gone.present
        assert kept is not None and kept.accredited
        edition = session.scalars(select(TrustListEdition)).one()
        assert edition.sha256 == report.sha256
