"""The database seen through the pipeline's protocols.

* :class:`DbSenderDirectory` is the sender gate's ``SenderDirectory``;
* :class:`DbReplyCounter` is the loop guard's ``ReplyCounter`` (replies queued per day);
* :class:`DbCaDirectory` is the PKI's ``CaDirectory`` (registered, active CAs).

They read through the session they are given and never write.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from mailbot.directory.address_keys import reply_count_key
from mailbot.directory.ca_rows import ca_row, remember_ca_rows
from mailbot.directory.models import CertificationAuthority, OutboxMessage
from mailbot.directory.subscribers import subscribers_trusting
from mailbot.pki.certificate import Certificate
from mailbot.pki.errors import PkiError
from mailbot.pki.names import Name
from mailbot.regulation.sender_gate import SubscriberCandidate

#: Parsed CA certificates by thumbprint: CA rows are few and parsing is not free.
_parsed_cas: dict[str, Certificate] = {}

# Built once (each runs for every certificate letter): building a statement costs CPU.
_REPLIES_BETWEEN = (
    select(func.count())
    .select_from(OutboxMessage)
    .where(
        OutboxMessage.recipient_key == bindparam("key"),
        OutboxMessage.kind == "reply",
        OutboxMessage.created_at >= bindparam("start"),
        OutboxMessage.created_at < bindparam("end"),
    )
)
_CAS_BY_KEY_IDENTIFIER = select(CertificationAuthority).where(
    CertificationAuthority.active.is_(True),
    func.upper(CertificationAuthority.ski) == bindparam("ski"),
)


class DbSenderDirectory:
    """Trusted addresses of active subscribers of active organisations."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def active_subscribers(self, address: str) -> Sequence[SubscriberCandidate]:
        """See :class:`mailbot.regulation.sender_gate.SenderDirectory`."""
        rows = subscribers_trusting(self.session, address)
        # The session's identity map holds rows weakly: pinned for the session's life,
        # the registration step later in the same transaction finds them without a query.
        self.session.info.setdefault("pinned", []).extend(rows)
        return [
            SubscriberCandidate(
                subscriber_id=str(s.id),
                organisation=s.organisation.name,
                display_name=" ".join(p for p in (s.surname, s.given_names) if p),
                snils=s.snils,
            )
            for s in rows
        ]


class DbReplyCounter:
    """Replies already queued to an address on a day of the configured time zone."""

    def __init__(self, session: Session, timezone: str) -> None:
        self.session = session
        self.zone = ZoneInfo(timezone)

    def replies_on(self, address: str, day: dt.date) -> int:
        """See :class:`mailbot.regulation.loop_guard.ReplyCounter`."""
        start = dt.datetime.combine(day, dt.time.min, tzinfo=self.zone)
        end = start + dt.timedelta(days=1)
        # An index range on (recipient_key, created_at): cheap however many replies a day has.
        count = self.session.scalar(
            _REPLIES_BETWEEN, {"key": reply_count_key(address), "start": start, "end": end}
        )
        return int(count or 0)


class DbCaDirectory:
    """Active registered CAs, matched by key identifier or by subject name."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def _active(self) -> list[tuple[CertificationAuthority, Certificate]]:
        rows = self.session.scalars(
            select(CertificationAuthority).where(CertificationAuthority.active.is_(True))
        ).all()
        return [(row, certificate) for row in rows if (certificate := parsed(row)) is not None]

    def by_key_identifier(self, key_identifier: bytes) -> Sequence[Certificate]:
        """Registered CAs whose Subject Key Identifier equals *key_identifier*."""
        wanted = key_identifier.hex().upper()
        rows = self.session.scalars(_CAS_BY_KEY_IDENTIFIER, {"ski": wanted}).all()
        remember_ca_rows(self.session, rows)
        return [certificate for row in rows if (certificate := parsed(row)) is not None]

    def by_subject(self, subject_der: bytes) -> Sequence[Certificate]:
        """Registered CAs with this subject name (compared as RFC 5280 §7.1 allows)."""
        key = Name.from_der(subject_der).normalized_key()
        return [c for _row, c in self._active() if c.subject.normalized_key() == key]

    def crl_urls(self, ca: Certificate) -> Sequence[str]:
        """The CRL URLs recorded for this CA (learned from certificates or set by admins)."""
        row = ca_row(self.session, ca.thumbprint_sha1)
        return list(row.crl_urls) if row is not None else []


def parsed(row: CertificationAuthority) -> Certificate | None:
    """The row's certificate, parsed once per process (None if it no longer parses)."""
    certificate = _parsed_cas.get(row.thumbprint_sha1)
    if certificate is None:
        try:
            certificate = Certificate.from_der(row.certificate_der)
        except PkiError:
            return None
        _parsed_cas[row.thumbprint_sha1] = certificate
    return certificate
