"""The database seen through the pipeline's protocols.

* :class:`DbSenderDirectory` is the sender gate's ``SenderDirectory``;
* :class:`DbReplyCounter` is the loop guard's ``ReplyCounter`` (replies queued per day);
* :class:`DbCaDirectory` is the PKI's ``CaDirectory`` (registered, active CAs);
* :class:`DbAccreditationRegister` is the trust list's ``AccreditationRegister``
  (the list of accredited CAs as last imported).

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
from mailbot.directory.models import (
    AccreditedCa,
    AccreditedKey,
    CertificationAuthority,
    OutboxMessage,
    TrustListEdition,
)
from mailbot.directory.subscribers import subscribers_trusting
from mailbot.pki.certificate import Certificate
from mailbot.pki.errors import PkiError
from mailbot.pki.names import Name
from mailbot.regulation.sender_gate import SubscriberCandidate
from mailbot.trustlist.model import AccreditationStatus
from mailbot.trustlist.register import ListEdition, ListedKey

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
# The list's edition is asked in every certificate letter's transaction (usually
# to learn there is none): two columns through Core, not an ORM entity.
_EDITION_COLUMNS = (TrustListEdition.version, TrustListEdition.published_at)
_NEWEST_EDITION = select(*_EDITION_COLUMNS).order_by(TrustListEdition.version.desc()).limit(1)
_EDITION_BY_VERSION = select(*_EDITION_COLUMNS).where(
    TrustListEdition.version == bindparam("version")
)
_LISTED_KEY = (
    select(AccreditedKey)
    .where(AccreditedKey.ski == bindparam("ski"))
    .order_by(AccreditedKey.last_version.desc(), AccreditedKey.id)
    .limit(1)
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
    """Active registered CAs, matched by key identifier or by subject name.

    :attr:`accreditation` is the list of accredited CAs read through the same
    session: the letter's checks and this directory's CRL URLs share its answers.
    """

    def __init__(self, session: Session) -> None:
        self.session = session
        self.accreditation = DbAccreditationRegister(session)

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
        """The CRL URLs recorded for this CA, then those the list of accredited CAs gives.

        The directory's own (learned from certificates or set by admins) come
        first; the list's URLs for the CA's key are the last fallback.
        """
        row = ca_row(self.session, ca.thumbprint_sha1)
        urls = list(row.crl_urls) if row is not None else []
        ski = ca.subject_key_identifier
        listed = self.accreditation.key(ski) if ski else None
        if listed is not None:
            urls += [url for url in listed.crl_urls if url not in urls]
        return urls

    def retired(self, key_identifier: bytes) -> bool:
        """See :class:`mailbot.pki.issuer.CaDirectory` (an inactive row with this SKI)."""
        found = self.session.scalar(
            select(CertificationAuthority.id)
            .where(
                CertificationAuthority.active.is_(False),
                func.upper(CertificationAuthority.ski) == key_identifier.hex().upper(),
            )
            .limit(1)
        )
        return found is not None


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


class DbAccreditationRegister:
    """The list of accredited CAs as last imported (``ca import-tsl`` or the refresh job).

    Each answer is read once per instance: an instance lives for one transaction
    (a letter asks about the same key in step 7a and again for its CRL URLs), and
    its answers stay the same through it even if a new edition is imported meanwhile.
    """

    def __init__(self, session: Session) -> None:
        self.session = session
        self._current: tuple[ListEdition | None] | None = None
        self._keys: dict[bytes, ListedKey | None] = {}

    def edition(self) -> ListEdition | None:
        """See :class:`mailbot.trustlist.register.AccreditationRegister`."""
        if self._current is None:
            row = self.session.execute(_NEWEST_EDITION).first()
            self._current = (None if row is None else ListEdition(*row),)
        return self._current[0]

    def key(self, key_identifier: bytes) -> ListedKey | None:
        """See :class:`mailbot.trustlist.register.AccreditationRegister`.

        A key listed under several CAs (never seen, but the file allows it): the
        one listed most recently wins.
        """
        if key_identifier not in self._keys:
            self._keys[key_identifier] = self._read_key(key_identifier)
        return self._keys[key_identifier]

    def _read_key(self, key_identifier: bytes) -> ListedKey | None:
        current = self.edition()
        if current is None:
            return None
        row = self.session.scalars(_LISTED_KEY, {"ski": key_identifier.hex().upper()}).first()
        if row is None:
            return None
        # An edition without a record (dropped by a forced import of an older one, or
        # a version marked "not in the current edition"): only its number is known.
        listed_in = current
        if row.last_version != current.version:
            listed_in = self._edition_of(row.last_version) or ListEdition(
                row.last_version, current.published_at
            )
        return listed_key(row, listed_in, current)

    def _edition_of(self, version: int) -> ListEdition | None:
        row = self.session.execute(_EDITION_BY_VERSION, {"version": version}).first()
        return None if row is None else ListEdition(*row)


def listed_key(row: AccreditedKey, listed_in: ListEdition, current: ListEdition) -> ListedKey:
    """The register's value for a stored key (its CA and certificates loaded through it)."""
    authority: AccreditedCa = row.authority
    return ListedKey(
        key_identifier_hex=row.ski,
        authority_name=authority.name,
        short_name=authority.short_name,
        inn=authority.inn,
        ogrn=authority.ogrn,
        registry_number=authority.registry_number,
        status=AccreditationStatus(
            authority.status_text, authority.status_from, authority.status_to
        ),
        history=tuple(stored_status(item) for item in authority.history),
        crl_urls=tuple(row.crl_urls),
        certificates_der=tuple(c.certificate_der for c in row.certificates),
        listed_in=listed_in,
        current=current,
    )


def stored_status(item: dict[str, str | None]) -> AccreditationStatus:
    """A status history entry as ``accredited_cas.history`` stores it."""
    valid_to = item.get("to")
    return AccreditationStatus(
        text=str(item["text"]),
        valid_from=dt.datetime.fromisoformat(str(item["from"])),
        valid_to=dt.datetime.fromisoformat(valid_to) if valid_to else None,
    )


def status_item(status: AccreditationStatus) -> dict[str, str | None]:
    """How ``accredited_cas.history`` stores one status (the inverse of :func:`stored_status`)."""
    return {
        "text": status.text,
        "from": status.valid_from.isoformat(),
        "to": status.valid_to.isoformat() if status.valid_to else None,
    }
