"""What happened to one letter: the journal row told as a story, for ``mailbot letter show``.

One read-only assembly from everything that remembers the letter: the journal
row (state, outcome, rule hits, the evidence in ``detail``), the archived raw
letter (its headers), the outbox (the reply as queued and sent), the
certificate and quarantine tables. Moments are given in the configured time
zone; a SNILS only ever with its last two digits.

**The deciding rule.** The journal keeps every rule hit in evaluation order;
which one decided is read back from the stage the journal recorded:

* the certificate checks ran (``detail.certificate``): their chain stops at its
  first deciding step, so the *last* hit decided (``snils_matches`` for a
  registration); ``install_error`` was decided by the install itself (no rule);
* otherwise the intake's stage (``detail.intake.stage``) decided: for ``routes``
  the matching route of a ``leave`` letter, or no rule at all (no route matched:
  ``unknown_subject``); for the loop guard, the sender gate and the attachment
  checks the first hit that matched (their rules match what stops a letter),
  route hits and ``reply_cap`` (it withholds the reply only) aside;
* a poison letter (``failed``) was decided by no rule: the failure says why.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailbot.app.states import LetterState, NoVerdict
from mailbot.directory.models import (
    CertificateRecord,
    LetterRecord,
    OutboxMessage,
    QuarantinedCertificate,
)
from mailbot.log import mask_identifier
from mailbot.mail.letter import MAX_HEADER_BYTES, parse_letter
from mailbot.regulation.decision import Outcome, Stage

#: The stage of a decision taken by the certificate checks (steps 5-9) and by the install.
CERTIFICATE_STAGE = "certificate"
INSTALL_STAGE = "install"
#: A poison letter: processing kept failing, no rule decided.
FAILURE_STAGE = "processing"
#: Headers of the letter shown, in this order (``Sender`` only when present).
SHOWN_HEADERS = ("From", "Sender", "To", "Subject", "Date", "Message-ID", "In-Reply-To")
_NOT_DECIDING = ("reply_cap",)
_ROUTE_PREFIX = "route:"


class UnknownLetter(LookupError):
    """No journal row answers to the given id or Message-ID (or several do)."""


@dataclass(frozen=True)
class RuleStep:
    """One journaled rule hit, and whether it is the one that decided."""

    rule: str
    hit: bool
    detail: str
    deciding: bool = False


@dataclass(frozen=True)
class Decision:
    """Which stage (and rule, when a rule did) decided the letter's outcome, and why."""

    stage: str
    rule: str | None
    reason: str


@dataclass(frozen=True)
class CertificateFacts:
    """The certificate the letter carried (SNILS masked), and its registration if any."""

    subject_cn: str | None
    snils: str | None
    serial: str | None
    issuer: str | None
    not_before: dt.datetime | None
    not_after: dt.datetime | None
    thumbprint_sha1: str | None
    registered_id: int | None = None
    status: str | None = None
    store_path: str | None = None


@dataclass(frozen=True)
class QuarantineFacts:
    """The quarantine row of the letter's certificate (unknown CA)."""

    id: int
    status: str
    path: str
    decided_by: str | None
    decided_at: dt.datetime | None
    reason: str | None


@dataclass(frozen=True)
class SentReply:
    """The reply as queued in the outbox: its delivery state and its exact text."""

    outbox_id: int
    message_id: str
    status: str
    attempts: int
    last_error: str | None
    created_at: dt.datetime
    sent_at: dt.datetime | None
    recipients: tuple[str, ...]
    headers: tuple[tuple[str, str], ...]
    body: str


