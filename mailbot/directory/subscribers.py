"""The subscriber directory: organisations, subscribers and trusted addresses.

Functions take an open :class:`~sqlalchemy.orm.Session` and leave committing
to the caller, so a CLI command or an import runs in one transaction.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import bindparam, or_, select
from sqlalchemy.orm import Session, contains_eager, selectinload

from mailbot.addresses import MAX_ADDRESS_CHARS, normalize_address
from mailbot.directory.models import Organisation, Subscriber, TrustedAddress
from mailbot.identifiers import digits_only, normalise_inn, normalise_ogrn, normalise_snils


class DirectoryError(Exception):
    """A directory operation cannot be done (unknown id, duplicate, bad value).

    *reason* names the rule that refused (``duplicate_code``, ``bad_address`` ...)
    so that a page can say it in its own words; the message is for the CLI and logs.
    """

    def __init__(self, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason


def normalise_address(address: str) -> str:
    """A trusted address as it is stored and shown: lower-cased, checked to be an address.

    Only the administrator's view; the gate compares :func:`normalize_address`
    keys, kept in ``trusted_addresses.address_key``.
    """
    value = address.strip().lower()
    if value.count("@") != 1 or value.startswith("@") or value.endswith("@") or " " in value:
        raise DirectoryError(f"{address!r} is not an e-mail address", "bad_address")
    # IDNA can lengthen an address: its key must fit the indexed column as well.
    if max(len(value), len(normalize_address(value))) > MAX_ADDRESS_CHARS:
        raise DirectoryError(
            f"{address!r} is longer than {MAX_ADDRESS_CHARS} characters", "long_address"
        )
    return value


def add_organisation(
    session: Session,
    name: str,
    inn: str | None = None,
    ogrn: str | None = None,
    registry_code: str | None = None,
    active: bool = True,
) -> Organisation:
    """Create an organisation; INN and OGRN are validated."""
    organisation = Organisation(active=active)
    _set_organisation_fields(session, organisation, name, inn, ogrn, registry_code)
    session.add(organisation)
    session.flush()
    return organisation


def update_organisation(
    session: Session,
    organisation_id: int,
    name: str,
    inn: str | None = None,
    ogrn: str | None = None,
    registry_code: str | None = None,
) -> Organisation:
    """Replace an organisation's name, INN, OGRN and registry code (empty: none)."""
    organisation = get_organisation(session, organisation_id)
    _set_organisation_fields(session, organisation, name, inn, ogrn, registry_code)
    session.flush()
    return organisation


def _set_organisation_fields(
    session: Session,
    organisation: Organisation,
    name: str,
    inn: str | None,
    ogrn: str | None,
    registry_code: str | None,
) -> None:
    """Check and set the fields :func:`add_organisation` and :func:`update_organisation` take."""
    if not name.strip():
        raise DirectoryError("organisation name is empty", "empty_name")
    # Every value is checked before any is set: a refused edit changes nothing.
    inn = normalise_inn(inn) if inn else None
    ogrn = normalise_ogrn(ogrn) if ogrn else None
    if registry_code:
        holder = find_organisation_by_code(session, registry_code)
        if holder is not None and holder is not organisation:
            raise DirectoryError(
                f"an organisation with registry code {registry_code!r} exists", "duplicate_code"
            )
    organisation.name = name.strip()
    organisation.inn = inn
    organisation.ogrn = ogrn
    organisation.registry_code = registry_code or None


def set_organisation_active(session: Session, organisation_id: int, active: bool) -> Organisation:
    """Mark an organisation active or inactive (its subscribers' letters go unanswered)."""
    organisation = get_organisation(session, organisation_id)
    organisation.active = active
    return organisation


def find_organisation_by_code(session: Session, code: str) -> Organisation | None:
    """The organisation with this registry code, if any."""
    return session.scalar(select(Organisation).where(Organisation.registry_code == code))


def get_organisation(session: Session, organisation_id: int) -> Organisation:
    """The organisation with this id, or :class:`DirectoryError`."""
    organisation = session.get(Organisation, organisation_id)
    if organisation is None:
        raise DirectoryError(f"no organisation with id {organisation_id}", "no_organisation")
    return organisation


