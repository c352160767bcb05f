"""Letters decided in a thread or in the decision process, with the fetch ahead of them.

The daemon runs in-process (``Daemon.run``, once) against real Dovecot,
SMTP and SQLite; with ``decide_in = "process"`` its decision process is real too.
"""

from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from mailbot.app.assembly import load_rules_and_templates
from mailbot.app.letter_turns import LetterTurns, Turn, TurnResult
from mailbot.app.letters import LetterSource
from mailbot.config import Config, config_from_mapping, load_config
from mailbot.daemon.decider import DecisionDatabaseError, DecisionsUnavailable, ProcessDecider
from mailbot.daemon.runner import Daemon
from mailbot.directory.engine import engine_from_config
from mailbot.directory.models import LetterRecord
from mailbot.directory.session import session_factory
from mailbot.mail.imap import MailboxClient
from testkit import processes
from testkit.scenario import FUND, PARTICIPANT, Scenario, build_scenario

pytestmark = [pytest.mark.timeout(180), pytest.mark.slow]

#: Certificate letters (registered: Processed) and letters without one (Rejected).
CERTIFICATES, PLAIN = 24, 8


@pytest.fixture
def make_scenario() -> Iterator[Callable[[str], Scenario]]:
    made: list[Scenario] = []

    def make(decide_in: str) -> Scenario:
        directory = Path(tempfile.mkdtemp(prefix="mailbot-decider-"))
        scenario = build_scenario(
            directory,
            extra_config="[limits]\nreplies_per_sender_per_day = 1000\n",
            decide_in=decide_in,
        )
        made.append(scenario)
        return scenario

    yield make
    for scenario in made:
        scenario.close()


def deliver_burst(scenario: Scenario) -> None:
    for index in range(CERTIFICATES + PLAIN):
        certificate = scenario.participant_certificate() if index % 4 else None
        scenario.deliver(scenario.add_cert_letter(certificate))


def journal(scenario: Scenario) -> list[tuple[str, int, str | None]]:
    """Every journal row's state, attempts and folder, in UID order.

    Each row's archive copy is checked to be on disk (the daemon writes it as it fetches).
    """
    engine = engine_from_config(scenario.config)
    try:
        with session_factory(engine)() as session:
            rows = session.execute(
                select(
                    LetterRecord.state,
                    LetterRecord.attempts,
                    LetterRecord.filed_to,
                    LetterRecord.archive_path,
                ).order_by(LetterRecord.uid)
            ).all()
    finally:
        engine.dispose()
    assert all(archive and Path(archive).is_file() for *_, archive in rows)
    return [(state, attempts, filed_to) for state, attempts, filed_to, _ in rows]


@pytest.mark.parametrize("decide_in", ["thread", "process"])
async def test_a_burst_is_decided_once_a_letter_in_either_place(
    make_scenario: Callable[[str], Scenario], decide_in: str
) -> None:
    scenario = make_scenario(decide_in)
    deliver_burst(scenario)
    daemon = Daemon(load_config(scenario.config_path), once=True)
    assert await daemon.run() == 0
    rows = journal(scenario)
    # One attempt each: every letter but the first was claimed by the decision before it.
    assert {(state, attempts) for state, attempts, _ in rows} == {("done", 1)}
    assert sorted(folder or "" for _, _, folder in rows) == sorted(
        ["Processed"] * (CERTIFICATES + PLAIN - 8) + ["Rejected"] * 8
    )
    assert scenario.dovecot.message_count(FUND) == 0
    assert scenario.dovecot.message_count(PARTICIPANT) == CERTIFICATES + PLAIN
    counted = {
        outcome: daemon.metrics.own.get_sample_value("mailbot_letters_total", {"outcome": outcome})
        for outcome in ("success", "no_cer", "crashed")
    }
    assert counted == {"success": CERTIFICATES + PLAIN - 8, "no_cer": 8, "crashed": 0}


async def test_the_letter_after_next_is_fetched_while_a_letter_is_decided(
    make_scenario: Callable[[str], Scenario], monkeypatch: pytest.MonkeyPatch
) -> None:
    # In a thread, so that the decisions can be watched from this process.
    scenario = make_scenario("thread")
    deliver_burst(scenario)
    lock = threading.Lock()
    fetch_started: dict[int, float] = {}
    decided: dict[int, float] = {}
    fetch_message, take = MailboxClient.fetch_message, LetterTurns.take

    async def recording_fetch(client: MailboxClient, uid: int, *args: Any) -> bytes | None:
        with lock:
            fetch_started[uid] = time.monotonic()
        return await fetch_message(client, uid, *args)

    def recording_take(turns: LetterTurns, turn: Turn) -> TurnResult:
        result = take(turns, turn)
        with lock:
            assert turn.source.uid is not None
            decided[turn.source.uid] = time.monotonic()
        return result

    monkeypatch.setattr(MailboxClient, "fetch_message", recording_fetch)
    monkeypatch.setattr(LetterTurns, "take", recording_take)
    assert await Daemon(load_config(scenario.config_path), once=True).run() == 0
    uids = sorted(decided)
    assert len(uids) == CERTIFICATES + PLAIN
    ahead = [fetch_started[uids[n + 2]] < decided[uids[n]] for n in range(len(uids) - 2)]
    # Without the prefetch no letter after next is fetched before the letter is
    # decided; with it nearly every one is (a loaded machine may delay a few).
    assert sum(ahead) >= 0.8 * len(ahead), ahead


def decision_process_config(tmp_path: Path, database_url: str) -> Config:
    return config_from_mapping(
        {
            "general": {"state_dir": str(tmp_path / "state")},
            "imap": {"password_env": "X"},
            "database": {"url": database_url},
        }
    )


def a_turn() -> Turn:
    raw = b"From: someone@example.org\r\nSubject: ADD_CERT\r\n\r\nhello\r\n"
    return Turn(raw, LetterSource("INBOX", 1, 1))


async def test_a_decision_process_that_cannot_start_is_reported(tmp_path: Path) -> None:
    # Its SQLite file's folder cannot be made: the engine is built at its start.
    config = decision_process_config(tmp_path, "sqlite:////proc/mailbot-nowhere/db.sqlite3")
    decider = ProcessDecider(config, *load_rules_and_templates(config))
    await decider.start()
    try:
        with pytest.raises(DecisionsUnavailable, match="mailbot-nowhere"):
            await decider.submit(a_turn())
    finally:
        await decider.close()


async def test_a_database_error_in_the_decision_process_is_one_in_the_daemon(
    tmp_path: Path,
) -> None:
    # A database without the schema: the claim's statement fails in the process.
    config = decision_process_config(tmp_path, f"sqlite:///{tmp_path / 'empty.sqlite3'}")
    decider = ProcessDecider(config, *load_rules_and_templates(config))
    await decider.start()
    try:
        for _ in range(2):  # and the process goes on deciding
            decision = await decider.submit(a_turn())
            # An SQLAlchemyError: the daemon takes its "database gone" path.
            with pytest.raises(DecisionDatabaseError, match="no such table"):
                await decision
        pid = decider.pid
        assert pid is not None and processes.alive(pid)
    finally:
        await decider.close()
    processes.wait_gone(pid, timeout=5)  # its input closed: it exited
