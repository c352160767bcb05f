"""The subscriber directory: organisations, subscribers and trusted addresses.

Functions take an open :class:`~sqlalchemy.orm.Session` and leave committing
to the caller, so a CLI command or an import runs in one transaction.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session, contains_eager, selectinload

from mailbot.addresses import MAX_ADDRESS_CHARS, normalize_address
from mailbot.directory.models import Organisation, Subscriber, TrustedAddress
from mailbot.identifiers import normalise_inn, normalise_ogrn, normalise_snils


class DirectoryError(Exception):
    """A directory operation cannot be done (unknown id, duplicate, bad value)."""


def normalise_address(address: str) -> str:
    """A trusted address as it is stored and shown: lower-cased, checked to be an address.

    Only the administrator's view; the gate compares :func:`normalize_address`
    keys, kept in ``trusted_addresses.address_key``.
    """
    value = address.strip().lower()
    if value.count("@") != 1 or value.startswith("@") or value.endswith("@") or " " in value:
        raise DirectoryError(f"{address!r} is not an e-mail address")
    # IDNA can lengthen an address: its key must fit the indexed column as well.
    if max(len(value), len(normalize_address(value))) > MAX_ADDRESS_CHARS:
        raise DirectoryError(f"{address!r} is longer than {MAX_ADDRESS_CHARS} characters")
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
    if not name.strip():
        raise DirectoryError("organisation name is empty")
    if registry_code and find_organisation_by_code(session, registry_code) is not None:
        raise DirectoryError(f"an organisation with registry code {registry_code!r} exists")
    organisation = Organisation(
        name=name.strip(),
        inn=normalise_inn(inn) if inn else None,
        ogrn=normalise_ogrn(ogrn) if ogrn else None,
        registry_code=registry_code or None,
        active=active,
    )
    session.add(organisation)
    session.flush()
    return organisation


def find_organisation_by_code(session: Session, code: str) -> Organisation | None:
    """The organisation with this registry code, if any."""
    return session.scalar(select(Organisation).where(Organisation.registry_code == code))


def get_organisation(session: Session, organisation_id: int) -> Organisation:
    """The organisation with this id, or :class:`DirectoryError`."""
    organisation = session.get(Organisation, organisation_id)
    if organisation is None:
        raise DirectoryError(f"no organisation with id {organisation_id}")
    return organisation


def list_organisations(session: Session) -> Sequence[Organisation]:
    """All organisations by name."""
    return session.scalars(select(Organisation).order_by(Organisation.name)).all()


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
        raise DirectoryError(f"no subscriber with id {subscriber_id}")
    return subscriber


def list_subscribers(session: Session, organisation_id: int | None = None) -> Sequence[Subscriber]:
    """Subscribers (optionally of one organisation) with their addresses."""
    query = select(Subscriber).options(
        selectinload(Subscriber.addresses), selectinload(Subscriber.organisation)
    )
    if organisation_id is not None:
        query = query.where(Subscriber.organisation_id == organisation_id)
    return session.scalars(query.order_by(Subscriber.surname, Subscriber.id)).all()


def set_snils(session: Session, subscriber_id: int, snils: str | None) -> Subscriber:
    """Set (or clear, with None) a subscriber's SNILS."""
    subscriber = get_subscriber(session, subscriber_id)
    subscriber.snils = normalise_snils(snils) if snils else None
    return subscriber


def add_address(session: Session, subscriber_id: int, address: str) -> TrustedAddress:
    """Trust *address* for the subscriber (re-activates a removed one)."""
    get_subscriber(session, subscriber_id)
    value = normalise_address(address)
    existing = session.scalar(
        select(TrustedAddress).where(
            TrustedAddress.subscriber_id == subscriber_id, TrustedAddress.address == value
        )
    )
    if existing is not None:
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
        raise DirectoryError(f"{value} is not a trusted address of subscriber {subscriber_id}")
    existing.active = False


def list_addresses(session: Session, subscriber_id: int | None = None) -> Sequence[TrustedAddress]:
    """Trusted addresses, optionally of one subscriber."""
    query = select(TrustedAddress).options(selectinload(TrustedAddress.subscriber))
    if subscriber_id is not None:
        query = query.where(TrustedAddress.subscriber_id == subscriber_id)
    return session.scalars(query.order_by(TrustedAddress.address)).all()


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
