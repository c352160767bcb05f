"""Expiry reminders on SQLite and PostgreSQL, real test-PKI certificates, a pinned clock."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable

import pytest
from sqlalchemy import func, select, update

from mailbot.app import housekeeping, reminders
from mailbot.app.reminders import whole_days_left
from mailbot.directory import subscribers as directory
from mailbot.directory.engine import make_engine
from mailbot.directory.models import CertificateRecord, ExpiryReminder, Organisation, OutboxMessage
from mailbot.directory.session import session_factory
from tests.app import reminders_world
from tests.app.reminders_world import ADDRESS, FUND, NOW, World

# The reminders world, not the registration world of this folder's conftest.
make_world = reminders_world.make_world
world = reminders_world.world

DAY = dt.timedelta(days=1)


def test_whole_days_left_counts_complete_days() -> None:
    expiry = NOW + 30 * DAY
    assert whole_days_left(expiry, NOW) == 30
    assert whole_days_left(expiry, NOW + dt.timedelta(seconds=1)) == 29
    assert whole_days_left(expiry, expiry - dt.timedelta(hours=23)) == 0
    assert reminders.due_thresholds([30, 7], 31) == []
    assert reminders.due_thresholds([30, 7], 30) == [30]
    assert reminders.due_thresholds([7, 30], 5) == [7, 30]


def test_reminders_at_30_and_7_days_once_each_across_a_restart(
    world: World, database_url: str
) -> None:
    expiry = NOW + 40 * DAY
    certificate = world.register(expiry)

    # 31 whole days left: not yet.
    assert world.run(expiry - 31 * DAY).actions == ()
    # One second later only 30 whole days are left: the 30-day reminder.
    first = world.run(expiry - 31 * DAY + dt.timedelta(seconds=1))
    assert [(a.threshold_days, a.days_left, a.status) for a in first.actions] == [(30, 30, "sent")]
    assert first.sent == 1
    # The job again, a day later: nothing new.
    assert world.run(expiry - 30 * DAY).actions == ()

    # "Restart": a new engine and sessions, as a new daemon would have.
    engine = make_engine(database_url)
    try:
        restarted = World(
            world.config, session_factory(engine), world.templates, world.ca, world.subscriber_id
        )
        assert restarted.run(expiry - 20 * DAY).actions == ()
        seven = restarted.run(expiry - 7 * DAY - dt.timedelta(hours=1))
        assert [(a.threshold_days, a.days_left, a.status) for a in seven.actions] == [
            (7, 7, "sent")
        ]
        assert restarted.run(expiry - 6 * DAY).actions == ()
        assert restarted.run(expiry - dt.timedelta(hours=1)).actions == ()
    finally:
        engine.dispose()

    assert world.reminders() == [(certificate, 30, "sent"), (certificate, 7, "sent")]
    letters = world.letters()
    assert len(letters) == 2
    thirty, seven_letter = letters
    # expiry is 2026-04-11 09:00 UTC = 12:00 in Moscow.
    assert expiry == dt.datetime(2026, 4, 11, 9, 0, tzinfo=dt.UTC)
    assert thirty["To"] == ADDRESS
    assert thirty["From"] == FUND
    assert thirty["Auto-Submitted"] == "auto-generated"
    assert thirty["In-Reply-To"] is None
    assert "11.04.2026 12:00:00" in thirty["Subject"]
    body = thirty.get_content()
    assert "Осталось дней: 30." in body
    assert "(выдан: Иванов И. И.) истекает 11.04.2026 12:00:00" in body
    assert "Осталось дней: 7." in seven_letter.get_content()
    assert thirty["Message-ID"] != seven_letter["Message-ID"]
    with world.sessions() as session:
        rows = session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "reminder")).all()
        assert [r.recipients for r in rows] == [[ADDRESS], [ADDRESS]]
        assert {r.template_key for r in rows} == {"expiry_reminder"}
        assert {r.status for r in rows} == {"pending"}
        linked = session.scalars(select(ExpiryReminder.outbox_id).order_by(ExpiryReminder.id))
        assert list(linked) == [r.id for r in rows]


def test_several_thresholds_at_once_send_only_the_nearest(world: World) -> None:
    certificate = world.register(NOW + 5 * DAY + dt.timedelta(hours=3))
    report = world.run(NOW)
    assert sorted((a.threshold_days, a.status) for a in report.actions) == [
        (7, "sent"),
        (30, "skipped"),
    ]
    assert sorted(world.reminders()) == [(certificate, 7, "sent"), (certificate, 30, "skipped")]
    (letter,) = world.letters()
    assert "Осталось дней: 5." in letter.get_content()
    assert world.run(NOW + DAY).actions == ()
    assert len(world.letters()) == 1


def test_a_threshold_added_later_behind_a_sent_nearer_one_is_skipped(
    make_world: Callable[..., World],
) -> None:
    world = make_world(expiry_days=[7])
    certificate = world.register(NOW + 5 * DAY)
    assert world.run(NOW).sent == 1
    # The administrator adds a farther threshold: the 7-day letter already went.
    world.config = dataclasses.replace(
        world.config, reminders=dataclasses.replace(world.config.reminders, expiry_days=(30, 7))
    )
    report = world.run(NOW + dt.timedelta(hours=1))
    assert [(a.threshold_days, a.status) for a in report.actions] == [(30, "skipped")]
    assert len(world.letters()) == 1
    assert sorted(world.reminders()) == [(certificate, 7, "sent"), (certificate, 30, "skipped")]


def test_a_renewed_certificate_supersedes_the_old_one(world: World) -> None:
    old = world.register(NOW + 20 * DAY)
    new = world.register(NOW + 385 * DAY)
    report = world.run(NOW)
    assert [(a.certificate_id, a.threshold_days, a.status, a.superseded_by)
            for a in report.actions] == [(old, 30, "superseded", new)]  # fmt: skip
    assert world.letters() == []
    # Reaching 7 days later: superseded again, still no letter.
    report = world.run(NOW + 14 * DAY)
    assert [(a.threshold_days, a.status) for a in report.actions] == [(7, "superseded")]
    assert world.letters() == []
    with world.sessions() as session:
        assert session.scalars(select(ExpiryReminder.superseded_by_id)).all() == [new, new]


def test_a_revoked_or_earlier_certificate_does_not_supersede(world: World) -> None:
    expiring = world.register(NOW + 20 * DAY)
    revoked = world.register(NOW + 385 * DAY)
    older = world.register(NOW + 10 * DAY, cn="Иванов И. И. (старый)")
    with world.sessions() as session:
        session.execute(
            update(CertificateRecord)
            .where(CertificateRecord.id == revoked)
            .values(status="revoked")
        )
        session.commit()
    report = world.run(NOW)
    assert sorted((a.certificate_id, a.threshold_days, a.status, a.superseded_by)
                  for a in report.actions) == sorted([
        (expiring, 30, "sent", None),  # the revoked later one does not count
        (older, 30, "superseded", expiring),  # the earlier one is covered by "expiring"
    ])  # fmt: skip
    (letter,) = world.letters()
    assert "Осталось дней: 20." in letter.get_content()


@pytest.mark.parametrize("how", ["address removed", "subscriber inactive", "organisation inactive"])
def test_no_active_address_records_undeliverable_and_sends_nothing(world: World, how: str) -> None:
    certificate = world.register(NOW + 25 * DAY)
    with world.sessions() as session:
        if how == "address removed":
            directory.remove_address(session, world.subscriber_id, ADDRESS)
        elif how == "subscriber inactive":
            directory.get_subscriber(session, world.subscriber_id).active = False
        else:
            session.execute(update(Organisation).values(active=False))
        session.commit()
    report = world.run(NOW)
    assert [(a.threshold_days, a.status, a.recipients) for a in report.actions] == [
        (30, "undeliverable", ())
    ]
    assert world.letters() == []
    assert world.reminders() == [(certificate, 30, "undeliverable")]
    # Not retried for that threshold; the next one is tried afresh once the address is back.
    with world.sessions() as session:
        directory.add_address(session, world.subscriber_id, ADDRESS)
        directory.get_subscriber(session, world.subscriber_id).active = True
        session.execute(update(Organisation).values(active=True))
        session.commit()
    assert world.run(NOW + DAY).actions == ()
    assert world.run(NOW + 18 * DAY).sent == 1
    assert world.reminders()[-1] == (certificate, 7, "sent")


def test_expired_certificates_get_status_expired(world: World) -> None:
    expired = world.register(NOW - dt.timedelta(seconds=1))
    due = world.register(NOW + 3 * DAY)
    revoked = world.register(NOW - 3 * DAY)
    with world.sessions() as session:
        session.execute(
            update(CertificateRecord)
            .where(CertificateRecord.id == revoked)
            .values(status="revoked")
        )
        session.commit()
    report = world.run(NOW)
    assert report.expired == 1
    assert world.status(expired) == "expired"
    assert world.status(revoked) == "revoked"
    assert world.status(due) == "valid"
    assert all(a.certificate_id == due for a in report.actions)
    # The housekeeping step does the same when reminders are off.
    assert housekeeping.mark_expired(world.sessions, NOW + 4 * DAY) == 1
    assert world.status(due) == "expired"
    assert housekeeping.mark_expired(world.sessions, NOW + 4 * DAY) == 0


def test_dry_run_writes_nothing(world: World) -> None:
    expired = world.register(NOW - DAY)
    certificate = world.register(NOW + 5 * DAY)
    report = world.run(NOW, dry_run=True)
    assert report.dry_run and report.expired == 1
    assert sorted((a.certificate_id, a.threshold_days, a.status) for a in report.actions) == [
        (certificate, 7, "sent"),
        (certificate, 30, "skipped"),
    ]
    assert world.reminders() == [] and world.letters() == []
    assert world.status(expired) == "valid"
    # The real run does what the dry run announced.
    assert world.run(NOW).sent == 1


def test_a_concurrent_run_loses_on_the_unique_key(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = world.register(NOW + 20 * DAY)
    second = world.register(NOW + 25 * DAY, cn="Иванов И. И. (второй)")
    assert world.run(NOW).sent == 1  # the newer one supersedes the first
    # A run that read before the other committed: it does not see the settled rows.
    monkeypatch.setattr(reminders, "_settled", lambda _session, _ids: set())
    report = world.run(NOW + dt.timedelta(minutes=1))
    assert report.raced == 2
    assert report.actions == ()
    assert len(world.letters()) == 1
    with world.sessions() as session:
        assert session.scalar(select(func.count(ExpiryReminder.id))) == 2
        assert session.scalar(select(func.count(OutboxMessage.id))) == 1
    assert {c for c, *_ in world.reminders()} == {first, second}


def test_no_thresholds_send_nothing(make_world: Callable[..., World]) -> None:
    world = make_world(enabled=False, expiry_days=[])
    world.register(NOW + 5 * DAY)
    assert world.run(NOW).actions == ()
