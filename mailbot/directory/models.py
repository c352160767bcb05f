"""The database schema (SQLAlchemy 2.x declarative), shared by SQLite and PostgreSQL.

Tables, in the regulation's words:

* ``organisations``, ``subscribers``, ``trusted_addresses``: the subscriber directory;
* ``certification_authorities``: the CA directory;
* ``certificates``: certificates registered for subscribers (the store's index);
* ``letters``: the journal, one row per letter that reached the mailbox;
* ``outbox``: every letter mailbot sends (replies, follow-ups, alerts);
* ``quarantine``: certificates from unknown CAs waiting for an administrator;
* ``alerts``: administrative alerts, deduplicated by key;
* ``expiry_reminders``: one row per certificate and reminder threshold (sent or not);
* ``reports``: one row per period whose report letter was queued to the administrators;
* ``trust_list_editions``, ``accredited_cas``, ``accredited_keys``,
  ``accredited_certificates``: the Ministry's list of accredited CAs as last imported;
* ``web_users``: the web console's accounts; ``audit_log``: every change made through it.

Migrations live in ``mailbot/directory/migrations``; a test checks that the
migrated schema equals this module.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, validates
from sqlalchemy.types import TypeDecorator

from mailbot.addresses import normalize_address
from mailbot.directory.address_keys import derived_key_column, reply_recipient_key

# Stable constraint names, so migrations can refer to them on both databases.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UtcDateTime(TypeDecorator[dt.datetime]):
    """A timezone-aware UTC timestamp on both databases (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; pass an aware UTC time")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        assert isinstance(value, dt.datetime)
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


def utcnow() -> dt.datetime:
    """The current time, aware, in UTC."""
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    """Declarative base with the naming convention."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        dt.datetime: UtcDateTime(),
        dict[str, Any]: JSON,
        list[Any]: JSON,
    }


class Timestamped:
    """``created_at`` / ``updated_at`` columns."""

    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Organisation(Timestamped, Base):
    """A medical organisation (or other participant) of the fund."""

    __tablename__ = "organisations"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(500))
    inn: Mapped[str | None] = mapped_column(String(12), index=True)
    ogrn: Mapped[str | None] = mapped_column(String(15))
    #: The organisation's code in the fund's registry.
    registry_code: Mapped[str | None] = mapped_column(String(50), unique=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    subscribers: Mapped[list[Subscriber]] = relationship(back_populates="organisation")


class Subscriber(Timestamped, Base):
    """A person (абонент) who may register certificates from trusted addresses."""

    __tablename__ = "subscribers"

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    surname: Mapped[str | None] = mapped_column(String(200))
    given_names: Mapped[str | None] = mapped_column(String(200))
    title: Mapped[str | None] = mapped_column(String(500))
    #: Eleven digits, no separators; None when not yet known.
    snils: Mapped[str | None] = mapped_column(String(11), index=True)
    #: The person's own INN (12 digits), from a certificate.
    inn: Mapped[str | None] = mapped_column(String(12))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    #: Which fields were last taken from a certificate (field -> certificate thumbprint).
    certificate_fields: Mapped[dict[str, Any]] = mapped_column(default=dict)
    certificate_fields_at: Mapped[dt.datetime | None]

    organisation: Mapped[Organisation] = relationship(back_populates="subscribers")
    addresses: Mapped[list[TrustedAddress]] = relationship(back_populates="subscriber")
    certificates: Mapped[list[CertificateRecord]] = relationship(back_populates="subscriber")


class TrustedAddress(Base):
    """An e-mail address a subscriber's letters are accepted from (lower-case)."""

    __tablename__ = "trusted_addresses"
    __table_args__ = (UniqueConstraint("subscriber_id", "address"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    subscriber_id: Mapped[int] = mapped_column(ForeignKey("subscribers.id"), index=True)
    #: As the administrator sees it (lower-cased).
    address: Mapped[str] = mapped_column(String(320), index=True)
    #: ``normalize_address(address)``, what the sender gate looks up (filled on every insert).
    address_key: Mapped[str] = derived_key_column(
        "address_key", ["address"], lambda row: normalize_address(row["address"]), index=True
    )
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    subscriber: Mapped[Subscriber] = relationship(back_populates="addresses")

    @validates("address")
    def _keep_key(self, _name: str, address: str) -> str:
        # An ORM assignment sets the key too, so its UPDATE sets both columns.
        self.address_key = normalize_address(address)
        return address


class CertificationAuthority(Timestamped, Base):
    """A registered CA certificate. Several rows may share one DN (yearly re-keys)."""

    __tablename__ = "certification_authorities"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(500))
    subject_dn: Mapped[str] = mapped_column(Text)
    #: Hex of the DER of the subject name, for exact matching with an issuer name.
    subject_der_hex: Mapped[str] = mapped_column(Text, index=True)
    #: Subject Key Identifier, upper-case hex.
    ski: Mapped[str | None] = mapped_column(String(128), index=True)
    certificate_der: Mapped[bytes] = mapped_column(LargeBinary)
    thumbprint_sha1: Mapped[str] = mapped_column(String(40), unique=True)
    not_before: Mapped[dt.datetime]
    not_after: Mapped[dt.datetime]
    crl_urls: Mapped[list[Any]] = mapped_column(default=list)
    aia_urls: Mapped[list[Any]] = mapped_column(default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    #: "manual" (added by an administrator), "automatic" (learned from certificates) or
    #: "trust_list" (registered from the list of accredited CAs, policy ``register``).
    source: Mapped[str] = mapped_column(String(20), default="manual")
    #: For "trust_list": the list's ``Версия`` that registered this key.
    list_version: Mapped[int | None] = mapped_column(Integer)
    #: Why the list no longer vouches for this key ("key_gone", "accreditation_lost"), or None.
    list_flag: Mapped[str | None] = mapped_column(String(30))
    list_flagged_at: Mapped[dt.datetime | None]


class CertificateRecord(Base):
    """A subscriber's certificate registered through mailbot (or imported)."""

    __tablename__ = "certificates"

    id: Mapped[int] = mapped_column(primary_key=True)
    subscriber_id: Mapped[int] = mapped_column(ForeignKey("subscribers.id"), index=True)
    ca_id: Mapped[int | None] = mapped_column(ForeignKey("certification_authorities.id"))
    #: Upper-case hex as Windows shows it.
    serial: Mapped[str] = mapped_column(String(128), index=True)
    issuer_dn: Mapped[str] = mapped_column(Text)
    subject_dn: Mapped[str] = mapped_column(Text)
    subject_cn: Mapped[str | None] = mapped_column(String(500))
    snils: Mapped[str | None] = mapped_column(String(11))
    not_before: Mapped[dt.datetime]
    not_after: Mapped[dt.datetime] = mapped_column(index=True)
    thumbprint_sha1: Mapped[str] = mapped_column(String(40), unique=True)
    thumbprint_sha256: Mapped[str] = mapped_column(String(64))
    store_path: Mapped[str] = mapped_column(Text)
    registered_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    letter_id: Mapped[int | None] = mapped_column(ForeignKey("letters.id"))
    #: "valid", "revoked" or "expired".
    status: Mapped[str] = mapped_column(String(20), default="valid")
    revoked_at: Mapped[dt.datetime | None]
    revocation_reason: Mapped[str | None] = mapped_column(String(50))

    subscriber: Mapped[Subscriber] = relationship(back_populates="certificates")


class LetterRecord(Base):
    """The journal: one row per letter that reached the mailbox (or a CLI ``process``)."""

    __tablename__ = "letters"
    __table_args__ = (
        UniqueConstraint("mailbox", "uidvalidity", "uid"),
        Index("ix_letters_message_id_sha256", "message_id", "sha256"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    mailbox: Mapped[str] = mapped_column(String(200))
    uidvalidity: Mapped[int | None] = mapped_column(BigInteger)
    uid: Mapped[int | None] = mapped_column(BigInteger)
    message_id: Mapped[str | None] = mapped_column(String(998))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    sender: Mapped[str | None] = mapped_column(String(320), index=True)
    subject: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    processed_at: Mapped[dt.datetime | None]
    #: "claimed", "done", "deferred" or "failed".
    state: Mapped[str] = mapped_column(String(20), default="claimed", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    route: Mapped[str | None] = mapped_column(String(100))
    #: A template key, "no_reply", or "leave".
    outcome: Mapped[str | None] = mapped_column(String(50), index=True)
    template_key: Mapped[str | None] = mapped_column(String(50))
    #: Evidence of every step (gate, route, attachment, CA, CRL, SNILS, install).
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    rule_hits: Mapped[list[Any]] = mapped_column(default=list)
    subscriber_id: Mapped[int | None] = mapped_column(ForeignKey("subscribers.id"))
    # No foreign key: certificates.letter_id already points back (avoids a cycle).
    certificate_id: Mapped[int | None] = mapped_column(Integer)
    archive_path: Mapped[str | None] = mapped_column(Text)
    #: Where the letter was filed on the server, once it was.
    filed_to: Mapped[str | None] = mapped_column(String(200))


class OutboxMessage(Base):
    """A letter mailbot sends; the row is the source of truth for "sent exactly once"."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_recipient_key_created_at", "recipient_key", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    letter_id: Mapped[int | None] = mapped_column(ForeignKey("letters.id"), index=True)
    #: "reply", "followup", "alert", "reminder", "notice".
    kind: Mapped[str] = mapped_column(String(20))
    template_key: Mapped[str | None] = mapped_column(String(50))
    recipients: Mapped[list[Any]] = mapped_column(default=list)
    message_id: Mapped[str] = mapped_column(String(998), unique=True)
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    #: "pending", "sent" or "failed".
    status: Mapped[str] = mapped_column(String(20), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[dt.datetime | None]
    #: For a reply, its recipient's ``reply_count_key`` (the reply cap counts by it); else NULL.
    recipient_key: Mapped[str | None] = derived_key_column(
        "recipient_key",
        ["kind", "recipients"],
        lambda row: reply_recipient_key(row.get("kind"), row.get("recipients")),
    )


class QuarantinedCertificate(Base):
    """A certificate from an unknown CA, kept until an administrator decides."""

    __tablename__ = "quarantine"

    id: Mapped[int] = mapped_column(primary_key=True)
    letter_id: Mapped[int | None] = mapped_column(ForeignKey("letters.id"))
    subscriber_id: Mapped[int | None] = mapped_column(ForeignKey("subscribers.id"))
    sender: Mapped[str] = mapped_column(String(320))
    thumbprint_sha1: Mapped[str] = mapped_column(String(40), index=True)
    serial: Mapped[str] = mapped_column(String(128))
    issuer_dn: Mapped[str] = mapped_column(Text)
    authority_key_id: Mapped[str | None] = mapped_column(String(128), index=True)
    aia_urls: Mapped[list[Any]] = mapped_column(default=list)
    path: Mapped[str] = mapped_column(Text)
    #: "pending", "registered", "rejected" or "failed".
    status: Mapped[str] = mapped_column(String(20), default="pending", index=True)
    decided_by: Mapped[str | None] = mapped_column(String(200))
    decided_at: Mapped[dt.datetime | None]
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Alert(Base):
    """An administrative alert; ``dedup_key`` keeps one alert per problem per period."""

    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(50), index=True)
    dedup_key: Mapped[str] = mapped_column(String(300), unique=True)
    subject: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    outbox_id: Mapped[int | None] = mapped_column(ForeignKey("outbox.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ExpiryReminder(Base):
    """What became of one reminder threshold of one certificate; at most one row per pair.

    The unique constraint is what makes "once per threshold" survive restarts and
    a CLI run racing the daemon: the second insert fails and is rolled back.
    """

    __tablename__ = "expiry_reminders"
    __table_args__ = (UniqueConstraint("certificate_id", "threshold_days"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    certificate_id: Mapped[int] = mapped_column(ForeignKey("certificates.id"))
    #: The configured threshold (``reminders.expiry_days``) this row settles.
    threshold_days: Mapped[int] = mapped_column(Integer)
    #: "sent" (queued in the outbox), "skipped" (a nearer threshold was due at the
    #: same time), "superseded" (a later certificate is registered) or
    #: "undeliverable" (no active trusted address).
    status: Mapped[str] = mapped_column(String(20), index=True)
    #: Whole days left when the threshold was settled.
    days_left: Mapped[int] = mapped_column(Integer)
    recipients: Mapped[list[Any]] = mapped_column(default=list)
    outbox_id: Mapped[int | None] = mapped_column(ForeignKey("outbox.id"))
    #: For "superseded": the newer certificate.
    superseded_by_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class SentReport(Base):
    """A periodic report letter queued to the administrators; at most one row per period.

    Written in the transaction that queues the letter: the unique ``period_key``
    makes "once per period" survive restarts and two mailbots racing (the
    second insert fails and its letter is rolled back with it).
    """

    __tablename__ = "reports"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: ``<period>:<first local day>``, e.g. ``weekly:2026-11-23``.
    period_key: Mapped[str] = mapped_column(String(40), unique=True)
    #: "weekly" or "daily" (``report.period`` when it was sent).
    period: Mapped[str] = mapped_column(String(10))
    period_start: Mapped[dt.datetime]
    period_end: Mapped[dt.datetime]
    outbox_id: Mapped[int] = mapped_column(ForeignKey("outbox.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class TrustListEdition(Base):
    """One imported publication of the list of accredited CAs (``Версия``, ``Дата``)."""

    __tablename__ = "trust_list_editions"

    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger, unique=True)
    published_at: Mapped[dt.datetime]
    #: SHA-256 of the file's bytes, lower-case hex.
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    #: Where it came from: the URL, or the file name given to ``ca import-tsl``.
    source: Mapped[str] = mapped_column(Text)
    #: The HTTP validators of the download, for the next conditional GET.
    etag: Mapped[str | None] = mapped_column(String(500))
    last_modified: Mapped[str | None] = mapped_column(String(100))
    imported_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class AccreditedCa(Base):
    """One CA of the list (``УдостоверяющийЦентр``) as of the last edition that listed it."""

    __tablename__ = "accredited_cas"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Stable identity across editions: ``reg:<РеестровыйНомер>``, else ``ogrn:``, ``name:``.
    identity: Mapped[str] = mapped_column(String(600), unique=True)
    name: Mapped[str] = mapped_column(Text)
    short_name: Mapped[str | None] = mapped_column(Text)
    inn: Mapped[str | None] = mapped_column(String(20))
    ogrn: Mapped[str | None] = mapped_column(String(20))
    registry_number: Mapped[str | None] = mapped_column(String(50), index=True)
    email: Mapped[str | None] = mapped_column(String(320))
    info_url: Mapped[str | None] = mapped_column(Text)
    #: The current ``Статус`` as written and its period.
    status_text: Mapped[str] = mapped_column(String(100))
    status_from: Mapped[dt.datetime]
    status_to: Mapped[dt.datetime | None]
    #: Earlier statuses: ``[{"text", "from", "to"}]`` (ISO 8601 UTC), in file order.
    history: Mapped[list[Any]] = mapped_column(default=list)
    #: The newest edition that listed this CA; below the current edition: gone from the list.
    last_version: Mapped[int] = mapped_column(BigInteger)
    first_version: Mapped[int] = mapped_column(BigInteger)

    keys: Mapped[list[AccreditedKey]] = relationship(
        back_populates="authority", cascade="all, delete-orphan"
    )


class AccreditedKey(Base):
    """One key of a listed CA (``ИдентификаторКлюча``) with its CRL addresses."""

    __tablename__ = "accredited_keys"
    __table_args__ = (UniqueConstraint("ca_id", "ski"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    ca_id: Mapped[int] = mapped_column(ForeignKey("accredited_cas.id"), index=True)
    #: Upper-case hex, as ``certification_authorities.ski``.
    ski: Mapped[str] = mapped_column(String(128), index=True)
    crl_urls: Mapped[list[Any]] = mapped_column(default=list)
    last_version: Mapped[int] = mapped_column(BigInteger)
    first_version: Mapped[int] = mapped_column(BigInteger)

    authority: Mapped[AccreditedCa] = relationship(back_populates="keys")
    certificates: Mapped[list[AccreditedCertificate]] = relationship(
        back_populates="key", cascade="all, delete-orphan"
    )


class AccreditedCertificate(Base):
    """One certificate of a listed key, checked on import (SHA-1 and SKI match)."""

    __tablename__ = "accredited_certificates"
    __table_args__ = (UniqueConstraint("key_id", "thumbprint_sha1"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key_id: Mapped[int] = mapped_column(ForeignKey("accredited_keys.id"), index=True)
    thumbprint_sha1: Mapped[str] = mapped_column(String(40), index=True)
    certificate_der: Mapped[bytes] = mapped_column(LargeBinary)
    not_before: Mapped[dt.datetime]
    not_after: Mapped[dt.datetime]
    subject_text: Mapped[str] = mapped_column(Text)

    key: Mapped[AccreditedKey] = relationship(back_populates="certificates")


class WebUser(Base):
    """An account of the web console (``mailbot web user add``): a role and an argon2id hash."""

    __tablename__ = "web_users"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    #: "viewer", "operator" or "admin" (:class:`mailbot.web.roles.Role`).
    role: Mapped[str] = mapped_column(String(20))
    #: argon2id (PHC string); "" for an account that only logs in through the reverse proxy.
    password_hash: Mapped[str] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class AuditEntry(Base):
    """One change made through the web console (or to its accounts): who, when, what."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    #: The web user's name, or ``cli:<os user>`` for a command.
    actor: Mapped[str] = mapped_column(String(200))
    #: A dotted verb, e.g. ``web_user.disable``, ``letter.download``.
    action: Mapped[str] = mapped_column(String(100), index=True)
    #: What it was done to, e.g. ``web_user:alice``, ``letter:42``.
    target: Mapped[str] = mapped_column(String(300), default="")
    #: Anything more (never a password, never a whole SNILS).
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
