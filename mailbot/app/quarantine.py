"""The quarantine (технологическая папка): an administrator's decisions on waiting certificates.

* Registering a CA (``mailbot ca add``) re-runs steps 5-12 for every
  pending certificate of that CA, at the time of the decision: validity, CA
  lookup, signature, CRL, SNILS against the subscribers *now* behind the
  original sender, install, directories. The participant gets a follow-up
  letter (threaded to the original letter) with the result.
* Rejecting a certificate tells the participant why (``unknown_ca_rejected``).

Each certificate is decided in its own transaction: its quarantine row, the
registration, the journal note and the follow-up in the outbox commit
together, and one failure does not undo the others.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.orm import Session, sessionmaker

from mailbot.app.adapters import DbCaDirectory, DbSenderDirectory
from mailbot.app.listed_ca_effect import register_for_letter
from mailbot.app.registration_effect import queue_answer, register_effect
from mailbot.app.states import QuarantineStatus
from mailbot.config import Config
from mailbot.directory.certstore import CertificateStore
from mailbot.directory.models import LetterRecord, QuarantinedCertificate
from mailbot.directory.subscribers import DirectoryError
from mailbot.log import get_logger
from mailbot.mail.reply import ReplySettings, build_notice, reply_subject
from mailbot.mail.ziparchive import CertificateFile
from mailbot.notices.certificate_alerts import alert_forgery
from mailbot.notices.templates import Templates
from mailbot.pki.certificate import Certificate
from mailbot.pki.crl_fetch import CrlSource
from mailbot.pki.errors import PkiError
from mailbot.pki.issuer import CaDirectory
from mailbot.regulation.add_cert import Action, AddCertDecision, AddCertSettings, decide_add_cert
from mailbot.regulation.decision import Outcome

log = get_logger(__name__)

STATUSES = tuple(status.value for status in QuarantineStatus)


@dataclass(frozen=True)
class Decision:
    """What became of one quarantined certificate."""

    quarantine_id: int
    serial: str
    sender: str
    #: The row's status afterwards (``pending`` when nothing could be decided yet).
    status: QuarantineStatus
    detail: str
    #: The follow-up's template key, when a follow-up was queued.
    followup: str | None = None
    #: False when the certificate had been decided before (nothing was done now).
    changed: bool = True

    def line(self) -> str:
        """One line for the command's output."""
        text = f"quarantine {self.quarantine_id} (serial {self.serial}, {self.sender}): "
        text += f"{self.status}: {self.detail}"
        if self.followup:
            text += f"; follow-up '{self.followup}' queued to {self.sender}"
        return text


#: Called with each decision inside its transaction, before the commit (the console's audit).
Witness = Callable[[Session, "Decision"], None]


def clean_reason(text: str) -> str:
    """A rejection's reason as the participant reads it: whitespace runs become one space."""
    return " ".join(text.split())


def list_quarantine(
    session: Session, status: str = QuarantineStatus.PENDING
) -> Sequence[QuarantinedCertificate]:
    """Quarantined certificates with *status* (``all`` for every one), oldest first."""
    query = select(QuarantinedCertificate).order_by(QuarantinedCertificate.id)
    if status != "all":
        query = query.where(QuarantinedCertificate.status == status)
    return session.scalars(query).all()


def get_quarantined(session: Session, quarantine_id: int) -> QuarantinedCertificate:
    """The quarantined certificate with this id, or :class:`DirectoryError`."""
    row = session.get(QuarantinedCertificate, quarantine_id)
    if row is None:
        raise DirectoryError(f"no quarantined certificate with id {quarantine_id}")
    return row


def read_certificate(row: QuarantinedCertificate) -> Certificate | None:
    """The quarantined certificate parsed from its file (None when missing or damaged)."""
    try:
        return Certificate.from_der(Path(row.path).read_bytes())
    except (OSError, PkiError):
        return None


def pending_for_ca(session: Session, ca: Certificate) -> list[int]:
    """Ids of pending certificates issued under *ca*'s key (by AKI, or by name without one)."""
    ski = ca.subject_key_identifier
    clauses: list[ColumnElement[bool]] = [QuarantinedCertificate.authority_key_id.is_(None)]
    if ski:
        clauses.append(QuarantinedCertificate.authority_key_id == ski.hex().upper())
    rows = session.scalars(
        select(QuarantinedCertificate)
        .where(QuarantinedCertificate.status == QuarantineStatus.PENDING, or_(*clauses))
        .order_by(QuarantinedCertificate.id)
    ).all()
    wanted = ca.subject.normalized_key()
    found = []
    for row in rows:
        if row.authority_key_id is not None:
            found.append(row.id)
            continue
        # step 6 without an AKI: names compared as RFC 5280 7.1 allows.
        certificate = read_certificate(row)
        if certificate is not None and certificate.issuer.normalized_key() == wanted:
            found.append(row.id)
    return found


