"""Steps 1-4 chained into one decision per letter.

Order: the route is looked up first, because letters of the fund's other
processes (``leave`` routes) are theirs whoever sent them and must stay in the
mailbox untouched. Then, for everything else: loop guard (step 1), sender gate
(step 2), the per-sender reply cap (it only marks the reply as withheld), route
or ``unknown_subject`` (step 3), attachments (step 4). The checks are pure;
the directory and the reply counter are the only things consulted, through
their protocols.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from mailbot.config.schema import Config, LimitsConfig, SenderAuthConfig
from mailbot.log import bind_letter, get_logger
from mailbot.mail.attachments import find_attachments
from mailbot.mail.letter import Letter, parse_letter
from mailbot.mail.ziparchive import CertificateFile
from mailbot.regulation.attachment_rules import check_attachments
from mailbot.regulation.decision import (
    CERTIFICATE_CHECKS_PENDING,
    Disposition,
    Outcome,
    RuleHit,
    RuleLog,
    Stage,
    Verdict,
)
from mailbot.regulation.loop_guard import (
    LoopGuardSettings,
    ReplyCounter,
    check_loop,
    check_reply_cap,
)
from mailbot.regulation.routes import Route, RouteTable, normalize_subject
from mailbot.regulation.sender_gate import (
    SenderDirectory,
    SubscriberCandidate,
    check_sender,
    single_sender,
)

log = get_logger(__name__)


@dataclass(frozen=True)
class IntakeSettings:
    """The parts of the configuration the intake reads."""

    limits: LimitsConfig
    sender_auth: SenderAuthConfig
    own_address: str
    instance: str
    timezone: str

    @classmethod
    def from_config(cls, config: Config) -> IntakeSettings:
        """Pick the intake's settings out of the whole configuration."""
        return cls(
            limits=config.limits,
            sender_auth=config.sender_auth,
            own_address=config.smtp.from_address,
            instance=config.general.instance_name,
            timezone=config.general.timezone,
        )


@dataclass(frozen=True)
class IntakeDecision:
    """Everything decided about one letter before the certificate checks.

    ``outcome is None`` means the letter passed steps 1-4: ``route``,
    ``sender``, ``subscribers`` and ``certificate`` are then set, and the route's
    handler (ADD_CERT: steps 5-12) takes over.
    """

    letter: Letter
    stage: Stage
    outcome: Outcome | None
    disposition: Disposition
    reason: str
    rule_hits: tuple[RuleHit, ...]
    route: Route | None = None
    #: The trusted From address (as written in the letter) once the gate passed.
    sender: str | None = None
    subscribers: tuple[SubscriberCandidate, ...] = ()
    certificate: CertificateFile | None = None
    #: Values for the reply template (``unknown_subject`` takes the subject).
    template_values: dict[str, str] = field(default_factory=dict)
    #: The sender reached the daily reply cap: every check and every admin-side
    #: effect still happens, only the reply is not sent.
    reply_withheld: bool = False

    @property
    def accepted(self) -> bool:
        """Whether the letter passed intake and goes to its handler."""
        return self.outcome is None

    @property
    def outcome_key(self) -> str:
        """The reported outcome: a template key, ``no_reply`` or ``certificate_checks_pending``."""
        return self.outcome.value if self.outcome is not None else CERTIFICATE_CHECKS_PENDING

    @property
    def reply_to(self) -> str | None:
        """Where the reply goes: only ever the trusted From address, only if a reply is due."""
        if self.sender is None or self.reply_withheld:
            return None
        if self.outcome is not None and not self.outcome.has_reply:
            return None
        return self.sender


def decide(
    raw: bytes,
    *,
    settings: IntakeSettings,
    routes: RouteTable,
    directory: SenderDirectory,
    reply_counter: ReplyCounter,
    now: datetime,
    declared_size: int | None = None,
) -> IntakeDecision:
    """Decide steps 1-4 for the raw letter *raw*; never raises on any input."""
    letter = parse_letter(raw, settings.limits.max_letter_bytes, declared_size)
    with bind_letter(message_id=letter.message_id, size=letter.size):
        decision = _decide(letter, settings, routes, directory, reply_counter, now)
        log.info(
            "intake decision",
            stage=decision.stage.value,
            outcome=decision.outcome_key,
            disposition=decision.disposition.value,
            reason=decision.reason,
            route=decision.route.name if decision.route else None,
            rule_hits=[h.as_dict() for h in decision.rule_hits],
        )
        return decision


def _decide(
    letter: Letter,
    settings: IntakeSettings,
    routes: RouteTable,
    directory: SenderDirectory,
    reply_counter: ReplyCounter,
    now: datetime,
) -> IntakeDecision:
    rules = RuleLog()
    match = routes.match(letter.subject)
    rules.hits.extend(match.hits)
    route = match.route

    def ended(stage: Stage, verdict: Verdict, **extra: object) -> IntakeDecision:
        assert verdict.outcome is not None
        return IntakeDecision(
            letter=letter,
            stage=stage,
            outcome=verdict.outcome,
            disposition=verdict.disposition,
            reason=verdict.reason,
            rule_hits=tuple(rules.hits),
            route=route,
            **extra,  # type: ignore[arg-type]
        )

    if route is not None and route.leaves:
        verdict = Verdict(
            outcome=Outcome.NO_REPLY,
            disposition=Disposition.LEAVE,
            reason=f"route {route.name!r}: another process's letter, left untouched",
        )
        return ended(Stage.ROUTES, verdict)

    verdict = rules.add(
        check_loop(letter, LoopGuardSettings(settings.own_address, settings.instance))
    )
    if verdict.stops:
        return ended(Stage.LOOP_GUARD, verdict)

    # Only a well-formed single From address is looked up: nothing else can be trusted.
    single, _ = single_sender(letter)
    candidates = directory.active_subscribers(single.normalized) if single else []
    gate = check_sender(letter, candidates, settings.sender_auth)
    verdict = rules.add(gate.verdict)
    if verdict.stops or gate.sender is None:
        return ended(Stage.SENDER_GATE, verdict)
    sender = gate.sender.address

    today = now.astimezone(ZoneInfo(settings.timezone)).date()
    replies = reply_counter.replies_on(gate.sender.normalized, today)
    cap = check_reply_cap(replies, settings.limits.replies_per_sender_per_day)
    rules.hits.append(cap)
    known = {"sender": sender, "subscribers": gate.candidates, "reply_withheld": cap.hit}

    if route is None:
        subject = normalize_subject(letter.subject)
        verdict = Verdict(
            outcome=Outcome.UNKNOWN_SUBJECT, reason=f"no route for subject {subject!r}"
        )
        return ended(Stage.ROUTES, verdict, template_values={"subject": subject}, **known)

    attachments = find_attachments(letter.message, settings.limits.max_attachment_bytes)
    checked = check_attachments(attachments, settings.limits, letter_oversized=letter.oversized)
    verdict = rules.add(checked.verdict)
    if verdict.stops or checked.certificate is None:
        return ended(Stage.ATTACHMENTS, verdict, **known)
    return IntakeDecision(
        letter=letter,
        stage=Stage.ATTACHMENTS,
        outcome=None,
        disposition=Disposition.HANDLE,
        reason=f"certificate {checked.certificate.file_name} from {sender}",
        rule_hits=tuple(rules.hits),
        route=route,
        sender=sender,
        subscribers=gate.candidates,
        certificate=checked.certificate,
        reply_withheld=cap.hit,
    )
