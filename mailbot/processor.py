"""One letter in, one transaction out: journal row, directory changes, outbox row.

This is the edge where the pure checks meet the database, the certificate
store, the quarantine folder and the raw-letter archive:

1. a letter already journaled (same mailbox/UIDVALIDITY/UID, or same
   Message-ID and SHA-256) is not processed again;
2. intake (SPEC steps 1-4) and, for ADD_CERT, the certificate checks (5-9);
3. in one transaction: the journal row, the registration (10-11) or the
   quarantine row, and the reply in the outbox (12); files written before the
   commit are removed again when it fails.

Sending the outbox and filing the letter on the server belong to the daemon.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from mailbot.certificate_alerts import alert_forgery, alert_install_failure
from mailbot.certstore import CertificateStore, InstallError
from mailbot.config import Config
from mailbot.directory.adapters import DbCaDirectory, DbReplyCounter, DbSenderDirectory
from mailbot.directory.models import Letter as LetterRow
from mailbot.directory.models import OutboxMessage, QuarantinedCertificate
from mailbot.directory.registration import register_certificate
from mailbot.files import write_atomically
from mailbot.log import bind_letter, get_logger
from mailbot.mail.reply import ReplySettings, build_reply
from mailbot.mail.templates import Templates
from mailbot.pipeline.add_cert import Action, AddCertDecision, AddCertSettings, decide_add_cert
from mailbot.pipeline.decision import Disposition, Outcome
from mailbot.pipeline.intake import IntakeDecision, IntakeSettings, decide
from mailbot.pipeline.routes import RouteTable
from mailbot.pki.crl_fetch import CrlSource
from mailbot.pki.issuer import CaDirectory
from mailbot.quarantine_digest import alert_unknown_ca

log = get_logger(__name__)


@dataclass(frozen=True)
class LetterSource:
    """Where a letter came from: a mailbox position, or the command line."""

    mailbox: str = "(command line)"
    uidvalidity: int | None = None
    uid: int | None = None


@dataclass(frozen=True)
class Claim:
    """The journal's answer when processing of a letter starts."""

    letter_id: int
    #: How many times processing of this letter has started (1 the first time).
    attempts: int
    #: ``claimed`` (go on), or the state of an earlier, finished processing.
    state: str
    outcome: str | None
    filed_to: str | None

    @property
    def finished(self) -> bool:
        """True when the letter was already processed (only filing may be left)."""
        return self.state != "claimed"


@dataclass(frozen=True)
class ProcessResult:
    """What became of one letter."""

    letter_id: int | None
    #: A template key, ``no_reply``, ``leave`` or ``deferred``.
    outcome: str
    #: ``processed``, ``rejected``, ``leave`` or ``deferred``: where the letter is filed.
    filing: str
    reply_to: str | None = None
    reply_text: str | None = None
    reply: EmailMessage | None = None
    duplicate: bool = False
    detail: dict[str, Any] = field(default_factory=dict)
    route: str | None = None
    rule_hits: list[dict[str, object]] = field(default_factory=list)


