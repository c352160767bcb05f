"""One letter in, one transaction out: journal row, directory changes, outbox row.

This is the edge where the pure checks meet the database, the certificate
store, the quarantine folder and the raw-letter archive:

1. a letter already journaled (same mailbox/UIDVALIDITY/UID, or same
   Message-ID and SHA-256) is not processed again;
2. intake (steps 1-4) and, for ADD_CERT, the certificate checks (5-9);
3. in one transaction: the journal row, the registration (10-11) or the
   quarantine row, and the reply in the outbox (12); files written before the
   commit are removed again when it fails.

A letter deferred for want of a CRL (policy ``defer``) is decided again later by
:meth:`LetterProcessor.retry` from its archived copy, on the same journal row.

Sending the outbox and filing the letter on the server belong to the daemon.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from email.message import EmailMessage
from pathlib import Path
from typing import Any, cast

from sqlalchemy import CursorResult, Select, Table, and_, bindparam, insert, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from mailbot.app.adapters import (
    DbAccreditationRegister,
    DbCaDirectory,
    DbReplyCounter,
    DbSenderDirectory,
)
from mailbot.app.listed_ca_effect import register_for_letter
from mailbot.app.registration_effect import queue_answer, register_effect
from mailbot.app.states import (
    Filing,
    LetterOutcome,
    LetterState,
    NoVerdict,
    filing_for,
    parse_outcome,
)
from mailbot.config import Config
from mailbot.directory.certstore import CertificateStore
from mailbot.directory.models import LetterRecord, QuarantinedCertificate
from mailbot.files import write_atomically
from mailbot.log import bind_letter, get_logger, mask_identifier
from mailbot.mail.reply import ReplySettings, build_reply
from mailbot.notices.certificate_alerts import alert_forgery
from mailbot.notices.sender_alerts import alert_reply_cap
from mailbot.notices.templates import Templates
from mailbot.notices.unknown_ca_digest import alert_unknown_ca
from mailbot.pki.crl_fetch import CrlSource
from mailbot.pki.crl_store import ca_key_id
from mailbot.pki.issuer import CaDirectory
from mailbot.regulation.add_cert import Action, AddCertDecision, AddCertSettings, decide_add_cert
from mailbot.regulation.decision import Disposition, Outcome
from mailbot.regulation.intake import IntakeDecision, IntakeSettings, decide
from mailbot.regulation.routes import RouteTable

log = get_logger(__name__)

_LETTERS = cast(Table, LetterRecord.__table__)


def _lookups(what: Any) -> tuple[Select[Any], Select[Any], Select[Any]]:
    """The journal's lookups of a letter: by mailbox position (with a UIDVALIDITY or
    without: a bound None would compare "= NULL", never true), and by content."""
    c = _LETTERS.c
    by_content = (
        select(what)
        .where(
            c.sha256 == bindparam("sha256"),
            or_(
                c.state.in_((LetterState.DONE, LetterState.DEFERRED, LetterState.FAILED)),
                and_(c.state == LetterState.CLAIMED, c.uid.is_(None)),
            ),
        )
        .order_by(c.id)
        .limit(1)
    )
    return (
        select(what).where(
            c.mailbox == bindparam("mailbox"),
            c.uidvalidity == bindparam("uidvalidity"),
            c.uid == bindparam("uid"),
        ),
        select(what).where(
            c.mailbox == bindparam("mailbox"), c.uidvalidity.is_(None), c.uid == bindparam("uid")
        ),
        by_content,
    )


# Built once: a statement's construction and cache key cost more CPU than its SQL does.
# The whole row where it is to be updated; only its id for a claim, through Core
# (nearly every claim finds nothing, and the ORM's machinery costs more than the SQL).
_ROW_LOOKUPS = _lookups(LetterRecord)
_ID_LOOKUPS = _lookups(_LETTERS.c.id)
_NEW_CLAIM = insert(_LETTERS)

#: Writes archive copies beside the decision (one letter at a time is processed).
_ARCHIVE_WRITER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="archive")


class RetryError(Exception):
    """A letter cannot be retried (not in the journal, wrong state, no archived copy)."""


@dataclass(frozen=True)
class LetterSource:
    """Where a letter came from: a mailbox position, or the command line."""

    mailbox: str = "(command line)"
    uidvalidity: int | None = None
    uid: int | None = None


@dataclass(frozen=True)
class Following:
    """The next letter of the mailbox, claimed in this letter's transaction: its SHA-256
    and position (the claim needs no more, so its bytes need not travel with it)."""

    digest: str
    source: LetterSource

    @classmethod
    def of(cls, raw: bytes, source: LetterSource) -> Following:
        """The following letter *raw* at *source*."""
        return cls(hashlib.sha256(raw).hexdigest(), source)


@dataclass(frozen=True)
class Claim:
    """The journal's answer when processing of a letter starts."""

    letter_id: int
    #: How many times processing of this letter has started (1 the first time).
    attempts: int
    #: ``claimed`` (go on), or the state of an earlier, finished processing.
    state: LetterState
    outcome: LetterOutcome | None
    filed_to: str | None

    @property
    def finished(self) -> bool:
        """True when the letter was already processed (only filing may be left)."""
        return self.state is not LetterState.CLAIMED

    @property
    def filing(self) -> Filing:
        """Where an already processed letter is to be filed."""
        return filing_for(self.outcome, self.state)