def pending_ids(session: Session) -> list[int]:
    """Every pending certificate's id."""
    return [row.id for row in list_quarantine(session, QuarantineStatus.PENDING)]


class QuarantineReview:
    """Decides quarantined certificates against one configuration and database."""

    def __init__(
        self,
        config: Config,
        sessions: sessionmaker[Session],
        templates: Templates,
        crl_source_for: Callable[[CaDirectory], CrlSource],
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        witness: Witness | None = None,
    ) -> None:
        self.config = config
        self.sessions = sessions
        self.templates = templates
        self.crl_source_for = crl_source_for
        self.clock = clock
        self.witness = witness
        self.store = CertificateStore.from_config(config)
        self.reply_settings = ReplySettings.from_config(config)
        #: Store files written in the current transaction (removed if it fails).
        self._written: list[Path] = []

    # -- entry points ----------------------------------------------------------------

    def recheck(self, ids: Sequence[int], decided_by: str) -> list[Decision]:
        """Run steps 5-12 again for each pending certificate of *ids*."""
        return [self._one(i, lambda s, r, n: self._recheck(s, r, n, decided_by)) for i in ids]

    def reject(self, ids: Sequence[int], reason: str, decided_by: str) -> list[Decision]:
        """Reject each pending certificate of *ids* and tell its sender *reason*."""
        return [
            self._one(i, lambda s, r, n: self._reject(s, r, n, reason, decided_by)) for i in ids
        ]

    # -- one certificate, one transaction -------------------------------------------

    def _one(
        self,
        quarantine_id: int,
        decide: Callable[[Session, QuarantinedCertificate, dt.datetime], Decision],
    ) -> Decision:
        self._written = []
        with self.sessions() as session:
            try:
                row = get_quarantined(session, quarantine_id)
                if row.status != QuarantineStatus.PENDING:
                    detail = f"already {row.status} by {row.decided_by} at {row.decided_at}"
                    status = QuarantineStatus(row.status)
                    decision = Decision(row.id, row.serial, row.sender, status, detail,
                                        changed=False)  # fmt: skip
                else:
                    decision = decide(session, row, self.clock())
                if self.witness is not None:
                    self.witness(session, decision)  # in the decision's own transaction
                session.commit()
            except BaseException:
                session.rollback()
                for path in self._written:
                    self.store.discard(path)
                raise
        log.info("quarantine decided", quarantine_id=quarantine_id, status=decision.status,
                 followup=decision.followup)  # fmt: skip
        return decision

    def _recheck(
        self, session: Session, row: QuarantinedCertificate, now: dt.datetime, decided_by: str
    ) -> Decision:
        try:
            der = Path(row.path).read_bytes()
        except OSError as exc:
            return self._pending(row, f"cannot read {row.path}: {exc.strerror or exc}")
        candidates = DbSenderDirectory(session).active_subscribers(row.sender)
        ca_directory = DbCaDirectory(session)
        name = Path(row.path).name
        decision = decide_add_cert(
            CertificateFile(zip_name=name, entry_name=name, data=der, encoding="der"),
            candidates,
            ca_directory,
            self.crl_source_for(ca_directory),
            AddCertSettings(now, self.config.general.timezone, self.config.crl.unavailable_policy,
                            self.config.trust_list.auto_register_unknown),
            ca_directory.accreditation,
        )  # fmt: skip
        if decision.action is Action.QUARANTINE:
            return self._pending(row, f"the CA is still unknown ({decision.reason})")
        if decision.action is Action.DEFER:
            return self._pending(
                row,
                f"no current CRL ({decision.reason}; crl.unavailable_policy = defer): "
                f"run 'mailbot quarantine retry {row.id}' once a CRL is available",
            )
        if decision.ca_from_list is not None:
            # Before steps 10-11: the certificate's registration refers to its CA's row.
            register_for_letter(session, decision.ca_from_list, now)
        if not candidates:
            # Replies go to trusted addresses only (step 2), follow-ups too.
            detail = "the sender is no longer a trusted address of an active subscriber"
            detail += "; no follow-up"
            failed = QuarantineStatus.FAILED
            self._settle(session, row, now, failed, decided_by, detail, {})
            return Decision(row.id, row.serial, row.sender, failed, detail)
        if decision.alert and decision.certificate is not None:
            alert_forgery(session, self.config, decision.certificate, decision.alert,
                          row.sender, row.letter_id, now)  # fmt: skip
        outcome = decision.outcome
        assert outcome is not None
        values = dict(decision.template_values)
        status, detail = QuarantineStatus.FAILED, outcome.value
        if "reason" in values:
            # The administrators read the participant's phrase, not the key.
            detail += f": {self.templates.resolve(outcome, values)['reason']}"
        evidence = _evidence(decision)
        if decision.action is Action.REGISTER:
            outcome, values, status, detail = self._register(session, row, decision, now, evidence)
        self._settle(session, row, now, status, decided_by, detail, evidence)
        self._follow_up(session, row, outcome, values, now)
        return Decision(row.id, row.serial, row.sender, status, detail, outcome.value)

    def _register(
        self,
        session: Session,
        row: QuarantinedCertificate,
        decision: AddCertDecision,
        now: dt.datetime,
        evidence: dict[str, Any],
    ) -> tuple[Outcome, dict[str, str], QuarantineStatus, str]:
        effect = register_effect(
            session, self.config, self.store, decision, row.sender, row.letter_id, now,
            self._written,
        )  # fmt: skip
        registration = effect.registration
        if registration is None:
            evidence["install"] = effect.failure_note
            failed = QuarantineStatus.FAILED
            return effect.outcome, effect.values, failed, f"install_error: {effect.values['error']}"
        row.subscriber_id = effect.subscriber_id
        evidence["install"] = {"certificate_id": registration.row.id,
                               "path": registration.row.store_path}  # fmt: skip
        ca = decision.ca
        assert ca is not None
        detail = (
            f"certificate {registration.row.id} registered for subscriber {effect.subscriber_id} "
            f"(CA {ca.subject_cn or ca.subject.rfc4514()})"
        )
        return effect.outcome, effect.values, QuarantineStatus.REGISTERED, detail

    def _reject(
        self,
        session: Session,
        row: QuarantinedCertificate,
        now: dt.datetime,
        reason: str,
        decided_by: str,
    ) -> Decision:
        rejected = QuarantineStatus.REJECTED
        self._settle(session, row, now, rejected, decided_by, reason, {})
        if not DbSenderDirectory(session).active_subscribers(row.sender):
            detail = f"{reason} (no follow-up: the sender is no longer trusted)"
            return Decision(row.id, row.serial, row.sender, rejected, detail)
        outcome = Outcome.UNKNOWN_CA_REJECTED
        self._follow_up(session, row, outcome, {"serial": row.serial, "reason": reason}, now)
        return Decision(row.id, row.serial, row.sender, rejected, reason, outcome.value)

    # -- shared pieces ---------------------------------------------------------------

    @staticmethod
    def _pending(row: QuarantinedCertificate, detail: str) -> Decision:
        # Nothing is written: the row stays pending for a later decision.
        return Decision(
            row.id, row.serial, row.sender, QuarantineStatus.PENDING, detail, changed=False
        )

    @staticmethod
    def _settle(
        session: Session,
        row: QuarantinedCertificate,
        now: dt.datetime,
        status: QuarantineStatus,
        decided_by: str,
        reason: str,
        evidence: dict[str, Any],
    ) -> None:
        row.status, row.decided_by, row.decided_at, row.reason = status, decided_by, now, reason
        letter = session.get(LetterRecord, row.letter_id) if row.letter_id else None
        if letter is not None:
            # The journal keeps the letter's whole story, also what happened after the reply.
            note = {"id": row.id, "status": status, "decided_by": decided_by,
                    "decided_at": now.isoformat(), "reason": reason, **evidence}  # fmt: skip
            letter.detail = {**(letter.detail or {}), "quarantine": note}

    def _follow_up(
        self,
        session: Session,
        row: QuarantinedCertificate,
        outcome: Outcome,
        values: dict[str, str],
        now: dt.datetime,
    ) -> None:
        """Queue the follow-up to the original sender, threaded to the original letter."""
        letter = session.get(LetterRecord, row.letter_id) if row.letter_id else None
        message_id = letter.message_id if letter is not None else None
        subject = (letter.subject or "") if letter is not None else "ADD_CERT"
        queue_answer(
            session, self.templates, outcome, values,
            lambda text: build_notice(
                row.sender, reply_subject(subject), text, self.reply_settings, now,
                in_reply_to=message_id, references=[message_id] if message_id else [],
            ),
            kind="followup", recipient=row.sender, letter_id=row.letter_id, now=now,
        )  # fmt: skip


def _evidence(decision: AddCertDecision) -> dict[str, Any]:
    evidence: dict[str, Any] = {
        "outcome": decision.outcome.value if decision.outcome else None,
        "rule_hits": [h.as_dict() for h in decision.hits],
    }
    if decision.validation is not None:
        evidence["validation"] = decision.validation.to_dict()
    return evidence