@dataclass(frozen=True)
class LetterStory:
    """Everything known about one journaled letter (times in the configured zone)."""

    id: int
    #: Header name to decoded value, from the archived letter (the journal's when it is gone).
    headers: dict[str, str | None]
    mailbox: str
    uidvalidity: int | None
    uid: int | None
    sha256: str
    sender: str | None
    received_at: dt.datetime
    processed_at: dt.datetime | None
    state: str
    outcome: str | None
    route: str | None
    attempts: int
    subscriber_id: int | None
    decision: Decision | None
    rules: tuple[RuleStep, ...]
    certificate: CertificateFacts | None
    quarantine: QuarantineFacts | None
    reply: SentReply | None
    #: Letters sent later about this one (the outcome of its quarantined certificate).
    followups: tuple[SentReply, ...]
    #: Why there is no reply (None when there is one).
    no_reply: str | None
    #: What a deferred letter waits for (the journal's ``detail.deferral``), times local.
    deferral: dict[str, Any] | None
    filed_to: str | None
    archive_path: str | None
    #: Why the archived letter could not be read (its headers then come from the journal).
    archive_problem: str | None


def find_letter(session: Session, key: str) -> LetterRecord:
    """The journal row of letter *key*: a journal id, or a Message-ID (angle brackets optional)."""
    key = key.strip()
    if key.isdigit():
        row = session.get(LetterRecord, int(key))
        if row is None:
            raise UnknownLetter(f"no letter {key} in the journal")
        return row
    message_id = key if key.startswith("<") else f"<{key}>"
    rows = session.scalars(
        select(LetterRecord).where(LetterRecord.message_id == message_id).order_by(LetterRecord.id)
    ).all()
    if not rows:
        raise UnknownLetter(f"no letter with Message-ID {message_id} in the journal")
    if len(rows) > 1:
        ids = ", ".join(str(r.id) for r in rows)
        raise UnknownLetter(f"Message-ID {message_id} names letters {ids}: give one id")
    return rows[0]


def letter_story(session: Session, key: str, timezone: str) -> LetterStory:
    """The story of letter *key* (see :func:`find_letter`); raises :class:`UnknownLetter`."""
    zone = ZoneInfo(timezone)
    row = find_letter(session, key)
    detail: Mapping[str, Any] = row.detail or {}
    headers, archive_problem = _headers(row)
    decision, deciding = _decision(row, detail)
    rules = tuple(
        RuleStep(str(h.get("rule", "")), bool(h.get("hit")), str(h.get("detail", "")))
        for h in _hit_dicts(row.rule_hits)
    )
    if deciding is not None:
        rules = (*rules[:deciding], replace(rules[deciding], deciding=True), *rules[deciding + 1 :])
    sent = _outbox(session, row.id, zone)
    reply = next((message for kind, message in reversed(sent) if kind == "reply"), None)
    return LetterStory(
        id=row.id,
        headers=headers,
        mailbox=row.mailbox,
        uidvalidity=row.uidvalidity,
        uid=row.uid,
        sha256=row.sha256,
        sender=row.sender,
        received_at=row.received_at.astimezone(zone),
        processed_at=_local(row.processed_at, zone),
        state=row.state,
        outcome=row.outcome,
        route=row.route,
        attempts=row.attempts,
        subscriber_id=row.subscriber_id,
        decision=decision,
        rules=rules,
        certificate=_certificate(session, row, detail, zone),
        quarantine=_quarantine(session, row.id, zone),
        reply=reply,
        followups=tuple(message for kind, message in sent if kind == "followup"),
        no_reply=None if reply is not None else _why_no_reply(row, detail, rules),
        deferral=_deferral(detail, zone),
        filed_to=row.filed_to,
        archive_path=row.archive_path,
        archive_problem=archive_problem,
    )


def _local(moment: dt.datetime | None, zone: ZoneInfo) -> dt.datetime | None:
    return moment.astimezone(zone) if moment is not None else None


def _local_text(text: object, zone: ZoneInfo) -> object:
    """An ISO time the journal stored as text, in *zone*; anything else unchanged."""
    if not isinstance(text, str):
        return text
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        return text
    if moment.tzinfo is None:
        return text
    return moment.astimezone(zone)


def _hit_dicts(hits: object) -> list[Mapping[str, Any]]:
    return [h for h in hits if isinstance(h, Mapping)] if isinstance(hits, list) else []


