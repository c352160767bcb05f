"""CRL unavailable with policy ``defer``: the letter waits unanswered, is retried, alerts once.

Processor level on SQLite and PostgreSQL; the CRL comes from a loopback HTTP
server that answers 404 until it is handed a CRL, or from the drop folder.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from mailbot.app.deferral import alert_long_waits, retry_deferred
from mailbot.app.letters import LetterSource, RetryError
from mailbot.cli.main import main
from mailbot.directory.models import Alert, LetterRecord, OutboxMessage
from testkit import pki as factory
from testkit.crl_server import CrlServer
from tests.app.world import SNILS, World, cert_letter
from tests.cli.test_process_cli import config_file

SUCCESS_PREFIX = "Установка сертификата ключа проверки электронной подписи выполнена успешно."


@pytest.fixture
def crl_server() -> Iterator[CrlServer]:
    server = CrlServer()
    yield server
    server.stop()


@pytest.fixture
def waiting_world(make_world: Callable[..., World]) -> World:
    """Policy defer, and no CRL of the CA on file."""
    world = make_world(crl={"unavailable_policy": "defer"})
    for crl in world.config.crl_drop_dir.iterdir():
        crl.unlink()
    return world


def outbox(world: World, kind: str | None = None) -> list[OutboxMessage]:
    with world.sessions() as session:
        query = select(OutboxMessage).order_by(OutboxMessage.id)
        if kind is not None:
            query = query.where(OutboxMessage.kind == kind)
        return list(session.scalars(query))


def journal(world: World, letter_id: int) -> LetterRecord:
    with world.sessions() as session:
        row = session.get(LetterRecord, letter_id)
        assert row is not None
        return row


def test_deferred_letter_is_answered_once_when_the_crl_server_recovers(
    waiting_world: World, crl_server: CrlServer
) -> None:
    world = waiting_world
    participant = factory.make_end_entity(world.ca, snils=SNILS, crl_urls=(crl_server.url,))
    first = world.process(cert_letter(participant), uid=1)
    assert (first.outcome, first.filing, first.reply_text) == ("deferred", "deferred", None)
    assert outbox(world) == []
    row = journal(world, first.letter_id or 0)
    assert (row.state, row.outcome) == ("deferred", "deferred")
    deferral = row.detail["deferral"]
    assert deferral["urls"] == [crl_server.url]
    assert "HTTP 404" in deferral["problem"] and crl_server.url in deferral["problem"]
    assert deferral["retries"] == 0
    assert deferral["ca_name"] == "УЦ Тест"

    # Still 404: waits on, answered zero times.
    again = world.processor.retry(first.letter_id or 0)
    assert again.outcome == "deferred"
    assert outbox(world) == []
    assert journal(world, first.letter_id or 0).detail["deferral"]["retries"] == 1

    crl_server.crl = factory.make_crl(world.ca)
    decided = world.processor.retry(first.letter_id or 0)
    assert decided.outcome == "success", decided.detail
    assert decided.letter_id == first.letter_id
    assert decided.filing == "processed"
    (reply,) = outbox(world)
    assert reply.letter_id == first.letter_id and reply.kind == "reply"
    row = journal(world, first.letter_id or 0)
    assert (row.state, row.outcome, row.template_key) == ("done", "success", "success")
    assert row.detail["deferral"]["decided_at"] == factory.NOW.isoformat()
    assert row.certificate_id is not None

    # Decided letters are not retried again, and the daemon's view files them.
    with pytest.raises(RetryError, match="not deferred"):
        world.processor.retry(first.letter_id or 0)
    assert world.process(cert_letter(participant), uid=1).duplicate
    assert len(outbox(world)) == 1


def test_a_dropped_crl_file_decides_the_waiting_letters(waiting_world: World) -> None:
    world = waiting_world
    dead = ("http://127.0.0.1:9/ca.crl",)  # nothing listens on the discard port
    serials = (0x2001, 0x2002)
    ids = [
        world.process(cert_letter(factory.make_end_entity(
            world.ca, snils=SNILS, crl_urls=dead, serial=serial)), uid=uid).letter_id
        for uid, serial in enumerate(serials, start=1)
    ]  # fmt: skip
    report = retry_deferred(world.processor)
    # The second letter waits for the same CA and URL: not fetched again this round.
    assert (report.still_waiting, report.skipped, report.decided) == ([ids[0]], [ids[1]], [])
    assert outbox(world) == []

    world.drop_crl(factory.make_crl(world.ca, [factory.Revoked(0x2002)], number=3), "dropped.crl")
    report = retry_deferred(world.processor)
    assert sorted(report.decided) == sorted([(ids[0], "success"), (ids[1], "invalid_cert")])
    replies = outbox(world)
    assert sorted(r.letter_id for r in replies) == sorted(ids)
    assert retry_deferred(world.processor).decided == []
    assert len(outbox(world)) == 2


def test_one_request_per_round_for_letters_waiting_on_one_url(
    waiting_world: World, crl_server: CrlServer
) -> None:
    world = waiting_world
    for uid in (1, 2, 3):
        certificate = factory.make_end_entity(
            world.ca, snils=SNILS, crl_urls=(crl_server.url,), serial=0x3000 + uid
        )
        assert world.process(cert_letter(certificate), uid=uid).outcome == "deferred"
    before = crl_server.requests
    retry_deferred(world.processor)
    assert crl_server.requests == before + 1


def test_waiting_past_the_threshold_alerts_once(
    make_world: Callable[..., World], crl_server: CrlServer
) -> None:
    world = make_world(
        crl={"unavailable_policy": "defer", "alert_after_minutes": 240},
        admin={"alert_addresses": ["pki-admin@fund.example"]},
    )
    for crl in world.config.crl_drop_dir.iterdir():
        crl.unlink()
    participant = factory.make_end_entity(world.ca, snils=SNILS, crl_urls=(crl_server.url,))
    letter_id = world.process(cert_letter(participant), uid=1).letter_id

    with world.sessions() as session:
        assert (
            alert_long_waits(session, world.config, factory.NOW + dt.timedelta(minutes=239)) == []
        )
        session.commit()
    later = factory.NOW + dt.timedelta(minutes=241)
    for _ in range(3):  # every retry round checks again; one alert stands
        world.processor.retry(letter_id or 0)
        with world.sessions() as session:
            alert_long_waits(session, world.config, later)
            session.commit()
    (alert,) = outbox(world, "alert")
    assert outbox(world, "reply") == []
    with world.sessions() as session:
        row = session.scalars(select(Alert)).one()
        assert row.kind == "crl_unavailable"
        body = row.body
    assert crl_server.url in body and "HTTP 404" in body
    assert "УЦ Тест" in body
    assert f"письмо {letter_id} от" in body
    assert "4 ч 1 мин" in body
    assert str(world.config.crl_drop_dir) in body
    assert "unavailable_policy" in body and "mailbot letter list --deferred" in body
    assert alert.recipients == ["pki-admin@fund.example"]


def test_a_concurrent_retry_answers_once(waiting_world: World, crl_server: CrlServer) -> None:
    """Two retries of one letter racing: the loser of the compare-and-set changes nothing."""
    world = waiting_world
    participant = factory.make_end_entity(world.ca, snils=SNILS, crl_urls=(crl_server.url,))
    letter_id = world.process(cert_letter(participant), uid=1).letter_id or 0
    crl_server.crl = factory.make_crl(world.ca)
    processor = world.processor
    decide = processor._decide
    raced: list[str] = []
    calls = 0

    def decide_then_lose_the_race(*args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        decision = decide(*args, **kwargs)  # type: ignore[arg-type]
        if calls == 1:
            raced.append(processor.retry(letter_id).outcome)  # the other retry wins meanwhile
        return decision

    processor._decide = decide_then_lose_the_race  # type: ignore[method-assign]
    loser = processor.retry(letter_id)
    assert raced == ["success"]
    assert loser.duplicate and loser.outcome == "success"
    assert len(outbox(world, "reply")) == 1
    assert journal(world, letter_id).attempts == 2  # the claim and the winning retry


def test_letter_list_and_retry_commands(
    waiting_world: World,
    crl_server: CrlServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    world = waiting_world
    config = str(config_file(world, tmp_path))
    participant = factory.make_end_entity(world.ca, snils=SNILS, crl_urls=(crl_server.url,))
    letter_id = world.process(cert_letter(participant), uid=1).letter_id
    other = world.process(cert_letter(b"not a certificate"), uid=2).letter_id
    capsys.readouterr()

    assert main(["letter", "list", "--deferred", "--format", "json", "--config", config]) == 0
    (listed,) = json.loads(capsys.readouterr().out)
    assert listed["id"] == letter_id
    assert listed["ca"] == "УЦ Тест" and "HTTP 404" in listed["problem"]
    assert main(["letter", "list", "--state", "done", "--format", "csv", "--config", config]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("id,received_at,state,outcome")
    assert [line.split(",")[0] for line in out.splitlines()[1:]] == [str(other)]

    # The CLI runs with the real clock: the CRL must be current now.
    now = dt.datetime.now(dt.UTC)
    assert main(["letter", "retry", str(letter_id), "--config", config]) == 3
    assert "still waits for a CRL" in capsys.readouterr().out
    crl_server.crl = factory.make_crl(
        world.ca, this_update=now - dt.timedelta(hours=1), next_update=now + dt.timedelta(days=1)
    )
    assert main(["letter", "retry", str(letter_id), "--config", config]) == 0
    assert "decided: success; reply queued" in capsys.readouterr().out
    assert len(outbox(world, "reply")) == 2  # this letter's and the invalid_files reply
    assert main(["letter", "retry", str(letter_id), "--config", config]) == 1
    assert "is done, not deferred" in capsys.readouterr().err
    assert main(["letter", "list", "--deferred", "--format", "json", "--config", config]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_a_reset_poison_letter_is_processed_again_on_the_same_row(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = cert_letter(factory.make_end_entity(world.ca, snils=SNILS))
    processor = world.processor
    for _ in range(4):
        claim = processor.claim(raw, LetterSource("INBOX", 1, 5))
    processor.give_up(claim.letter_id, "processing started 3 times without finishing")
    processor.mark_filed([(claim.letter_id, "Failed")])
    # Found in the mailbox again before the reset: it stays failed.
    assert processor.claim(raw, LetterSource("INBOX", 1, 6)).state == "failed"

    config = str(config_file(world, tmp_path))
    assert main(["letter", "retry", str(claim.letter_id), "--config", config]) == 0
    assert "move it back to 'INBOX'" in capsys.readouterr().out
    row = journal(world, claim.letter_id)
    assert (row.state, row.attempts, row.uid, row.filed_to) == ("claimed", 0, None, None)
    assert row.detail["resets"][0]["failure"].startswith("processing started 3 times")

    # Moved back: a new UID, the same journal row, processed as new.
    again = processor.claim(raw, LetterSource("INBOX", 1, 7))
    assert (again.letter_id, again.attempts, again.state) == (claim.letter_id, 1, "claimed")
    result = processor.process(raw, LetterSource("INBOX", 1, 7))
    assert (result.letter_id, result.outcome) == (claim.letter_id, "success")
    row = journal(world, claim.letter_id)
    assert (row.state, row.uid) == ("done", 7)
    assert "resets" in row.detail
    assert len(outbox(world, "reply")) == 1
    with world.sessions() as session:
        assert session.scalar(select(func.count(LetterRecord.id))) == 1