def list_organisations(session: Session) -> Sequence[Organisation]:
    """All organisations by name."""
    return session.scalars(select(Organisation).order_by(Organisation.name)).all()


def search_organisations(
    session: Session, text: str, limit: int, offset: int = 0
) -> Sequence[Organisation]:
    """Organisations by name whose name contains *text* or whose INN, OGRN or code is it."""
    query = select(Organisation)
    if text:
        query = query.where(
            or_(
                Organisation.name.icontains(text, autoescape=True),
                Organisation.inn == digits_only(text),
                Organisation.ogrn == digits_only(text),
                Organisation.registry_code == text,
            )
        )
    query = query.order_by(Organisation.name, Organisation.id).limit(limit).offset(offset)
    return session.scalars(query).all()


def search_subscribers(
    session: Session, text: str, limit: int, offset: int = 0
) -> Sequence[Subscriber]:
    """Subscribers (with organisation and addresses) whose surname or given names contain
    *text*, whose SNILS is it (separators allowed), or who trust an address containing it."""
    query = select(Subscriber).options(
        selectinload(Subscriber.addresses), selectinload(Subscriber.organisation)
    )
    if text:
        trusting = select(TrustedAddress.subscriber_id).where(
            TrustedAddress.address.icontains(text.strip().lower(), autoescape=True)
        )
        query = query.where(
            or_(
                Subscriber.surname.icontains(text, autoescape=True),
                Subscriber.given_names.icontains(text, autoescape=True),
                Subscriber.snils == digits_only(text),
                Subscriber.id.in_(trusting),
            )
        )
    query = query.order_by(Subscriber.surname, Subscriber.id).limit(limit).offset(offset)
    return session.scalars(query).all()


def add_subscriber(
    session: Session,
    organisation_id: int,
    surname: str | None = None,
    given_names: str | None = None,
    title: str | None = None,
    snils: str | None = None,
    addresses: Sequence[str] = (),
    active: bool = True,
) -> Subscriber:
    """Create a subscriber with its trusted addresses; SNILS is validated."""
    get_organisation(session, organisation_id)
    subscriber = Subscriber(
        organisation_id=organisation_id,
        surname=surname or None,
        given_names=given_names or None,
        title=title or None,
        snils=normalise_snils(snils) if snils else None,
        active=active,
        certificate_fields={},
    )
    session.add(subscriber)
    session.flush()
    for address in addresses:
        add_address(session, subscriber.id, address)
    return subscriber


def get_subscriber(session: Session, subscriber_id: int) -> Subscriber:
    """The subscriber with this id (addresses loaded), or :class:`DirectoryError`."""
    subscriber = session.get(
        Subscriber, subscriber_id, options=[selectinload(Subscriber.addresses)]
    )
    if subscriber is None:
        raise DirectoryError(f"no subscriber with id {subscriber_id}", "no_subscriber")
    return subscriber


def list_subscribers(session: Session, organisation_id: int | None = None) -> Sequence[Subscriber]:
    """Subscribers (optionally of one organisation) with their addresses."""
    query = select(Subscriber).options(
        selectinload(Subscriber.addresses), selectinload(Subscriber.organisation)
    )
    if organisation_id is not None:
        query = query.where(Subscriber.organisation_id == organisation_id)
    return session.scalars(query.order_by(Subscriber.surname, Subscriber.id)).all()


def update_subscriber(
    session: Session,
    subscriber_id: int,
    surname: str | None,
    given_names: str | None,
    title: str | None,
    snils: str | None,
) -> Subscriber:
    """Replace a subscriber's name, title and SNILS (empty: none); SNILS is validated."""
    subscriber = get_subscriber(session, subscriber_id)
    value = normalise_snils(snils) if snils else None  # checked before anything changes
    subscriber.surname = surname or None
    subscriber.given_names = given_names or None
    subscriber.title = title or None
    subscriber.snils = value
    return subscriber


