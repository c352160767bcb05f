"""The regulation's steps 10-12 as one effect, shared by letters and quarantine decisions.

A letter's certificate (:mod:`mailbot.app.letters`) and a quarantined
certificate whose CA an administrator registered (:mod:`mailbot.app.quarantine`)
end the same way: install into the store, register in the directory and update
the subscriber and CA directories (:func:`register_effect`), or, when the store
refuses, alert the administrators and answer ``install_error``; then queue the
answer to the sender (:func:`queue_answer`), a reply or a follow-up.

Everything runs in the caller's transaction; store files written are appended
to the caller's list so it can discard them when the transaction fails.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from mailbot.config import Config
from mailbot.directory.certstore import CertificateStore, InstallError
from mailbot.directory.models import LetterRecord
from mailbot.directory.registration import Registration, register_certificate
from mailbot.log import get_logger
from mailbot.mail.queue import queue_message
from mailbot.notices.certificate_alerts import alert_install_failure, install_error_text
from mailbot.notices.templates import Templates
from mailbot.regulation.add_cert import AddCertDecision
from mailbot.regulation.decision import Outcome

log = get_logger(__name__)


@dataclass(frozen=True)
class RegistrationEffect:
    """What steps 10-11 did: the answer's outcome and values, and the registration."""

    #: ``success`` or ``install_error``.
    outcome: Outcome
    #: The answer template's values.
    values: dict[str, str]
    subscriber_id: int
    #: None when the store refused the certificate (:attr:`error` says why).
    registration: Registration | None = None
    error: InstallError | None = None

    @property
    def failure_note(self) -> dict[str, Any]:
        """The journal's note on a refused install."""
        assert self.error is not None
        return {"error": self.values["error"], "os_error": self.error.detail}


def register_effect(
    session: Session,
    config: Config,
    store: CertificateStore,
    decision: AddCertDecision,
    sender: str | None,
    letter_id: int | None,
    now: dt.datetime,
    written: list[Path],
) -> RegistrationEffect:
    """Steps 10-11 for a REGISTER decision; a refused install alerts the administrators.

    On success the journal row of the certificate's letter (*letter_id*) points to
    the certificate and the subscriber, and a newly written store file is added
    to *written*. Nothing else is written when the install is refused.
    """
    certificate, ca, subscriber = decision.certificate, decision.ca, decision.subscriber
    assert certificate is not None and ca is not None and subscriber is not None
    subscriber_id = int(subscriber.subscriber_id)
    try:
        # InstallError is raised before register_certificate writes any row.
        registration = register_certificate(
            session, store, certificate, ca, subscriber_id, letter_id, now
        )
    except InstallError as exc:
        log.warning("install failed", error=exc.key, os_error=exc.detail)
        alert_install_failure(session, config, certificate, exc, sender, letter_id, now)
        text = install_error_text(config, exc)
        return RegistrationEffect(Outcome.INSTALL_ERROR, {"error": text}, subscriber_id, error=exc)
    if registration.stored_created:
        written.append(Path(registration.row.store_path))
    letter = session.get(LetterRecord, letter_id) if letter_id else None
    if letter is not None:
        letter.certificate_id = registration.row.id
        letter.subscriber_id = subscriber_id
    return RegistrationEffect(
        Outcome.SUCCESS, dict(decision.template_values), subscriber_id, registration
    )


def queue_answer(
    session: Session,
    templates: Templates,
    outcome: Outcome,
    values: dict[str, str],
    build: Callable[[str], EmailMessage],
    kind: str,
    recipient: str,
    letter_id: int | None,
    now: dt.datetime,
) -> tuple[str, EmailMessage]:
    """Step 12: render *outcome*'s template, build the letter with *build*, queue it.

    Returns the rendered text and the queued message.
    """
    text = templates.render(outcome, values)
    message = build(text)
    queue_message(
        session, message, kind=kind, recipients=[recipient], now=now,
        letter_id=letter_id, template_key=outcome.value,
    )  # fmt: skip
    return text, message