def _headers(row: LetterRecord) -> tuple[dict[str, str | None], str | None]:
    """The shown headers from the archived letter, or the journal's few when it is unreadable."""
    problem = None
    raw = b""
    if not row.archive_path:
        problem = "no archived copy"
    else:
        try:
            with Path(row.archive_path).open("rb") as archived:
                # The header section is all that is shown; a longer one is not read anyway.
                raw = archived.read(MAX_HEADER_BYTES + 4)
        except OSError as exc:
            problem = f"archived copy unreadable: {exc.strerror or exc}"
    if problem is not None:
        fallback = {"From": row.sender, "Subject": row.subject, "Message-ID": row.message_id}
        return {name: fallback.get(name) for name in SHOWN_HEADERS}, problem
    # Only the header section is parsed (a limit of 0 bytes): bounded, and never raises.
    letter = parse_letter(raw, 0)
    headers: dict[str, str | None] = {}
    for name in SHOWN_HEADERS:
        values = letter.header_values(name)
        headers[name] = "\n".join(values) if values else None
    return headers, None


def _decision(row: LetterRecord, detail: Mapping[str, Any]) -> tuple[Decision | None, int | None]:
    """The decision and the index of the deciding rule hit (see the module's docstring)."""
    hits = _hit_dicts(row.rule_hits)
    if row.state == LetterState.FAILED:
        return Decision(FAILURE_STAGE, None, str(detail.get("failure", ""))), None
    certificate = detail.get("certificate")
    if isinstance(certificate, Mapping):
        if row.outcome == Outcome.INSTALL_ERROR:
            return Decision(INSTALL_STAGE, None, _install_reason(detail.get("install"))), None
        index = len(hits) - 1 if hits else None
        rule = str(hits[index].get("rule")) if index is not None else None
        return Decision(CERTIFICATE_STAGE, rule, str(certificate.get("reason", ""))), index
    intake = detail.get("intake")
    if not isinstance(intake, Mapping):
        return None, None
    stage = str(intake.get("stage", ""))
    reason = str(intake.get("reason", ""))
    if stage == Stage.ROUTES:
        index = next(
            (i for i, h in enumerate(hits)
             if h.get("hit") and str(h.get("rule", "")).startswith(_ROUTE_PREFIX)),
            None,
        ) if row.outcome == NoVerdict.LEAVE else None  # fmt: skip
    else:
        index = next(
            (i for i, h in enumerate(hits)
             if h.get("hit") and not str(h.get("rule", "")).startswith(_ROUTE_PREFIX)
             and h.get("rule") not in _NOT_DECIDING),
            None,
        )  # fmt: skip
    rule = str(hits[index].get("rule")) if index is not None else None
    return Decision(stage, rule, reason), index


def _install_reason(install: object) -> str:
    if isinstance(install, Mapping):
        return "; ".join(str(v) for v in (install.get("error"), install.get("os_error")) if v)
    return str(install or "")


def _certificate(
    session: Session, row: LetterRecord, detail: Mapping[str, Any], zone: ZoneInfo
) -> CertificateFacts | None:
    """The journal's evidence on the certificate, completed by its registration when it has one."""
    seen = detail.get("certificate")
    evidence: Mapping[str, Any] = seen if isinstance(seen, Mapping) else {}
    record = session.get(CertificateRecord, row.certificate_id) if row.certificate_id else None
    if not evidence.get("thumbprint_sha1") and record is None:
        return None

    def moment(key: str, registered: dt.datetime | None) -> dt.datetime | None:
        if registered is not None:
            return registered.astimezone(zone)
        value = _local_text(evidence.get(key), zone)
        return value if isinstance(value, dt.datetime) else None

    # The journal keeps the SNILS masked already; the registration keeps it whole.
    snils = (
        mask_identifier(record.snils) or None
        if record is not None and record.snils
        else evidence.get("snils")
    )
    return CertificateFacts(
        subject_cn=record.subject_cn if record is not None else evidence.get("subject_cn"),
        snils=str(snils) if snils else None,
        serial=record.serial if record is not None else evidence.get("serial"),
        issuer=record.issuer_dn if record is not None else evidence.get("issuer"),
        not_before=moment("not_before", record.not_before if record is not None else None),
        not_after=moment("not_after", record.not_after if record is not None else None),
        thumbprint_sha1=(
            record.thumbprint_sha1 if record is not None else evidence.get("thumbprint_sha1")
        ),
        registered_id=record.id if record is not None else None,
        status=record.status if record is not None else None,
        store_path=record.store_path if record is not None else None,
    )


