"""The quarantine: waiting certificates, their issuer, the list's verdict; the decisions.

Every decision takes the command line's code path: registering a CA is
``mailbot ca add`` (:mod:`mailbot.app.ca_release`), rejecting is ``mailbot
quarantine reject`` and re-checking ``mailbot quarantine retry``
(:class:`mailbot.app.quarantine.QuarantineReview`), so the participant gets the
same follow-up letters. Each decision is audited in its own transaction.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session
from starlette.responses import RedirectResponse, Response

from mailbot.app.adapters import DbAccreditationRegister
from mailbot.app.ca_release import (
    ca_certificates,
    open_review,
    pending_for_cas,
    register_authorities,
    register_listed,
    release,
)
from mailbot.app.quarantine import (
    STATUSES,
    Decision,
    QuarantineReview,
    clean_reason,
    list_quarantine,
    read_certificate,
)
from mailbot.app.states import QuarantineStatus
from mailbot.directory.models import LetterRecord, QuarantinedCertificate
from mailbot.directory.subscribers import DirectoryError
from mailbot.notices.templates import TemplateError
from mailbot.notices.unknown_ca_digest import CaKey, accreditation_text
from mailbot.pki.certificate import Certificate
from mailbot.pki.errors import PkiError
from mailbot.trustlist.register import ListedKey
from mailbot.web.context import PageRequest
from mailbot.web.guard import PageGroup
from mailbot.web.roles import Role

PAGES = PageGroup()
#: The participant reads the reason in a letter: a paragraph, not a document.
MAX_REASON_CHARS = 1000
#: The list shows this many rows at most (the quarantine is small in practice).
MAX_ROWS = 500


@dataclass(frozen=True)
class Waiting:
    """One quarantined certificate as the pages show it."""

    row: QuarantinedCertificate
    certificate: Certificate | None
    letter_subject: str | None

    @property
    def subject_cn(self) -> str | None:
        """The owner's name from the certificate (None when its file is gone)."""
        return self.certificate.subject_cn if self.certificate is not None else None

    @property
    def issuer_cn(self) -> str:
        """The issuer's CN, else its whole DN."""
        found = self.certificate.issuer.get("CN") if self.certificate is not None else None
        return found or self.row.issuer_dn


def waiting(session: Session, row: QuarantinedCertificate) -> Waiting:
    """The row with its parsed certificate and its letter's subject."""
    letter = session.get(LetterRecord, row.letter_id) if row.letter_id else None
    return Waiting(row, read_certificate(row), letter.subject if letter is not None else None)


@PAGES.get("/quarantine")
def quarantine_list(page: PageRequest) -> Response:
    """Quarantined certificates by status (pending by default), oldest first."""
    status = page.request.query_params.get("status", QuarantineStatus.PENDING.value)
    if status not in (*STATUSES, "all"):
        status = QuarantineStatus.PENDING.value
    with page.db() as session:
        rows = [waiting(session, row) for row in list_quarantine(session, status)[:MAX_ROWS]]
    return page.render("quarantine.html", rows=rows, status=status, statuses=STATUSES,
                       zone=page.web.config.general.timezone)  # fmt: skip


@PAGES.get("/quarantine/{quarantine_id:int}")
def quarantine_item(page: PageRequest) -> Response:
    """One certificate: owner, validity, issuer, the list's verdict; the decisions' forms."""
    return _item(page, int(page.request.path_params["quarantine_id"]))


def _item(page: PageRequest, quarantine_id: int, error: str = "", status: int = 200) -> Response:
    with page.db() as session:
        row = session.get(QuarantinedCertificate, quarantine_id)
        if row is None:
            return page.render("not_found.html", status_code=404,
                               what=f"Сертификат {quarantine_id} в карантине")  # fmt: skip
        item = waiting(session, row)
        register = DbAccreditationRegister(session)
        verdict = accreditation_text(page.web.config, CaKey.of(row), register)
        listed = _listed(register, row)
    return page.render(
        "quarantine_item.html",
        status_code=status,
        item=item,
        verdict=verdict,
        listed=listed,
        error=error,
        pending=row.status == QuarantineStatus.PENDING,
        max_reason=MAX_REASON_CHARS,
        zone=page.web.config.general.timezone,
    )


#: A CA certificate file (DER, PEM or a PKCS#7 bundle) is a few KiB; more is not one.
MAX_CA_FILE_BYTES = 1024 * 1024


