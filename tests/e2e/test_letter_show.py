"""``mailbot letter show`` and the journal's filters on letters of every outcome, end to end.

One scenario (real Dovecot, SMTP bridge, SQLite, GOST certificates), one daemon
pass over a mailbox holding a letter of each outcome; then many in-process
``mailbot`` calls reading what the pass journaled.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from mailbot.cli.journal_filters import date_argument
from mailbot.cli.main import main
from mailbot.config import load_config
from mailbot.daemon.runner import Daemon
from mailbot.directory.authorities import register_ca
from mailbot.directory.engine import engine_from_config
from mailbot.directory.session import session_factory
from testkit import letters
from testkit import pki as factory
from testkit.scenario import FUND, PARTICIPANT, PARTICIPANT_SNILS, STRANGER, Scenario
from tests.e2e.test_end_to_end import scenario_factory  # noqa: F401  (fixture)

pytestmark = pytest.mark.timeout(180)

MOSCOW = ZoneInfo("Europe/Moscow")
#: Replies the participant's letters before the capped one earn (the cap withholds the next).
REPLY_CAP = 8


def _mailbox(scenario: Scenario) -> dict[str, bytes]:
    """A letter of each outcome, in delivery (and processing) order."""
    now = dt.datetime.now(dt.UTC)
    participant = scenario.address(PARTICIPANT)
    fund = scenario.address(FUND)
    stranger_ca = factory.make_ca("Чужой УЦ", slot=4)
    # A registered CA whose CRL nobody publishes: its certificates wait (policy defer).
    silent_ca = factory.make_ca("Молчащий УЦ", slot=5)
    engine = engine_from_config(scenario.config)
    with session_factory(engine)() as session:
        register_ca(session, silent_ca.cert)
        session.commit()
    engine.dispose()
    expired = factory.make_end_entity(
        scenario.ca, snils=PARTICIPANT_SNILS, crl_urls=(),
        not_before=now - dt.timedelta(days=400), not_after=now - dt.timedelta(days=1),
    )  # fmt: skip
    forged = factory.issue(
        factory.CertSpec(
            subject=[("CN", "Иванов Иван Иванович"), ("SNILS", PARTICIPANT_SNILS)],
            include_aki=False,
        ),
        factory.make_key(slot=8),
        scenario.ca,
        signing_key=factory.make_ca("Демонстрационный УЦ", slot=7).key,
    )
    zip_data = letters.certificate_zip("Иванов.cer", scenario.participant_certificate().der)
    return {
        "success": scenario.add_cert_letter(scenario.participant_certificate()),
        "snils_mismatch": scenario.add_cert_letter(scenario.participant_certificate("12345678964")),
        "unknown_ca": scenario.add_cert_letter(scenario.participant_certificate(ca=stranger_ca)),
        "no_cer": scenario.add_cert_letter(None),
        "invalid_files": letters.plain_zip_letter(
            "Иванов.zip",
            b"not a zip at all",
            sender=participant,
            to=fund,
            message_id="<show-invalid-files@example.test>",
        ),
        "expired": scenario.add_cert_letter(expired),
        "forged": scenario.add_cert_letter(forged),
        "loop": letters.plain_zip_letter(
            "Иванов.zip",
            zip_data,
            sender=participant,
            to=fund,
            message_id="<show-loop@example.test>",
            headers=[("Auto-Submitted", "auto-replied")],
        ),
        # A stranger's header meant to drive the administrator's terminal.
        "stranger": letters.plain_zip_letter(
            "Иванов.zip",
            zip_data,
            sender=scenario.address(STRANGER),
            to=f"{fund}\x1b[2J",
            message_id="<show-stranger@example.test>",
        ),
        "unknown_subject": letters.no_attachment_letter(
            sender=participant,
            to=fund,
            subject="HELLO",
            message_id="<show-unknown-subject@example.test>",
        ),
        "deferred": scenario.add_cert_letter(scenario.participant_certificate(ca=silent_ca)),
        # The ninth reply of the day to the participant: over the cap, withheld.
        "capped": scenario.add_cert_letter(None),
    }


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main([*args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def processed(scenario_factory: Callable[..., Scenario]) -> tuple[Scenario, dict[str, int]]:  # noqa: F811
    """The scenario after one daemon pass over a letter of each outcome; name -> letter id."""
    scenario = scenario_factory(
        extra_config=f"[limits]\nreplies_per_sender_per_day = {REPLY_CAP}\n"
    )
    mailbox = _mailbox(scenario)
    for raw in mailbox.values():
        scenario.deliver(raw)
    daemon = Daemon(load_config(scenario.config_path), once=True)
    assert asyncio.run(asyncio.wait_for(daemon.run(), 120)) == 0
    # Letters are processed in UID order, that is in delivery order: ids 1, 2, ...
    return scenario, {name: number for number, name in enumerate(mailbox, start=1)}


def show(
    capsys: pytest.CaptureFixture[str], scenario: Scenario, key: int | str
) -> tuple[dict[str, Any], str]:
    """``letter show KEY`` as JSON and as text."""
    config = ["--config", str(scenario.config_path)]
    code, out, err = run(capsys, "letter", "show", str(key), "--format", "json", *config)
    assert (code, err) == (0, ""), err
    code, text, err = run(capsys, "letter", "show", str(key), *config)
    assert (code, err) == (0, ""), err
    return json.loads(out), text


def deciding(story: dict[str, Any]) -> list[str]:
    return [hit["rule"] for hit in story["rule_hits"] if hit["deciding"]]


def test_letter_show_tells_each_outcome_and_the_journal_filters_work(
    processed: tuple[Scenario, dict[str, int]], capsys: pytest.CaptureFixture[str]
) -> None:
    scenario, ids = processed
    config = ["--config", str(scenario.config_path)]
    fund = scenario.address(FUND)

    story, text = show(capsys, scenario, ids["success"])
    assert (story["state"], story["outcome"], story["filed_to"]) == ("done", "success", "Processed")
    assert story["decision"]["stage"] == "certificate"
    assert deciding(story) == ["snils_matches"]
    assert story["received_at"].endswith("+03:00")  # Europe/Moscow, the default zone
    assert story["mailbox"]["name"] == "INBOX" and story["mailbox"]["uid"] == ids["success"]
    assert story["mailbox"]["uidvalidity"]
    assert story["headers"]["from"].endswith(f"<{scenario.address(PARTICIPANT)}>")
    assert story["headers"]["to"] == scenario.address(FUND)
    assert story["headers"]["message_id"].startswith("<scenario-")
    certificate = story["certificate"]
    assert certificate["snils"] == "*********95"
    assert PARTICIPANT_SNILS not in json.dumps(story) and PARTICIPANT_SNILS not in text
    assert certificate["issuer"].startswith("CN=Демонстрационный УЦ") or (
        "Демонстрационный УЦ" in certificate["issuer"]
    )
    assert certificate["registered_id"] is not None and certificate["status"] == "valid"
    assert certificate["not_after"].endswith("+03:00")
    reply = story["reply"]
    assert reply["status"] == "sent" and reply["sent_at"].endswith("+03:00")
    assert reply["body"].startswith("Установка сертификата ключа проверки электронной подписи")
    assert ["Auto-Submitted", "auto-replied"] in reply["headers"]
    assert ["In-Reply-To", story["headers"]["message_id"]] in reply["headers"]
    assert story["no_reply"] is None
    assert story["archive_path"].endswith(".eml")
    assert "> HIT  snils_matches" in text
    assert "decided by:    the certificate checks, rule snils_matches: registered" in text
    assert "Установка сертификата ключа проверки электронной подписи выполнена успешно" in text
    assert "  SNILS:       *********95" in text

    # Each failure template: the deciding rule, and the reply exactly as sent.
    expected = {
        "snils_mismatch": ("snils_mismatch", "snils_matches", "СНИЛС, указанный в сертификате"),
        "unknown_ca": ("unknown_ca", "registered_ca", "выдан неизвестным системе"),
        "no_cer": ("no_cer", "no_attachment", "отсутствует файл сертификата"),
        "invalid_files": ("invalid_files", "zip_attachment", "приложены недопустимые файлы"),
        "expired": ("invalid_cert", "validity_period", "Причина: срок действия истёк"),
        "forged": ("invalid_cert", "ca_signature", "подпись удостоверяющего центра неверна"),
        "unknown_subject": ("unknown_subject", None, "«HELLO» не соответствует"),
    }
    for name, (outcome, rule, words) in expected.items():
        story, text = show(capsys, scenario, ids[name])
        assert story["outcome"] == outcome, name
        assert deciding(story) == ([rule] if rule else []), name
        assert story["decision"]["rule"] == rule, name
        assert story["reply"]["status"] == "sent", name
        assert words in story["reply"]["body"], name
        assert words in text, name
        assert story["filed_to"] == "Rejected", name
    story, text = show(capsys, scenario, ids["unknown_subject"])
    assert "decided by:    the routes, no route matched: no route for subject 'HELLO'" in text
    story, _ = show(capsys, scenario, ids["snils_mismatch"])
    assert story["certificate"]["snils"] == "*********64"
    story, text = show(capsys, scenario, ids["unknown_ca"])
    assert story["quarantine"]["status"] == "pending"
    assert story["quarantine"]["path"].endswith(f"{story['certificate']['thumbprint_sha1']}.cer")
    assert "Чужой УЦ" in story["certificate"]["issuer"]
    assert "quarantine:    entry" in text
    # The administrator rejects the CA: the follow-up joins the letter's story.
    quarantined = str(story["quarantine"]["id"])
    assert (
        run(capsys, "quarantine", "reject", quarantined, "--reason", "не наш УЦ", *config)[0] == 0
    )
    story, text = show(capsys, scenario, ids["unknown_ca"])
    assert story["quarantine"]["status"] == "rejected"
    assert story["quarantine"]["reason"] == "не наш УЦ"
    (followup,) = story["followups"]
    assert followup["status"] == "pending" and "Причина: не наш УЦ" in followup["body"]
    assert story["reply"]["body"].startswith("Сертификат ключа проверки")  # the first answer
    assert "follow-up:     pending" in text
    story, _ = show(capsys, scenario, ids["expired"])
    assert story["certificate"]["not_after"] < story["received_at"]

    # No reply: the loop guard, the sender gate, the reply cap, the deferral.
    story, text = show(capsys, scenario, ids["loop"])
    assert (story["outcome"], story["reply"]) == ("no_reply", None)
    assert deciding(story) == ["auto_submitted"]
    assert story["no_reply"].startswith("no reply by the loop guard: automatic or looping mail")
    assert "reply:         none: no reply by the loop guard" in text
    story, text = show(capsys, scenario, ids["stranger"])
    assert deciding(story) == ["trusted_sender"]
    assert story["no_reply"].startswith("no reply by the sender gate:")
    assert story["headers"]["from"].endswith(f"<{scenario.address(STRANGER)}>")
    assert story["headers"]["to"] == f"{fund}\x1b[2J"  # JSON escapes it
    assert "\x1b" not in text and f"To:          {fund}\\x1b[2J" in text
    story, text = show(capsys, scenario, ids["capped"])
    assert (story["outcome"], story["reply"]) == ("no_cer", None)
    assert deciding(story) == ["no_attachment"]
    assert story["no_reply"] == (
        f"reply withheld: daily reply cap reached ({REPLY_CAP} replies today, cap {REPLY_CAP})"
    )
    story, text = show(capsys, scenario, ids["deferred"])
    assert (story["state"], story["outcome"], story["reply"]) == ("deferred", "deferred", None)
    assert deciding(story) == ["crl_available"]
    assert story["no_reply"].startswith("deferred: waiting for a CRL")
    assert story["deferral"]["since"].endswith("+03:00")
    assert story["filed_to"] is None
    assert "deferred:      since" in text and "filed to:      (not filed yet)" in text

    # By Message-ID, with or without the angle brackets.
    by_id, _ = show(capsys, scenario, ids["loop"])
    by_message_id, _ = show(capsys, scenario, "<show-loop@example.test>")
    assert by_message_id == by_id
    assert show(capsys, scenario, "show-loop@example.test")[0]["id"] == ids["loop"]

    # Unknown letters: one line on stderr, exit 1.
    for key, words in (("9999", "no letter 9999"), ("<nobody@x>", "no letter with Message-ID")):
        code, out, err = run(capsys, "letter", "show", key, *config)
        assert (code, out) == (1, "")
        assert err.count("\n") == 1 and err.startswith("mailbot: ") and words in err

    # The listing: local times, Message-ID and UID; filters; `journal` is the same listing.
    code, out, _ = run(capsys, "letter", "list", "--format", "json", *config)
    rows = json.loads(out)
    assert code == 0 and len(rows) == len(ids)
    assert all(r["received_at"].endswith("+03:00") for r in rows)
    assert {r["uid"] for r in rows} == set(ids.values())
    assert {r["message_id"] for r in rows} >= {"<show-loop@example.test>"}
    code, out, _ = run(capsys, "journal", "--format", "json", *config)
    assert json.loads(out) == rows
    code, out, _ = run(
        capsys, "letter", "list", "--outcome", "no_reply", "--format", "json", *config
    )
    assert sorted(r["id"] for r in json.loads(out)) == [ids["loop"], ids["stranger"]]
    stranger = scenario.address(STRANGER)
    code, out, _ = run(capsys, "journal", "--sender", stranger.upper(), "--format", "json", *config)
    assert [r["id"] for r in json.loads(out)] == [ids["stranger"]]
    today = dt.datetime.now(MOSCOW).date()
    for options, count in (
        (["--since", today.isoformat()], len(ids)),
        (["--until", today.isoformat()], len(ids)),  # the whole local day
        (["--until", (today - dt.timedelta(days=1)).isoformat()], 0),
        (["--since", (today + dt.timedelta(days=1)).isoformat()], 0),
        (["--since", "1d", "--outcome", "success"], 1),
    ):
        code, out, _ = run(capsys, "letter", "list", *options, "--format", "json", *config)
        assert (code, len(json.loads(out))) == (0, count), options
    code, out, _ = run(capsys, "letter", "list", "--format", "table", *config)
    assert "message_id" in out.splitlines()[0] and "<show-loop@example.test>" in out

    code, _, err = run(capsys, "letter", "list", "--deferred", "--sender", stranger, *config)
    assert code == 2 and "drop the other filters" in err

    # An unknown outcome is refused with the valid ones.
    with pytest.raises(SystemExit) as refused:
        main(["journal", "--outcome", "succes", *config])
    assert refused.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'succes'" in err and "'success'" in err and "'no_reply'" in err


def test_dates_are_read_in_the_configured_zone() -> None:
    now = dt.datetime(2026, 12, 7, 12, tzinfo=dt.UTC)
    day = date_argument("2026-12-07")
    assert day.start(MOSCOW, now) == dt.datetime(2026, 12, 6, 21, tzinfo=dt.UTC)
    assert day.end(MOSCOW, now) == dt.datetime(2026, 12, 7, 20, 59, 59, 999999, tzinfo=dt.UTC)
    moment = date_argument("2026-12-07T10:00")
    assert moment.start(MOSCOW, now) == moment.end(MOSCOW, now)
    assert moment.start(MOSCOW, now) == dt.datetime(2026, 12, 7, 7, tzinfo=dt.UTC)
    assert date_argument("2026-12-07T10:00+00:00").start(MOSCOW, now).hour == 10
    assert date_argument("3d").start(MOSCOW, now) == now - dt.timedelta(days=3)