class LetterProcessor:
    """Processes letters against one configuration, database, store and CRL source."""

    def __init__(
        self,
        config: Config,
        sessions: sessionmaker[Session],
        routes: RouteTable,
        templates: Templates,
        crl_source_for: Callable[[CaDirectory], CrlSource],
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.config = config
        self.sessions = sessions
        self.routes = routes
        self.templates = templates
        # The CRL source reads the CA directory's URLs through the letter's session.
        self.crl_source_for = crl_source_for
        self.clock = clock
        self.store = CertificateStore(
            config.certificate_store,
            config.store.install_command,
            config.store.install_timeout_seconds,
        )
        self.intake_settings = IntakeSettings.from_config(config)
        self.reply_settings = ReplySettings(
            from_address=config.smtp.from_address, instance=config.general.instance_name
        )

    # -- the whole letter ------------------------------------------------------------

    def process(
        self,
        raw: bytes,
        source: LetterSource,
        dry_run: bool = False,
        declared_size: int | None = None,
    ) -> ProcessResult:
        """Decide and record one letter. With *dry_run* nothing is written anywhere.

        *declared_size* is the server's size when *raw* holds only the header
        section of a letter too large to fetch.
        """
        now = self.clock()
        digest = hashlib.sha256(raw).hexdigest()
        with self.sessions() as session, bind_letter(sha256=digest[:16], uid=source.uid):
            previous = self._journaled(session, source, raw, digest)
            claimed = previous if previous is not None and previous.state == "claimed" else None
            if previous is not None and claimed is None:
                log.info("letter already journaled", letter_id=previous.id)
                return ProcessResult(
                    previous.id,
                    previous.outcome or "",
                    filing_for(previous.outcome, previous.state),
                    duplicate=True,
                )
            intake = decide(
                raw,
                settings=self.intake_settings,
                routes=self.routes,
                directory=DbSenderDirectory(session),
                reply_counter=DbReplyCounter(session, self.config.general.timezone),
                now=now,
                declared_size=declared_size,
            )
            handler: AddCertDecision | None = None
            if intake.accepted and intake.certificate is not None:
                ca_directory = DbCaDirectory(session)
                handler = decide_add_cert(
                    intake.certificate,
                    intake.subscribers,
                    ca_directory,
                    self.crl_source_for(ca_directory),
                    AddCertSettings(
                        now=now,
                        timezone=self.config.general.timezone,
                        crl_policy=self.config.crl.unavailable_policy,
                    ),
                )
            written: list[Path] = []
            try:
                result = self._record(
                    session, claimed, source, raw, digest, intake, handler, now, dry_run, written
                )
                result = replace(
                    result,
                    route=intake.route.name if intake.route else None,
                    rule_hits=[
                        h.as_dict() for h in (*intake.rule_hits, *(handler.hits if handler else ()))
                    ],
                )
                if dry_run:
                    session.rollback()
                else:
                    session.commit()
            except BaseException:
                session.rollback()
                for path in written:
                    self.store.discard(path)
                raise
            log.info(
                "letter processed",
                letter_id=result.letter_id,
                outcome=result.outcome,
                filing=result.filing,
                route=intake.route.name if intake.route else None,
                sender=intake.sender,
            )
            return result

    def claim(self, raw: bytes, source: LetterSource) -> Claim:
        """Record that processing of a letter starts, in its own committed transaction.

        The claim's attempt counter survives a crash in the pipeline, so a letter
        that keeps crashing the daemon is recognised (Mailman's ``.bak`` count).
        """
        now = self.clock()
        digest = hashlib.sha256(raw).hexdigest()
        with self.sessions() as session:
            row = self._journaled(session, source, raw, digest)
            if row is not None and row.state != "claimed":
                return Claim(row.id, row.attempts, row.state, row.outcome, row.filed_to)
            if row is None:
                row = LetterRow(
                    mailbox=source.mailbox,
                    uidvalidity=source.uidvalidity,
                    uid=source.uid,
                    sha256=digest,
                    received_at=now,
                    state="claimed",
                    attempts=0,
                )
                session.add(row)
            row.attempts += 1
            session.commit()
            return Claim(row.id, row.attempts, "claimed", None, None)

    def give_up(self, letter_id: int, reason: str) -> None:
        """Mark a claimed letter that kept failing as ``failed`` (a poison letter)."""
        with self.sessions() as session:
            row = session.get(LetterRow, letter_id)
            if row is None:
                return
            row.state = "failed"
            row.outcome = "failed"
            row.processed_at = self.clock()
            row.detail = {**(row.detail or {}), "failure": reason[:2000]}
            session.commit()

    def mark_filed(self, letter_id: int, folder: str) -> None:
        """Remember where the letter was filed on the server."""
        with self.sessions() as session:
            row = session.get(LetterRow, letter_id)
            if row is not None:
                row.filed_to = folder
                session.commit()

    def _journaled(
        self, session: Session, source: LetterSource, raw: bytes, digest: str
    ) -> LetterRow | None:
        if source.uid is not None:
            row = session.scalar(
                select(LetterRow).where(
                    LetterRow.mailbox == source.mailbox,
                    LetterRow.uidvalidity == source.uidvalidity,
                    LetterRow.uid == source.uid,
                )
            )
            if row is not None:
                return row
        # A UIDVALIDITY reset (or the same file again) must not re-answer a letter.
        return session.scalar(
            select(LetterRow)
            .where(
                LetterRow.sha256 == digest,
                LetterRow.state.in_(("done", "deferred", "failed")),
            )
            .limit(1)
        )

    # -- the transaction ---------------------------------------------------------------

    def _record(
        self,
        session: Session,
        claimed: LetterRow | None,
        source: LetterSource,
        raw: bytes,
        digest: str,
        intake: IntakeDecision,
        handler: AddCertDecision | None,
        now: dt.datetime,
        dry_run: bool,
        written: list[Path],
    ) -> ProcessResult:
        letter = intake.letter
        row = claimed or LetterRow(
            mailbox=source.mailbox,
            uidvalidity=source.uidvalidity,
            uid=source.uid,
            sha256=digest,
            received_at=now,
            attempts=1,
        )
        row.message_id = (letter.message_id or "")[:998] or None
        row.sender = (intake.sender or _first_from(intake) or "")[:320].lower() or None
        row.subject = letter.subject
        row.processed_at = now
        row.state = "done"
        row.route = intake.route.name if intake.route else None
        row.rule_hits = [h.as_dict() for h in intake.rule_hits]
        row.detail = {"intake": {"stage": intake.stage.value, "reason": intake.reason}}
        session.add(row)
        session.flush()
        if not dry_run:
            row.archive_path = str(self._archive(raw, digest))

        outcome: Outcome | None = intake.outcome
        values = dict(intake.template_values)
        if intake.disposition is Disposition.LEAVE:
            row.outcome = "leave"
            return ProcessResult(row.id, "leave", "leave", detail=row.detail)
        if handler is not None:
            row.rule_hits = [*row.rule_hits, *(h.as_dict() for h in handler.hits)]
            row.detail = {**row.detail, "certificate": _handler_evidence(handler)}
            outcome, values = handler.outcome, dict(handler.template_values)
            if handler.action is Action.DEFER:
                row.state = "deferred"
                row.outcome = "deferred"
                return ProcessResult(row.id, "deferred", "deferred", detail=row.detail)
            if handler.alert and handler.certificate is not None and not dry_run:
                alert_forgery(session, self.config, handler.certificate, handler.alert,
                              intake.sender, row.id, now)  # fmt: skip
            if handler.action is Action.REGISTER:
                outcome, values = self._register(session, row, handler, now, dry_run, written)
            elif handler.action is Action.QUARANTINE and not dry_run:
                self._quarantine(session, row, intake, handler, now)
        assert outcome is not None
        row.outcome = outcome.value
        if not outcome.has_reply or intake.sender is None:
            return ProcessResult(row.id, outcome.value, "rejected", detail=row.detail)
        row.template_key = outcome.value
        text = self.templates.render(outcome, values)
        reply = build_reply(letter, intake.sender, text, self.reply_settings, now)
        session.add(
            OutboxMessage(
                letter_id=row.id,
                kind="reply",
                template_key=outcome.value,
                recipients=[intake.sender],
                message_id=str(reply["Message-ID"]),
                raw=bytes(reply),
                status="pending",
                next_attempt_at=now,
                created_at=now,
            )
        )
        filing = "processed" if outcome is Outcome.SUCCESS else "rejected"
        return ProcessResult(
            row.id, outcome.value, filing, intake.sender, text, reply, detail=row.detail
        )

    def _register(
        self,
        session: Session,
        row: LetterRow,
        handler: AddCertDecision,
        now: dt.datetime,
        dry_run: bool,
        written: list[Path],
    ) -> tuple[Outcome, dict[str, str]]:
        assert handler.certificate and handler.ca and handler.subscriber
        subscriber_id = int(handler.subscriber.subscriber_id)
        row.subscriber_id = subscriber_id
        if dry_run:
            row.detail = {**row.detail, "install": "skipped (dry run)"}
            return Outcome.SUCCESS, dict(handler.template_values)
        try:
            # InstallError is raised before register_certificate writes any row.
            registration = register_certificate(
                session, self.store, handler.certificate, handler.ca, subscriber_id, row.id, now
            )
        except InstallError as exc:
            log.warning("install failed", error=str(exc))
            row.detail = {**row.detail, "install": {"error": str(exc)}}
            alert_install_failure(session, self.config, handler.certificate, str(exc),
                                  row.sender, row.id, now)  # fmt: skip
            return Outcome.INSTALL_ERROR, {"error": str(exc)}
        if registration.stored_created:
            written.append(Path(registration.row.store_path))
        row.certificate_id = registration.row.id
        row.detail = {
            **row.detail,
            "install": {
                "path": registration.row.store_path,
                "already_registered": registration.already_registered,
            },
        }
        return Outcome.SUCCESS, dict(handler.template_values)

    def _quarantine(
        self,
        session: Session,
        row: LetterRow,
        intake: IntakeDecision,
        handler: AddCertDecision,
        now: dt.datetime,
    ) -> None:
        certificate = handler.certificate
        assert certificate is not None
        folder = self.config.quarantine_dir
        path = folder / f"{certificate.thumbprint_sha1}.cer"
        aki = certificate.authority_key_identifier
        metadata = {
            "letter_id": row.id,
            "sender": intake.sender,
            "subscribers": [c.subscriber_id for c in intake.subscribers],
            "serial": certificate.serial_hex,
            "issuer": certificate.issuer.rfc4514(),
            "authority_key_identifier": aki.hex().upper() if aki else None,
            "aia_ca_issuers": list(certificate.ca_issuer_urls),
            "received_at": now.isoformat(),
        }
        write_atomically(path, certificate.der)
        write_atomically(path.with_suffix(".json"), json.dumps(metadata, ensure_ascii=False,
                                                               indent=2).encode())  # fmt: skip
        subscriber_id = (
            int(intake.subscribers[0].subscriber_id) if len(intake.subscribers) == 1 else None
        )
        quarantined = QuarantinedCertificate(
            letter_id=row.id,
            subscriber_id=subscriber_id,
            sender=intake.sender or "",
            thumbprint_sha1=certificate.thumbprint_sha1,
            serial=certificate.serial_hex,
            issuer_dn=certificate.issuer.rfc4514(),
            authority_key_id=aki.hex().upper() if aki else None,
            aia_urls=list(certificate.ca_issuer_urls),
            path=str(path),
            status="pending",
            created_at=now,
        )
        session.add(quarantined)
        # Same transaction as the journal row: no alert without the letter, and vice versa.
        alert_unknown_ca(session, self.config, quarantined, now,
                         {certificate.thumbprint_sha1: certificate.der})  # fmt: skip

    def _archive(self, raw: bytes, digest: str) -> Path:
        path = self.config.archive_dir / digest[:2] / f"{digest}.eml"
        if not path.exists():
            write_atomically(path, raw)
        return path


def _first_from(intake: IntakeDecision) -> str | None:
    mailboxes = intake.letter.from_mailboxes
    return mailboxes[0].address if mailboxes else None


def filing_for(outcome: str | None, state: str) -> str:
    if state == "deferred":
        return "deferred"
    if state == "failed":
        return "failed"
    if outcome == "leave":
        return "leave"
    return "processed" if outcome == "success" else "rejected"


def _handler_evidence(handler: AddCertDecision) -> dict[str, Any]:
    evidence: dict[str, Any] = {"action": handler.action.value, "reason": handler.reason}
    if handler.certificate is not None:
        evidence["serial"] = handler.certificate.serial_hex
        evidence["thumbprint_sha1"] = handler.certificate.thumbprint_sha1
        evidence["subject_cn"] = handler.certificate.subject_cn
    if handler.validation is not None:
        evidence["validation"] = handler.validation.to_dict()
    if handler.alert:
        evidence["alert"] = handler.alert
    return evidence