@dataclass(frozen=True)
class JournalEntry:
    """A journaled letter at a mailbox position, as the daemon's pass sees it."""

    letter_id: int
    state: str
    outcome: str | None
    filed_to: str | None

    @property
    def filing(self) -> Filing:
        """Where the letter is to be filed."""
        return filing_for(self.outcome, self.state)


@dataclass(frozen=True)
class ProcessResult:
    """What became of one letter."""

    letter_id: int | None
    #: The verdict, or why there is none; None only for a journaled letter without one.
    outcome: LetterOutcome | None
    #: Where the letter is filed.
    filing: Filing
    reply_to: str | None = None
    reply_text: str | None = None
    reply: EmailMessage | None = None
    duplicate: bool = False
    detail: dict[str, Any] = field(default_factory=dict)
    route: str | None = None
    rule_hits: list[dict[str, object]] = field(default_factory=list)
    #: The claim of the following letter, committed with this letter's decision.
    next_claim: Claim | None = None


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
        self.store = CertificateStore.from_config(config)
        self.intake_settings = IntakeSettings.from_config(config)
        self.reply_settings = ReplySettings.from_config(config)

    # -- the whole letter ------------------------------------------------------------

    def process(
        self,
        raw: bytes,
        source: LetterSource,
        dry_run: bool = False,
        declared_size: int | None = None,
        following: Following | None = None,
        archived: Path | None = None,
    ) -> ProcessResult:
        """Decide and record one letter. With *dry_run* nothing is written anywhere.

        *declared_size* is the server's size when *raw* holds only the header
        section of a letter too large to fetch. *following* (the next letter of
        the mailbox) is claimed in the same transaction: its claim is in the
        result's ``next_claim`` (None when this letter's transaction failed).
        *archived* is the letter's archive copy when it was written already
        (:meth:`archive`).
        """
        now = self.clock()
        digest = hashlib.sha256(raw).hexdigest()
        archive: Future[Path] | None = None
        if archived is not None:
            archive = Future()
            archive.set_result(archived)
        elif not dry_run:
            # Written (and fsynced) while the letter is decided.
            archive = _ARCHIVE_WRITER.submit(self._archive, raw, digest)
        with self.sessions() as session, bind_letter(sha256=digest[:16], uid=source.uid):
            previous = self._journaled(session, source, raw, digest)
            claimed = (
                previous if previous is not None and previous.state == LetterState.CLAIMED else None
            )
            if previous is not None and claimed is None:
                log.info("letter already journaled", letter_id=previous.id)
                return ProcessResult(
                    previous.id,
                    parse_outcome(previous.outcome),
                    filing_for(previous.outcome, previous.state),
                    duplicate=True,
                )
            intake, handler = self._decide(session, raw, now, declared_size)
            return self._commit(
                session, claimed, source, archive, digest, intake, handler, now, dry_run,
                following,
            )  # fmt: skip

    def retry(self, letter_id: int) -> ProcessResult:
        """Decide a ``deferred`` letter again from its archived raw copy, in one transaction.

        The same journal row is updated; once the letter is decided its reply is
        queued (exactly once: a concurrent retry of the same letter loses the
        compare-and-set on ``attempts`` and changes nothing). Raises
        :class:`RetryError` when the letter is not deferred or its copy is gone.
        """
        now = self.clock()
        with self.sessions() as session, bind_letter(letter_id=letter_id):
            row = session.get(LetterRecord, letter_id)
            if row is None:
                raise RetryError(f"letter {letter_id} is not in the journal")
            if row.state != LetterState.DEFERRED:
                raise RetryError(f"letter {letter_id} is {row.state}, not deferred")
            raw = self._archived(row)
            seen = row.attempts
            intake, handler = self._decide(session, raw, now, None)
            # Compare-and-set: the first write of the transaction. On PostgreSQL a
            # concurrent retry waits for our row lock, then matches nothing.
            claimed: CursorResult[Any] = session.execute(  # type: ignore[assignment]
                update(LetterRecord)
                .where(
                    LetterRecord.id == letter_id,
                    LetterRecord.state == LetterState.DEFERRED,
                    LetterRecord.attempts == seen,
                )
                .values(attempts=seen + 1)
                .execution_options(synchronize_session=False)
            )
            if claimed.rowcount != 1:
                session.rollback()
                log.info("letter retried elsewhere meanwhile", letter_id=letter_id)
                fresh = session.get(LetterRecord, letter_id)
                state = fresh.state if fresh is not None else LetterState.DONE
                outcome = fresh.outcome if fresh is not None else None
                return ProcessResult(
                    letter_id, parse_outcome(outcome), filing_for(outcome, state), duplicate=True
                )
            row.attempts = seen + 1
            source = LetterSource(row.mailbox, row.uidvalidity, row.uid)
            archive = _ARCHIVE_WRITER.submit(self._archive, raw, row.sha256)
            return self._commit(session, row, source, archive, row.sha256, intake, handler, now)

    def reset_failed(self, letter_id: int) -> None:
        """Let a ``failed`` (poison) letter be processed again when it is back in the mailbox.

        The row becomes ``claimed`` with no attempts and no mailbox position (the
        letter sits in the failed folder; moved back it gets a new UID). The
        daemon's next pass finds it by content (SHA-256) and adopts the row.
        """
        with self.sessions() as session:
            row = session.get(LetterRecord, letter_id)
            if row is None:
                raise RetryError(f"letter {letter_id} is not in the journal")
            if row.state != LetterState.FAILED:
                raise RetryError(f"letter {letter_id} is {row.state}, not failed")
            detail = dict(row.detail or {})
            resets = [*detail.get("resets", []), {
                "at": self.clock().isoformat(),
                "failure": detail.pop("failure", None),
                "filed_to": row.filed_to,
            }]  # fmt: skip
            row.detail = {**detail, "resets": resets}
            row.state = LetterState.CLAIMED
            row.outcome = None
            row.attempts = 0
            row.processed_at = None
            row.filed_to = None
            row.uid = None
            row.uidvalidity = None
            session.commit()
            log.info("failed letter reset", letter_id=letter_id, resets=len(resets))

    def _decide(
        self, session: Session, raw: bytes, now: dt.datetime, declared_size: int | None
    ) -> tuple[IntakeDecision, AddCertDecision | None]:
        """Intake (steps 1-4) and, for an accepted certificate letter, steps 5-9. Read-only."""
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
                    auto_register_unknown=self.config.trust_list.auto_register_unknown,
                ),
                ca_directory.accreditation,
            )
        return intake, handler

    def _commit(
        self,
        session: Session,
        claimed: LetterRecord | None,
        source: LetterSource,
        archive: Future[Path] | None,
        digest: str,
        intake: IntakeDecision,
        handler: AddCertDecision | None,
        now: dt.datetime,
        dry_run: bool = False,
        following: Following | None = None,
    ) -> ProcessResult:
        """Record the decision in the session's transaction and commit (or roll back).

        *archive* is the letter's archive copy being written (None in a dry run);
        *following* is claimed in the same transaction (see :meth:`process`).
        """
        written: list[Path] = []
        try:
            result = self._record(
                session, claimed, source, archive, digest, intake, handler, now, dry_run, written
            )
            result = replace(
                result,
                route=intake.route.name if intake.route else None,
                rule_hits=[
                    h.as_dict() for h in (*intake.rule_hits, *(handler.hits if handler else ()))
                ],
                next_claim=(
                    self._claim_in(session, following.digest, following.source, now)
                    if following is not None and not dry_run
                    else None
                ),
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

    def _archived(self, row: LetterRecord) -> bytes:
        """The raw letter from the archive, checked against the journal's SHA-256."""
        if not row.archive_path:
            raise RetryError(f"letter {row.id} has no archived copy")
        try:
            raw = Path(row.archive_path).read_bytes()
        except OSError as exc:
            raise RetryError(f"letter {row.id}: archived copy unreadable: {exc}") from None
        if hashlib.sha256(raw).hexdigest() != row.sha256:
            raise RetryError(f"letter {row.id}: archived copy does not match the journal")
        return raw

    def claim(self, raw: bytes, source: LetterSource) -> Claim:
        """Record that processing of a letter starts, in its own committed transaction.

        The claim's attempt counter survives a crash in the pipeline, so a letter
        that keeps crashing the daemon is recognised (Mailman's ``.bak`` count).
        In a burst the daemon has the next letter claimed by the previous letter's
        transaction instead (``process(..., following=...)``): one commit less a letter.
        """
        with self.sessions() as session:
            claim = self._claim_in(session, hashlib.sha256(raw).hexdigest(), source, self.clock())
            session.commit()
            return claim

    def _claim_in(
        self, session: Session, digest: str, source: LetterSource, now: dt.datetime
    ) -> Claim:
        """The claim of :meth:`claim` for the letter of SHA-256 *digest*, written in
        *session*'s transaction (not committed)."""
        # (The session autoflushes before Core statements too: this transaction's
        # decision is visible to the lookup, so the same letter twice is found.)
        letter_id = _journal_lookup(session, _ID_LOOKUPS, source, digest)
        if letter_id is None:
            # A new letter (nearly every claim): one Core INSERT, no unit of work.
            inserted: CursorResult[Any] = session.execute(  # type: ignore[assignment]
                _NEW_CLAIM,
                {"mailbox": source.mailbox, "uidvalidity": source.uidvalidity,
                 "uid": source.uid, "sha256": digest, "received_at": now,
                 "state": LetterState.CLAIMED, "attempts": 1},
            )  # fmt: skip
            key = inserted.inserted_primary_key
            assert key is not None
            return Claim(int(key[0]), 1, LetterState.CLAIMED, None, None)
        row = session.get(LetterRecord, letter_id)
        assert row is not None  # found a moment ago in this transaction
        if row.state != LetterState.CLAIMED:
            return Claim(
                row.id,
                row.attempts,
                LetterState(row.state),
                parse_outcome(row.outcome),
                row.filed_to,
            )
        if row.uid is None and source.uid is not None:
            # A reset letter is back in the mailbox: the row takes its new position.
            row.mailbox, row.uidvalidity, row.uid = (
                source.mailbox, source.uidvalidity, source.uid,
            )  # fmt: skip
        row.attempts += 1
        session.flush()  # the row's id
        return Claim(row.id, row.attempts, LetterState.CLAIMED, None, None)

    def give_up(self, letter_id: int, reason: str) -> None:
        """Mark a claimed letter that kept failing as ``failed`` (a poison letter)."""
        with self.sessions() as session:
            row = session.get(LetterRecord, letter_id)
            if row is None:
                return
            row.state = LetterState.FAILED
            row.outcome = NoVerdict.FAILED
            row.processed_at = self.clock()
            row.detail = {**(row.detail or {}), "failure": reason[:2000]}
            session.commit()

    def mark_filed(self, filings: Sequence[tuple[int, str]]) -> None:
        """Remember where letters were filed on the server: ``(letter_id, folder)`` pairs,
        recorded in one transaction (the daemon files a pass's letters in batches)."""
        if not filings:
            return
        with self.sessions() as session:
            session.execute(
                update(LetterRecord),
                [{"id": letter_id, "filed_to": folder} for letter_id, folder in filings],
            )
            session.commit()

    def journal_entries(
        self, mailbox: str, uidvalidity: int, uids: list[int]
    ) -> dict[int, JournalEntry]:
        """Letters among *uids* of the mailbox that were processed already, by UID.

        Claimed letters are left out: their processing has still to finish.
        """
        found: dict[int, JournalEntry] = {}
        with self.sessions() as session:
            # Bounded IN lists: a mailbox may hold many thousands of letters.
            for start in range(0, len(uids), 500):
                chunk = uids[start : start + 500]
                rows = session.execute(
                    select(
                        LetterRecord.uid, LetterRecord.id, LetterRecord.state, LetterRecord.outcome,
                        LetterRecord.filed_to,
                    ).where(
                        LetterRecord.mailbox == mailbox,
                        LetterRecord.uidvalidity == uidvalidity,
                        LetterRecord.uid.in_(chunk),
                        LetterRecord.state != LetterState.CLAIMED,
                    )
                )  # fmt: skip
                for uid, letter_id, state, outcome, filed_to in rows:
                    if uid is not None:
                        found[int(uid)] = JournalEntry(letter_id, state, outcome, filed_to)
        return found

    def _journaled(
        self, session: Session, source: LetterSource, raw: bytes, digest: str
    ) -> LetterRecord | None:
        row: LetterRecord | None = _journal_lookup(session, _ROW_LOOKUPS, source, digest)
        return row

    # -- the transaction ---------------------------------------------------------------

    def _record(
        self,
        session: Session,
        claimed: LetterRecord | None,
        source: LetterSource,
        archive: Future[Path] | None,
        digest: str,
        intake: IntakeDecision,
        handler: AddCertDecision | None,
        now: dt.datetime,
        dry_run: bool,
        written: list[Path],
    ) -> ProcessResult:
        letter = intake.letter
        row = claimed or LetterRecord(
            mailbox=source.mailbox,
            uidvalidity=source.uidvalidity,
            uid=source.uid,
            sha256=digest,
            received_at=now,
            attempts=1,
        )
        # The journal row's new values are gathered here and written to the row just
        # before anything that may flush it (and at the end): a registered letter's
        # row is then updated once, with the certificate's id, not twice.
        changes: dict[str, Any] = {
            "message_id": (letter.message_id or "")[:998] or None,
            "sender": (intake.sender or _first_from(intake) or "")[:320].lower() or None,
            "subject": letter.subject,
            "processed_at": now,
            "state": LetterState.DONE,
            "route": intake.route.name if intake.route else None,
            "rule_hits": [h.as_dict() for h in intake.rule_hits],
            # A retried letter keeps the history of its waiting (and of poison resets).
            "detail": {
                **{k: v for k, v in (row.detail or {}).items() if k in ("deferral", "resets")},
                "intake": {"stage": intake.stage.value, "reason": intake.reason},
            },
        }

        def write() -> None:
            for name, value in changes.items():
                setattr(row, name, value)

        session.add(row)
        if claimed is None:
            write()
            session.flush()  # a letter from the command line: its id is needed below
        if archive is not None:
            changes["archive_path"] = str(archive.result())  # durable before the row commits

        outcome: Outcome | None = intake.outcome
        values = dict(intake.template_values)
        if intake.disposition is Disposition.LEAVE:
            changes["outcome"] = NoVerdict.LEAVE
            write()
            return ProcessResult(row.id, NoVerdict.LEAVE, Filing.LEAVE, detail=row.detail)
        if handler is not None:
            changes["rule_hits"] = [*changes["rule_hits"], *(h.as_dict() for h in handler.hits)]
            changes["detail"] = {**changes["detail"], "certificate": _handler_evidence(handler)}
            outcome, values = handler.outcome, dict(handler.template_values)
            if handler.action is Action.DEFER:
                changes["state"] = LetterState.DEFERRED
                changes["outcome"] = NoVerdict.DEFERRED
                write()
                row.detail = {**row.detail, "deferral": self._deferral(session, row, handler, now)}
                return ProcessResult(row.id, NoVerdict.DEFERRED, Filing.DEFERRED, detail=row.detail)
            if "deferral" in changes["detail"]:
                changes["detail"] = {
                    **changes["detail"],
                    "deferral": {**changes["detail"]["deferral"], "decided_at": now.isoformat()},
                }
            if handler.ca_from_list is not None and not dry_run:
                # Before steps 10-11: the certificate's registration refers to its CA's row.
                note = register_for_letter(session, handler.ca_from_list, now)
                changes["detail"] = {**changes["detail"], "trust_list": note}
            if handler.alert and handler.certificate is not None and not dry_run:
                write()
                alert_forgery(session, self.config, handler.certificate, handler.alert,
                              intake.sender, row.id, now)  # fmt: skip
            if handler.action is Action.REGISTER:
                outcome, values = self._register(session, row, changes, handler, now, dry_run,
                                                 written)  # fmt: skip
            elif handler.action is Action.QUARANTINE and not dry_run:
                write()
                self._quarantine(session, row, intake, handler, now)
        assert outcome is not None
        changes["outcome"] = outcome.value
        write()
        if not outcome.has_reply or intake.sender is None:
            return ProcessResult(row.id, outcome, Filing.REJECTED, detail=row.detail)
        filing = Filing.PROCESSED if outcome is Outcome.SUCCESS else Filing.REJECTED
        if intake.reply_withheld:
            # Everything above happened (registration, quarantine, alerts); only
            # the answer stays unsent, and the admins hear of it once a day.
            row.detail = {**row.detail, "reply": "withheld: daily reply cap reached"}
            if not dry_run:
                alert_reply_cap(session, self.config, intake.sender, now)
            return ProcessResult(row.id, outcome, filing, detail=row.detail)
        row.template_key = outcome.value
        sender = intake.sender
        text, reply = queue_answer(
            session, self.templates, outcome, values,
            lambda text: build_reply(letter, sender, text, self.reply_settings, now),
            kind="reply", recipient=sender, letter_id=row.id, now=now,
        )  # fmt: skip
        return ProcessResult(row.id, outcome, filing, intake.sender, text, reply, detail=row.detail)

    def _register(
        self,
        session: Session,
        row: LetterRecord,
        changes: dict[str, Any],
        handler: AddCertDecision,
        now: dt.datetime,
        dry_run: bool,
        written: list[Path],
    ) -> tuple[Outcome, dict[str, str]]:
        """Steps 10-11; the journal row's new values go to *changes* (not yet to *row*)."""
        assert handler.subscriber is not None
        changes["subscriber_id"] = int(handler.subscriber.subscriber_id)
        if dry_run:
            changes["detail"] = {**changes["detail"], "install": "skipped (dry run)"}
            return Outcome.SUCCESS, dict(handler.template_values)
        effect = register_effect(
            session, self.config, self.store, handler, changes["sender"], row.id, now, written
        )
        if effect.registration is None:
            changes["detail"] = {**changes["detail"], "install": effect.failure_note}
        else:
            changes["detail"] = {
                **changes["detail"],
                "install": {
                    "path": effect.registration.row.store_path,
                    "already_registered": effect.registration.already_registered,
                },
            }
        return effect.outcome, effect.values

    def _quarantine(
        self,
        session: Session,
        row: LetterRecord,
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
                         {certificate.thumbprint_sha1: certificate.der},
                         DbAccreditationRegister(session))  # fmt: skip

    def _deferral(
        self, session: Session, row: LetterRecord, handler: AddCertDecision, now: dt.datetime
    ) -> dict[str, Any]:
        """What a waiting letter waits for: the CA, the URLs tried and what went wrong."""
        previous = (row.detail or {}).get("deferral") or {}
        certificate, ca = handler.certificate, handler.ca
        assert certificate is not None and ca is not None
        urls = list(certificate.crl_urls)
        urls += [u for u in DbCaDirectory(session).crl_urls(ca) if u not in urls]
        validation = handler.validation
        return {
            "since": previous.get("since") or now.isoformat(),
            "retries": int(previous.get("retries", -1)) + 1,
            "last_try": now.isoformat(),
            "ca_key": ca_key_id(ca),
            "ca_thumbprint_sha1": ca.thumbprint_sha1,
            "ca_name": ca.subject_cn or ca.subject.rfc4514(),
            "reason": handler.reason,
            "problem": validation.detail if validation is not None else handler.reason,
            "certificate_crl_urls": list(certificate.crl_urls),
            "urls": urls,
        }

    def archive(self, raw: bytes) -> Path:
        """Write the archive copy of a letter about to be processed (durably); its path.

        The daemon writes it as it fetches the letter, so that the decision
        (:meth:`process` with *archived*) does not wait for the disk.
        """
        return self._archive(raw, hashlib.sha256(raw).hexdigest())

    def _archive(self, raw: bytes, digest: str) -> Path:
        path = self.config.archive_dir / digest[:2] / f"{digest}.eml"
        if not path.exists():
            write_atomically(path, raw)
        return path


def _journal_lookup(
    session: Session,
    lookups: tuple[Select[Any], Select[Any], Select[Any]],
    source: LetterSource,
    digest: str,
) -> Any:
    """The first of *lookups* (see :func:`_lookups`) to find the letter, or None."""
    at_position, at_unknown_validity, by_content = lookups
    if source.uid is not None:
        found = session.scalar(
            at_position if source.uidvalidity is not None else at_unknown_validity,
            {"mailbox": source.mailbox, "uidvalidity": source.uidvalidity, "uid": source.uid},
        )
        if found is not None:
            return found
    # A UIDVALIDITY reset (or the same file again) must not re-answer a letter.
    # A reset poison letter (claimed, no position) is found by content too.
    return session.scalar(by_content, {"sha256": digest})


def _first_from(intake: IntakeDecision) -> str | None:
    mailboxes = intake.letter.from_mailboxes
    return mailboxes[0].address if mailboxes else None


def _handler_evidence(handler: AddCertDecision) -> dict[str, Any]:
    evidence: dict[str, Any] = {"action": handler.action.value, "reason": handler.reason}
    if handler.certificate is not None:
        evidence["serial"] = handler.certificate.serial_hex
        evidence["thumbprint_sha1"] = handler.certificate.thumbprint_sha1
        evidence["subject_cn"] = handler.certificate.subject_cn
        # What `letter show` tells an administrator about the certificate; the
        # journal keeps only the SNILS's last two digits (enough to tell two apart).
        evidence["issuer"] = handler.certificate.issuer.rfc4514()
        evidence["not_before"] = handler.certificate.not_before.isoformat()
        evidence["not_after"] = handler.certificate.not_after.isoformat()
        evidence["snils"] = mask_identifier(handler.certificate.snils or "") or None
    if handler.validation is not None:
        evidence["validation"] = handler.validation.to_dict()
    if handler.alert:
        evidence["alert"] = handler.alert
    return evidence
