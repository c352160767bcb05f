"""``mailbot letter show``'s output: a letter's story as text or JSON.

The JSON shape (stable; dates ISO 8601 with their offset, in the configured zone)::

    {"id", "state", "outcome", "route", "attempts", "sender", "subscriber_id",
     "headers": {"from", "sender", "to", "subject", "date", "message_id", "in_reply_to"},
     "mailbox": {"name", "uidvalidity", "uid"}, "sha256", "received_at", "processed_at",
     "decision": {"stage", "rule", "reason"} | null,
     "rule_hits": [{"rule", "hit", "detail", "deciding"}, ...],
     "certificate": {"subject_cn", "snils" (masked), "serial", "issuer", "not_before",
                     "not_after", "thumbprint_sha1", "registered_id", "status",
                     "store_path"} | null,
     "quarantine": {"id", "status", "path", "decided_by", "decided_at", "reason"} | null,
     "reply": {"outbox_id", "message_id", "status", "attempts", "last_error", "created_at",
               "sent_at", "recipients", "headers": [[name, value], ...], "body"} | null,
     "followups": [{...as "reply"...}, ...]  (letters sent later: the quarantine's outcome),
     "no_reply": "why there is no reply" | null,
     "deferral": {...the journal's deferral record...} | null,
     "filed_to", "archive_path", "archive_problem"}

The text form quotes a stranger's headers: control characters are shown escaped,
so a letter cannot drive the administrator's terminal.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict
from typing import Any

from mailbot.app.letter_story import (
    CERTIFICATE_STAGE,
    FAILURE_STAGE,
    INSTALL_STAGE,
    SHOWN_HEADERS,
    LetterStory,
    SentReply,
)
from mailbot.display import terminal_text
from mailbot.regulation.decision import Stage

_STAGE_WORDS = {
    CERTIFICATE_STAGE: "the certificate checks",
    INSTALL_STAGE: "the certificate install",
    FAILURE_STAGE: "no rule (processing failed)",
    Stage.ROUTES: "the routes",
    Stage.LOOP_GUARD: "the loop guard",
    Stage.SENDER_GATE: "the sender gate",
    Stage.ATTACHMENTS: "the attachment checks",
}
_WIDTH = 15


def story_json(story: LetterStory) -> dict[str, Any]:
    """The story in the documented JSON shape (see the module's docstring)."""
    data = _jsonable(asdict(story))
    assert isinstance(data, dict)
    data["headers"] = {
        name.lower().replace("-", "_"): value for name, value in story.headers.items()
    }
    data["mailbox"] = {
        "name": data.pop("mailbox"),
        "uidvalidity": data.pop("uidvalidity"),
        "uid": data.pop("uid"),
    }
    data["rule_hits"] = data.pop("rules")
    return data


def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def render_story(story: LetterStory) -> str:
    """The story for people."""
    lines = [f"letter {story.id}: outcome {story.outcome or '-'}, state {story.state}"]
    for name in SHOWN_HEADERS:
        value = story.headers.get(name)
        if value is not None or name != "Sender":
            lines.append(_field(f"  {name}:", value))
    position = f"{story.mailbox}, UIDVALIDITY {_text(story.uidvalidity)}, UID {_text(story.uid)}"
    subscriber = f" (subscriber {story.subscriber_id})" if story.subscriber_id else ""
    lines += [
        _field("mailbox:", position),
        _field("received:", story.received_at),
        _field("processed:", story.processed_at),
        _field("attempts:", story.attempts),
        _field("route:", story.route),
        _field("sender:", f"{_text(story.sender)}{subscriber}"),
        "",
        _field("decided by:", _decision_text(story)),
        "rules, in order (> marks the deciding one):",
    ]
    width = max((len(r.rule) for r in story.rules), default=0)
    for rule in story.rules:
        mark = ">" if rule.deciding else " "
        verdict = "HIT " if rule.hit else "miss"
        line = f"  {mark} {verdict} {_text(rule.rule).ljust(width)}  {_text(rule.detail)}"
        lines.append(line.rstrip())
    if not story.rules:
        lines.append("  (none recorded)")
    lines += _certificate_lines(story)
    if story.quarantine is not None:
        q = story.quarantine
        decided = (
            f", decided by {q.decided_by} at {_text(q.decided_at)}: {q.reason or '-'}"
            if q.decided_by
            else ""
        )
        lines.append(_field("quarantine:", f"entry {q.id}, {q.status}{decided}, {q.path}"))
    if story.deferral is not None:
        d = story.deferral
        waited = f"since {_text(d.get('since'))}, {d.get('retries', 0)} retries"
        last = f"last {_text(d.get('last_try'))}: {_text(d.get('problem'))}"
        lines.append(_field("deferred:", f"{waited}, {last}"))
    lines.append("")
    lines += _reply_lines(story)
    for followup in story.followups:
        lines += _sent_lines("follow-up:", followup)
    lines += [
        "",
        _field("filed to:", story.filed_to or "(not filed yet)"),
        _field("archived copy:", story.archive_path),
    ]
    if story.archive_problem:
        lines.append(_field("", f"({story.archive_problem}: headers from the journal)"))
    return "\n".join(lines)


def _decision_text(story: LetterStory) -> str:
    decision = story.decision
    if decision is None:
        return "(no decision recorded)"
    who = _STAGE_WORDS.get(decision.stage, decision.stage)
    rule = f", rule {decision.rule}" if decision.rule else ""
    if decision.stage == Stage.ROUTES and decision.rule is None:
        rule = ", no route matched"
    return f"{who}{rule}: {decision.reason}"


def _certificate_lines(story: LetterStory) -> list[str]:
    cert = story.certificate
    if cert is None:
        return []
    lines = [
        "certificate:",
        _field("  subject CN:", cert.subject_cn),
        _field("  SNILS:", cert.snils),
        _field("  serial:", cert.serial),
        _field("  issuer:", cert.issuer),
        _field("  valid:", f"{_text(cert.not_before)} .. {_text(cert.not_after)}"),
        _field("  thumbprint:", cert.thumbprint_sha1),
    ]
    if cert.registered_id is not None:
        registered = f"certificate {cert.registered_id}, {cert.status}, {cert.store_path}"
        lines.append(_field("  registered:", registered))
    return lines


def _reply_lines(story: LetterStory) -> list[str]:
    if story.reply is None:
        return [_field("reply:", f"none: {story.no_reply}")]
    return _sent_lines("reply:", story.reply)


def _sent_lines(label: str, reply: SentReply) -> list[str]:
    """A letter mailbot queued: its delivery state, then its headers and text as queued."""
    when = f" at {_text(reply.sent_at)}" if reply.sent_at else ""
    error = f", last error: {reply.last_error}" if reply.last_error else ""
    delivery = f"(outbox {reply.outbox_id}, attempts {reply.attempts}{error})"
    return [
        _field(label, f"{reply.status}{when} {delivery}, queued {_text(reply.created_at)}"),
        "  --- as queued ---",
        *(f"  {_text(name)}: {_text(value)}" for name, value in reply.headers),
        "",
        *(f"  {_text(line)}" for line in reply.body.rstrip("\n").split("\n")),
        "  ---",
    ]


def _field(label: str, value: object) -> str:
    return f"{label.ljust(_WIDTH)}{_text(value)}".rstrip()


def _text(value: object) -> str:
    """A value for the terminal: ``-`` for nothing, times with their offset, controls escaped."""
    if value is None or value == "":
        return "-"
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    return terminal_text(str(value).replace("\n", " | "))
