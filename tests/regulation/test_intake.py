"""Steps 1-3 and the outcomes of the intake: loop guard, sender gate, auth, routes, reply cap."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from mailbot.config.schema import LimitsConfig, SenderAuthConfig
from mailbot.regulation.decision import Disposition, Outcome, Stage
from mailbot.regulation.loop_guard import InMemoryReplyCounter
from mailbot.regulation.routes import RulesError, load_routes
from mailbot.regulation.sender_auth import check_authentication_results
from mailbot.regulation.sender_gate import (
    DirectoryEntry,
    InMemorySenderDirectory,
    SubscriberCandidate,
)
from testkit import letters as L  # noqa: N812

from .helpers import NOW, SETTINGS, hit_rules, run

GOOD = L.certificate_zip("Иванов.cer")


def good_letter(**kwargs: object) -> bytes:
    return L.plain_zip_letter("Иванов.zip", GOOD, **kwargs)


# --- step 1: loop guard ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "sender", "rule"),
    [
        ([("Auto-Submitted", "auto-replied")], L.TRUSTED_SENDER, "auto_submitted"),
        ([("Auto-Submitted", "auto-generated; type=ooo")], L.TRUSTED_SENDER, "auto_submitted"),
        ([("Precedence", "bulk")], L.TRUSTED_SENDER, "precedence"),
        ([("Precedence", "JUNK")], L.TRUSTED_SENDER, "precedence"),
        ([("Precedence", "list")], L.TRUSTED_SENDER, "precedence"),
        ([("Precedence", "auto_reply")], L.TRUSTED_SENDER, "precedence"),
        ([("Return-Path", "<>")], L.TRUSTED_SENDER, "null_return_path"),
        ([], "MAILER-DAEMON@clinic.example", "robot_sender"),
        ([], "postmaster@clinic.example", "robot_sender"),
        ([], "Reestrin@Fund.Example", "own_address"),
        ([("X-Mailbot-Loop", "mailbot")], L.TRUSTED_SENDER, "loop_marker"),
    ],
)
def test_loop_guard_rules(headers: list[tuple[str, str]], sender: str, rule: str) -> None:
    decision = run(good_letter(headers=headers, sender=sender), trusted=[sender])
    assert decision.outcome is Outcome.NO_REPLY
    assert decision.stage is Stage.LOOP_GUARD
    assert decision.disposition is Disposition.FILE_AWAY
    assert hit_rules(decision)[-1] == rule
    assert decision.reply_to is None


def test_auto_submitted_no_is_answered() -> None:
    decision = run(good_letter(headers=[("Auto-Submitted", "no"), ("Precedence", "normal")]))
    assert decision.accepted


def test_delivery_report_gets_no_reply() -> None:
    decision = run(L.delivery_report(subject="ADD_CERT"), trusted=["MAILER-DAEMON@mx.example"])
    assert decision.outcome is Outcome.NO_REPLY and "delivery_report" in hit_rules(decision)


def test_our_own_reply_coming_back_is_not_answered() -> None:
    from mailbot.mail.letter import parse_letter
    from mailbot.mail.reply import ReplySettings, build_reply

    original = parse_letter(good_letter(subject="what?"), 10**6)
    reply = build_reply(
        original, L.TRUSTED_SENDER, "текст", ReplySettings(L.FUND_ADDRESS, "mailbot"), NOW
    )
    bounced = run(reply.as_bytes(), trusted=[L.FUND_ADDRESS])
    assert bounced.outcome is Outcome.NO_REPLY
    assert {"auto_submitted", "own_address", "loop_marker"} <= set(hit_rules(bounced))


def test_reply_cap_per_sender_per_day() -> None:
    counter = InMemoryReplyCounter()
    day = NOW.date()
    for _ in range(19):
        counter.record(L.TRUSTED_SENDER.upper(), day)
    assert run(good_letter(), counter=counter).accepted
    counter.record(L.TRUSTED_SENDER, day)
    capped = run(good_letter(), counter=counter)
    # Over the cap the letter is still checked in full; only the reply is withheld.
    assert capped.accepted and capped.reply_withheld
    assert capped.reply_to is None and capped.sender == L.TRUSTED_SENDER
    assert "reply_cap" in hit_rules(capped)
    no_cer = run(L.no_attachment_letter(), counter=counter)
    assert (no_cer.outcome, no_cer.reply_withheld, no_cer.reply_to) == (Outcome.NO_CER, True, None)
    other_day = InMemoryReplyCounter({(L.TRUSTED_SENDER, day.replace(day=2)): 50})
    assert not run(good_letter(), counter=other_day).reply_withheld
    custom = dataclasses.replace(SETTINGS, limits=LimitsConfig(replies_per_sender_per_day=1))
    counter_one = InMemoryReplyCounter({(L.TRUSTED_SENDER, day): 1})
    assert run(good_letter(), counter=counter_one, settings=custom).reply_withheld


# --- step 2: sender gate ---------------------------------------------------------------------


def test_unknown_sender_gets_no_reply() -> None:
    decision = run(good_letter(sender="stranger@evil.example"))
    assert decision.outcome is Outcome.NO_REPLY and decision.stage is Stage.SENDER_GATE
    assert decision.reply_to is None


def test_unknown_sender_with_unknown_subject_gets_no_reply() -> None:
    decision = run(good_letter(sender="stranger@evil.example", subject="hello"))
    assert decision.outcome is Outcome.NO_REPLY


@pytest.mark.parametrize(
    ("subscriber_active", "organisation_active"), [(False, True), (True, False), (False, False)]
)
def test_inactive_subscriber_or_organisation(
    subscriber_active: bool, organisation_active: bool
) -> None:
    entry = DirectoryEntry(
        L.TRUSTED_SENDER, SubscriberCandidate("s1", "org"), subscriber_active, organisation_active
    )
    decision = run(good_letter(), directory=InMemorySenderDirectory([entry]))
    assert decision.outcome is Outcome.NO_REPLY and decision.stage is Stage.SENDER_GATE


def test_sender_compared_case_insensitively_and_reply_goes_to_from() -> None:
    raw = good_letter(
        sender="Ivanov@Clinic.EXAMPLE",
        headers=[("Reply-To", "attacker@evil.example"), ("Sender", "other@evil.example")],
    )
    decision = run(raw, trusted=["ivanov@clinic.example"])
    assert decision.accepted
    assert decision.reply_to == "Ivanov@Clinic.EXAMPLE"
    assert [s.subscriber_id for s in decision.subscribers] == ["cli:ivanov@clinic.example"]


def test_several_subscribers_share_one_address() -> None:
    entries = [
        DirectoryEntry(L.TRUSTED_SENDER, SubscriberCandidate("s1", "org", snils="11223344595")),
        DirectoryEntry(L.TRUSTED_SENDER, SubscriberCandidate("s2", "org")),
    ]
    decision = run(good_letter(), directory=InMemorySenderDirectory(entries))
    assert [s.subscriber_id for s in decision.subscribers] == ["s1", "s2"]


def test_display_name_cannot_smuggle_a_trusted_address() -> None:
    raw = good_letter().replace(
        f"<{L.TRUSTED_SENDER}>".encode(), f'"{L.TRUSTED_SENDER}" <evil@x.example>'.encode(), 1
    )
    assert run(raw).outcome is Outcome.NO_REPLY


@pytest.mark.parametrize(
    "from_value",
    [
        f"{L.TRUSTED_SENDER}, other@clinic.example",
        "undisclosed-recipients:;",
        "",
        "not an address",
    ],
)
def test_exactly_one_well_formed_from_address(from_value: str) -> None:
    raw = good_letter().replace(
        f"<{L.TRUSTED_SENDER}>".encode(), b"", 1
    )  # drop the address, then set our own From
    _head, _, rest = raw.partition(b"\r\n")
    decision = run(f"From: {from_value}".encode() + b"\r\n" + rest)
    assert decision.outcome is Outcome.NO_REPLY and decision.stage is Stage.SENDER_GATE


def test_two_from_headers() -> None:
    raw = good_letter(headers=[("From", L.TRUSTED_SENDER)])
    decision = run(raw)
    assert decision.outcome is Outcome.NO_REPLY and "single_from" in hit_rules(decision)


# --- step 2: Authentication-Results ----------------------------------------------------------

AUTH = SenderAuthConfig(
    require_authentication_results=True, trusted_authserv_ids=("mx.fund.example",)
)
AUTH_SETTINGS = dataclasses.replace(SETTINGS, sender_auth=AUTH)
DOMAIN = "clinic.example"
FROM = "header.from=clinic.example"


@pytest.mark.parametrize(
    ("headers", "passed"),
    [
        (["mx.fund.example; dmarc=pass header.from=clinic.example"], True),
        (["mx.fund.example; spf=pass smtp.mailfrom=bounce@mail.clinic.example"], True),
        (["mx.fund.example; dkim=pass header.d=clinic.example header.s=k1"], True),
        (["mx.fund.example; dkim=pass header.d=other.example"], False),
        (["mx.fund.example; spf=pass smtp.mailfrom=x@other.example"], False),
        (["mx.fund.example; dkim=fail header.d=clinic.example"], False),
        ([f"mx.fund.example; dmarc=fail {FROM}; dkim=pass header.d=clinic.example"], False),
        ([f"mx.fund.example; dmarc=pass {FROM}; dmarc=fail {FROM}"], False),
        ([f"evil.example; dmarc=pass {FROM}"], False),
        (["mx.fund.example; dkim=fail", f"evil.example; dmarc=pass {FROM}"], False),
        (["mx.fund.example; dmarc=pass header.from=clinic.example",
          "mx.fund.example; dmarc=fail header.from=clinic.example"], True),
        (["mx.fund.example; (((broken"], False),
        ([], False),
    ],
)  # fmt: skip
def test_authentication_results(headers: list[str], passed: bool) -> None:
    result = check_authentication_results(headers, AUTH.trusted_authserv_ids, DOMAIN)
    assert result.passed is passed, result.detail


def test_gate_requires_authentication_when_configured() -> None:
    unauthenticated = run(good_letter(), settings=AUTH_SETTINGS)
    assert unauthenticated.outcome is Outcome.NO_REPLY
    assert "authentication_results" in hit_rules(unauthenticated)
    forged = good_letter(
        headers=[("Authentication-Results", "evil.example; dmarc=pass header.from=clinic.example")]
    )
    assert run(forged, settings=AUTH_SETTINGS).outcome is Outcome.NO_REPLY
    ours = good_letter(
        headers=[
            ("Authentication-Results", "mx.fund.example; dmarc=pass header.from=clinic.example")
        ]
    )
    assert run(ours, settings=AUTH_SETTINGS).accepted


# --- step 3: routes --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "subject", ["ADD_CERT", "add_cert", "  Add_Cert  ", "=?utf-8?B?QUREX0NFUlQ=?="]
)
def test_add_cert_subject_variants(subject: str) -> None:
    raw = good_letter().replace(b"Subject: ADD_CERT", b"Subject: " + subject.encode())
    decision = run(raw)
    assert decision.accepted and decision.route is not None and decision.route.name == "add_cert"


@pytest.mark.parametrize("subject", ["Re: ADD_CERT", "ADD_CERT please", "Сертификат", ""])
def test_unknown_subject_reply(subject: str) -> None:
    decision = run(good_letter(subject=subject))
    assert decision.outcome is Outcome.UNKNOWN_SUBJECT
    assert decision.template_values == {"subject": subject.strip()}
    assert decision.reply_to == L.TRUSTED_SENDER


def write_rules(tmp_path: Path, text: str) -> Path:
    (tmp_path / "routes.toml").write_text(text, encoding="utf-8")
    return tmp_path


def test_leave_route_keeps_letters_untouched_whoever_sent_them(tmp_path: Path) -> None:
    routes = load_routes(write_rules(tmp_path, """