def _quarantine(session: Session, letter_id: int, zone: ZoneInfo) -> QuarantineFacts | None:
    row = session.scalars(
        select(QuarantinedCertificate)
        .where(QuarantinedCertificate.letter_id == letter_id)
        .order_by(QuarantinedCertificate.id.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    return QuarantineFacts(row.id, row.status, row.path, row.decided_by,
                           _local(row.decided_at, zone), row.reason)  # fmt: skip


def _outbox(session: Session, letter_id: int, zone: ZoneInfo) -> list[tuple[str, SentReply]]:
    """The letter's replies and follow-ups in the outbox, oldest first, as queued."""
    rows = session.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.letter_id == letter_id, OutboxMessage.kind.in_(("reply", "followup")))
        .order_by(OutboxMessage.id)
    ).all()
    return [(row.kind, _sent(row, zone)) for row in rows]


def _sent(row: OutboxMessage, zone: ZoneInfo) -> SentReply:
    message = BytesParser(policy=policy.default).parsebytes(row.raw)
    assert isinstance(message, EmailMessage)
    return SentReply(
        outbox_id=row.id,
        message_id=row.message_id,
        status=row.status,
        attempts=row.attempts,
        last_error=row.last_error,
        created_at=row.created_at.astimezone(zone),
        sent_at=_local(row.sent_at, zone),
        recipients=tuple(str(r) for r in row.recipients or ()),
        headers=tuple((name, str(value)) for name, value in message.items()),
        body=_text_body(message),
    )


def _text_body(message: EmailMessage) -> str:
    """The decoded text of a reply (mailbot writes one UTF-8 text/plain part)."""
    part = message.get_body(preferencelist=("plain",))
    if part is None:
        return ""
    content = part.get_content()
    text = content if isinstance(content, str) else content.decode("utf-8", "replace")
    return text.replace("\r\n", "\n")  # the wire's line ends are no part of the text


def _why_no_reply(row: LetterRecord, detail: Mapping[str, Any], rules: Sequence[RuleStep]) -> str:
    """Why the outbox holds no reply to this letter."""
    intake = detail.get("intake")
    reason = str(intake.get("reason", "")) if isinstance(intake, Mapping) else ""
    stage = str(intake.get("stage", "")) if isinstance(intake, Mapping) else ""
    if row.state == LetterState.CLAIMED:
        return "processing has not finished (state claimed)"
    if row.state == LetterState.FAILED:
        return f"processing failed (a poison letter): {detail.get('failure', '')}"
    if row.state == LetterState.DEFERRED:
        deferral = detail.get("deferral")
        problem = deferral.get("problem", "") if isinstance(deferral, Mapping) else ""
        return f"deferred: waiting for a CRL ({problem}); the reply follows the decision"
    if row.outcome == NoVerdict.LEAVE:
        return f"left for another process: {reason}"
    if row.outcome == Outcome.NO_REPLY:
        return f"no reply by the {stage.replace('_', ' ')}: {reason}"
    withheld = detail.get("reply")
    if isinstance(withheld, str) and withheld.startswith("withheld"):
        cap = next((r.detail for r in rules if r.rule == "reply_cap" and r.hit), "")
        return f"reply {withheld}" + (f" ({cap})" if cap else "")
    return "no reply was queued"


def _deferral(detail: Mapping[str, Any], zone: ZoneInfo) -> dict[str, Any] | None:
    deferral = detail.get("deferral")
    if not isinstance(deferral, Mapping):
        return None
    return {key: _local_text(value, zone) for key, value in deferral.items()}