@PAGES.post("/quarantine/{quarantine_id:int}/register-ca", role=Role.OPERATOR)
def register_ca_file(page: PageRequest) -> Response:
    """``mailbot ca add`` with the uploaded CA certificate (DER, PEM or PKCS#7)."""
    quarantine_id = int(page.request.path_params["quarantine_id"])
    data = page.file_bytes("ca_file", MAX_CA_FILE_BYTES)
    if data is None:
        return _item(page, quarantine_id, "Файл слишком большой для сертификата УЦ", 413)
    if not data:
        return _item(page, quarantine_id, "Выберите файл сертификата УЦ (.cer)", 400)
    try:
        authorities = ca_certificates(data)
    except (PkiError, DirectoryError) as exc:
        return _item(page, quarantine_id, f"Файл не подходит: {exc}", 400)
    with page.db() as session:
        if session.get(QuarantinedCertificate, quarantine_id) is None:
            return page.render("not_found.html", status_code=404,
                               what=f"Сертификат {quarantine_id} в карантине")  # fmt: skip
        if quarantine_id not in pending_for_cas(session, authorities):
            # On one certificate's page a CA that did not issue it is a slip, not a decision.
            session.rollback()
            message = "Этот сертификат не ждёт УЦ из файла (УЦ его не выдавал или решение принято)"
            return _item(page, quarantine_id, message, 400)
        try:
            registered = register_authorities(session, authorities)
        except DirectoryError as exc:
            session.rollback()
            return _item(page, quarantine_id, f"УЦ не зарегистрирован: {exc}", 400)
        page.audit(session, "ca.add", f"quarantine:{quarantine_id}", {
            "source": "upload", "sha256": hashlib.sha256(data).hexdigest(),
            "cas": [{"id": r.id, "thumbprint_sha1": r.thumbprint_sha1, "created": created}
                    for r, created in registered],
        })  # fmt: skip
        session.commit()
    return _release(page, quarantine_id, authorities)


@PAGES.post("/quarantine/{quarantine_id:int}/register-listed", role=Role.OPERATOR)
def register_from_list(page: PageRequest) -> Response:
    """Register the issuer's key from the list of accredited CAs, then as ``ca add`` does."""
    quarantine_id = int(page.request.path_params["quarantine_id"])
    with page.db() as session:
        row = session.get(QuarantinedCertificate, quarantine_id)
        if row is None:
            return page.render("not_found.html", status_code=404,
                               what=f"Сертификат {quarantine_id} в карантине")  # fmt: skip
        listed = _listed(DbAccreditationRegister(session), row)
        if listed is None or not listed.accredited:
            session.rollback()
            return _item(page, quarantine_id, "Ключа УЦ нет среди аккредитованных в перечне", 400)
        try:
            authorities = register_listed(session, listed, page.now)
        except DirectoryError as exc:
            session.rollback()
            return _item(page, quarantine_id, f"УЦ не зарегистрирован: {exc}", 400)
        page.audit(session, "ca.add", f"quarantine:{quarantine_id}", {
            "source": "trust_list", "ski": listed.key_identifier_hex,
            "list_version": listed.listed_in.version,
            "thumbprints_sha1": [c.thumbprint_sha1 for c in authorities],
        })  # fmt: skip
        session.commit()
    return _release(page, quarantine_id, authorities)


@PAGES.post("/quarantine/{quarantine_id:int}/reject", role=Role.OPERATOR)
def reject(page: PageRequest) -> Response:
    """``mailbot quarantine reject ID --reason REASON``: the participant is told the reason."""
    quarantine_id = int(page.request.path_params["quarantine_id"])
    reason = clean_reason(page.form.get("reason", ""))
    if not reason:
        return _item(page, quarantine_id, "Укажите причину: участник её прочтёт", 400)
    if len(reason) > MAX_REASON_CHARS:
        return _item(page, quarantine_id, f"Причина длиннее {MAX_REASON_CHARS} знаков", 400)
    return _decide(page, quarantine_id, lambda review: review.reject(
        [quarantine_id], reason, page.user.name))  # fmt: skip


@PAGES.post("/quarantine/{quarantine_id:int}/retry", role=Role.OPERATOR)
def retry(page: PageRequest) -> Response:
    """``mailbot quarantine retry ID``: the checks again, now."""
    quarantine_id = int(page.request.path_params["quarantine_id"])
    return _decide(page, quarantine_id, lambda review: review.recheck(
        [quarantine_id], page.user.name))  # fmt: skip


def _release(page: PageRequest, quarantine_id: int, authorities: Sequence[Certificate]) -> Response:
    """After a CA's registration: every certificate waiting for it, as ``ca add`` does."""
    return _decide(page, quarantine_id,
                   lambda review: release(review, authorities, page.user.name))  # fmt: skip


def _decide(
    page: PageRequest, quarantine_id: int, act: Callable[[QuarantineReview], list[Decision]]
) -> Response:
    """Run *act* on a review whose every decision is audited in its own transaction."""
    with page.db() as session:
        if session.get(QuarantinedCertificate, quarantine_id) is None:
            return page.render("not_found.html", status_code=404,
                               what=f"Сертификат {quarantine_id} в карантине")  # fmt: skip

    def audit(session: Session, decision: Decision) -> None:
        page.audit(session, "quarantine.decide", f"quarantine:{decision.quarantine_id}", {
            "status": decision.status.value, "changed": decision.changed,
            "followup": decision.followup, "detail": decision.detail[:500],
        })  # fmt: skip

    try:
        review = open_review(page.web.config, page.web.sessions,
                                               page.web.clock, audit)  # fmt: skip
    except TemplateError as exc:
        return _item(page, quarantine_id, f"Шаблоны ответов: {exc}", 500)
    act(review)
    return RedirectResponse(f"/quarantine/{quarantine_id}", status_code=303)


def _listed(register: DbAccreditationRegister, row: QuarantinedCertificate) -> ListedKey | None:
    """The list's entry of the certificate's issuer key (None: no AKI, no list, not listed)."""
    if not row.authority_key_id:
        return None
    try:
        return register.key(bytes.fromhex(row.authority_key_id))
    except ValueError:
        return None