[[route]]
name = "registries"
subject_regex = "REESTR_[0-9]{6}"
action = "leave"

[[route]]
name = "add_cert"
subject = "ADD_CERT"
action = "add_cert"
strip_reply_prefixes = true
"""))  # fmt: skip
    for sender in ("stranger@x.example", "MAILER-DAEMON@x.example", L.TRUSTED_SENDER):
        decision = run(good_letter(subject="reestr_202501", sender=sender), routes=routes)
        assert decision.disposition is Disposition.LEAVE and decision.outcome is Outcome.NO_REPLY
    assert run(good_letter(subject="reestr_2025"), routes=routes).outcome is Outcome.UNKNOWN_SUBJECT
    assert run(good_letter(subject="Re: Fwd: ADD_CERT"), routes=routes).accepted
    assert run(good_letter(subject="Ответ: ADD_CERT"), routes=routes).accepted


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('[[route]]\nname="a"\nsubject="X"\naction="delete"', "'action' must be one of"),
        ('[[route]]\nname="a"\nsubject="X"\nsubject_regex="X"\naction="leave"', "exactly one"),
        ('[[route]]\nname="a"\naction="leave"', "exactly one"),
        ('[[route]]\nname="a"\nsubject_regex="(["\naction="leave"', "not a valid regex"),
        ('[[route]]\nname="a"\nsubject="X"\naction="leave"\ncolour="red"', "unknown key 'colour'"),
        ('[[route]]\nsubject="X"\naction="leave"', "'name' must be"),
        ('[[route]]\nname="a"\nsubject="X"\naction="leave"\n[[route]]\nname="a"\nsubject="Y"\n'
         'action="leave"', "used more than once"),
        ('route = 1', "array of tables"),
        ('[[rule]]\nname="a"', "unknown top-level keys"),
        ('[[route', "cannot read"),
    ],
)  # fmt: skip
def test_route_table_validation(tmp_path: Path, text: str, problem: str) -> None:
    with pytest.raises(RulesError, match=problem):
        load_routes(write_rules(tmp_path, text))


def test_route_table_needs_files(tmp_path: Path) -> None:
    with pytest.raises(RulesError, match=r"no \*\.toml"):
        load_routes(tmp_path)
    with pytest.raises(RulesError, match="not a directory"):
        load_routes(tmp_path / "missing")


# --- outcomes of intake ----------------------------------------------------------------------


def test_outcome_pending_carries_what_the_handler_needs() -> None:
    decision = run(good_letter())
    assert decision.accepted and decision.outcome_key == "certificate_checks_pending"
    assert decision.sender == L.TRUSTED_SENDER and decision.subscribers
    assert decision.route is not None and decision.route.action == "add_cert"
    assert decision.certificate is not None and decision.certificate.zip_name == "Иванов.zip"
    assert [h.rule for h in decision.rule_hits][:2] == ["route:add_cert", "auto_submitted"]


def test_outcome_no_cer_and_invalid_files() -> None:
    assert run(L.no_attachment_letter()).outcome is Outcome.NO_CER
    empty_zip = L.build_zip([L.ZipEntry("readme.txt", b"x")])
    assert run(L.plain_zip_letter("a.zip", empty_zip)).outcome is Outcome.NO_CER
    parts = [L.part(GOOD, b'application/zip; name="a.zip"'), L.part(GOOD, b"application/zip")]
    two = L.letter(L.multipart("mixed", parts, "m"))
    decision = run(two)
    assert decision.outcome is Outcome.INVALID_FILES and decision.reply_to == L.TRUSTED_SENDER


def test_oversized_letter_is_decided_from_its_headers() -> None:
    small = dataclasses.replace(SETTINGS, limits=LimitsConfig(max_letter_bytes=500))
    decision = run(good_letter(), settings=small)
    assert decision.letter.oversized
    assert decision.outcome is Outcome.INVALID_FILES and "letter over 500" in decision.reason
    assert run(good_letter(sender="x@y.example"), settings=small).outcome is Outcome.NO_REPLY
    assert run(good_letter(subject="?"), settings=small).outcome is Outcome.UNKNOWN_SUBJECT


def test_letter_with_defects_is_still_decided() -> None:
    raw = (
        b"From: "
        + L.TRUSTED_SENDER.encode()
        + b"\r\nSubject: ADD_CERT\r\nContent-Type: multipart/mixed\r\n\r\nno boundary"
    )
    decision = run(raw)
    assert decision.letter.defects
    assert decision.outcome is Outcome.NO_CER


def test_rule_details_quoting_the_letter_are_bounded() -> None:
    from mailbot.regulation.decision import MAX_DETAIL_CHARS, RuleHit, Verdict

    hit = RuleHit("one_attachment", True, "x" * 100_000)
    assert len(hit.detail) < MAX_DETAIL_CHARS + 40
    assert hit.detail.endswith("[99000 more characters]")
    assert len(Verdict(reason="y" * 50_000).reason) < MAX_DETAIL_CHARS + 40
    assert RuleHit("r", True, "short").detail == "short"