def set_subscriber_active(session: Session, subscriber_id: int, active: bool) -> Subscriber:
    """Mark a subscriber active or inactive (letters go unanswered)."""
    subscriber = get_subscriber(session, subscriber_id)
    subscriber.active = active
    return subscriber


def set_snils(session: Session, subscriber_id: int, snils: str | None) -> Subscriber:
    """Set (or clear, with None) a subscriber's SNILS."""
    subscriber = get_subscriber(session, subscriber_id)
    subscriber.snils = normalise_snils(snils) if snils else None
    return subscriber


def add_address(
    session: Session, subscriber_id: int, address: str, exists_ok: bool = True
) -> TrustedAddress:
    """Trust *address* for the subscriber (re-activates a removed one).

    Without *exists_ok*, an address the subscriber trusts already is refused
    (``duplicate_address``) rather than accepted again.
    """
    get_subscriber(session, subscriber_id)
    value = normalise_address(address)
    existing = session.scalar(
        select(TrustedAddress).where(
            TrustedAddress.subscriber_id == subscriber_id, TrustedAddress.address == value
        )
    )
    if existing is not None:
        if existing.active and not exists_ok:
            raise DirectoryError(
                f"{value} is a trusted address of subscriber {subscriber_id} already",
                "duplicate_address",
            )
        existing.active = True
        return existing
    trusted = TrustedAddress(subscriber_id=subscriber_id, address=value, active=True)
    session.add(trusted)
    session.flush()
    return trusted


def remove_address(session: Session, subscriber_id: int, address: str) -> None:
    """Stop trusting *address* for the subscriber (kept inactive for the record)."""
    value = normalise_address(address)
    existing = session.scalar(
        select(TrustedAddress).where(
            TrustedAddress.subscriber_id == subscriber_id, TrustedAddress.address == value
        )
    )
    if existing is None or not existing.active:
        raise DirectoryError(
            f"{value} is not a trusted address of subscriber {subscriber_id}", "not_trusted"
        )
    existing.active = False


def list_addresses(session: Session, subscriber_id: int | None = None) -> Sequence[TrustedAddress]:
    """Trusted addresses, optionally of one subscriber."""
    query = select(TrustedAddress).options(selectinload(TrustedAddress.subscriber))
    if subscriber_id is not None:
        query = query.where(TrustedAddress.subscriber_id == subscriber_id)
    return session.scalars(query.order_by(TrustedAddress.address)).all()


def search_addresses(
    session: Session, text: str, limit: int, offset: int = 0
) -> Sequence[TrustedAddress]:
    """Trusted addresses (active and removed, with their subscribers) containing *text*."""
    query = select(TrustedAddress).options(
        selectinload(TrustedAddress.subscriber).selectinload(Subscriber.organisation)
    )
    if text:
        query = query.where(TrustedAddress.address.icontains(text.strip().lower(), autoescape=True))
    query = query.order_by(TrustedAddress.address, TrustedAddress.id).limit(limit).offset(offset)
    return session.scalars(query).all()


# Built once (the sender gate runs it for every letter): statement building costs CPU.
_TRUSTING = (
    select(Subscriber)
    .join(TrustedAddress, TrustedAddress.subscriber_id == Subscriber.id)
    .join(Organisation, Organisation.id == Subscriber.organisation_id)
    .where(
        TrustedAddress.address_key == bindparam("address_key"),
        TrustedAddress.active.is_(True),
        Subscriber.active.is_(True),
        Organisation.active.is_(True),
    )
    # The organisation comes with the row (the gate names it): no second query.
    .options(contains_eager(Subscriber.organisation))
    .order_by(Subscriber.id)
)


def subscribers_trusting(session: Session, address: str) -> Sequence[Subscriber]:
    """Active subscribers of active organisations whose active trusted addresses include
    *address*, compared by :func:`normalize_address`. This is the regulation's sender gate
    lookup: one equality on the indexed ``address_key``, so a domain stored in Unicode
    matches one written in punycode and the other way round."""
    rows = session.scalars(_TRUSTING, {"address_key": normalize_address(address)})
    # One subscriber may trust two spellings of one address (Unicode and punycode).
    found = {subscriber.id: subscriber for subscriber in rows}
    return list(found.values())
