"""What the list of accredited CAs says about one CA key, as the checks ask it.

The regulation's checks stay pure: they get an :class:`AccreditationRegister`
(:class:`mailbot.app.adapters.DbAccreditationRegister` implements it over the
last imported edition; :class:`InMemoryRegister` serves tests and one-off
files) and ask it about the issuing key of a certificate.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from mailbot.trustlist.model import AccreditationStatus, StatusKind, TrustList


@dataclass(frozen=True, slots=True)
class ListEdition:
    """One publication of the list: ``Версия`` and ``Дата``."""

    version: int
    published_at: datetime


@dataclass(frozen=True, slots=True)
class ListedKey:
    """One CA key as the list describes it, with its CA's accreditation."""

    #: Upper-case hex, as the CA directory stores a SKI.
    key_identifier_hex: str
    authority_name: str
    short_name: str | None
    inn: str | None
    ogrn: str | None
    registry_number: str | None
    status: AccreditationStatus
    history: tuple[AccreditationStatus, ...]
    crl_urls: tuple[str, ...]
    #: DER of the key's certificates, checked on import (SHA-1 and SKI match).
    certificates_der: tuple[bytes, ...] = field(repr=False)
    #: The newest edition that lists this key.
    listed_in: ListEdition
    #: The newest edition imported; when it is newer than ``listed_in``, the key is gone.
    current: ListEdition

    @property
    def present(self) -> bool:
        """Whether the newest imported edition still lists this key."""
        return self.listed_in.version == self.current.version

    @property
    def accredited(self) -> bool:
        """Listed in the newest edition, with the status «Действует»."""
        return self.present and self.status.kind is StatusKind.ACTIVE

    def accredited_on(self, when: datetime) -> bool | None:
        """Whether the CA was accredited at ``when`` (see :func:`accredited_on`)."""
        return accredited_on((*self.history, self.status), when)


def accredited_on(statuses: Iterable[AccreditationStatus], when: datetime) -> bool | None:
    """Whether a status period covering ``when`` says «Действует».

    ``None`` when no period covers ``when`` (the history does not go back that
    far) or the covering status is one this code does not know: the list then
    says nothing, and nothing is held against the certificate. A period runs
    from ``valid_from`` (inclusive) to ``valid_to`` (exclusive; open when absent);
    where periods overlap, the one that started last decides.
    """
    covering = [
        s for s in statuses if s.valid_from <= when and (s.valid_to is None or when < s.valid_to)
    ]
    if not covering:
        return None
    kind = max(covering, key=lambda s: s.valid_from).kind
    return None if kind is None else kind is StatusKind.ACTIVE


class AccreditationRegister(Protocol):
    """What the checks ask the list of accredited CAs."""

    def edition(self) -> ListEdition | None:
        """The newest imported edition, or ``None`` when no list was ever imported."""
        ...

    def key(self, key_identifier: bytes) -> ListedKey | None:
        """What the list says about the CA key with this identifier (None: never listed)."""
        ...


@dataclass(frozen=True)
class InMemoryRegister:
    """An :class:`AccreditationRegister` over one list held in memory."""

    keys: dict[str, ListedKey]
    current: ListEdition | None

    @classmethod
    def from_trust_list(cls, trust_list: TrustList) -> InMemoryRegister:
        """Every key of every authority of ``trust_list`` (the first listing wins)."""
        edition = ListEdition(trust_list.version, trust_list.published_at)
        keys: dict[str, ListedKey] = {}
        for authority in trust_list.authorities:
            for key in authority.keys:
                keys.setdefault(
                    key.key_identifier_hex,
                    ListedKey(
                        key_identifier_hex=key.key_identifier_hex,
                        authority_name=authority.name,
                        short_name=authority.short_name,
                        inn=authority.inn,
                        ogrn=authority.ogrn,
                        registry_number=authority.registry_number,
                        status=authority.status,
                        history=authority.history,
                        crl_urls=key.crl_urls,
                        certificates_der=tuple(c.der for c in key.certificates),
                        listed_in=edition,
                        current=edition,
                    ),
                )
        return cls(keys, edition)

    @classmethod
    def empty(cls) -> InMemoryRegister:
        """A register with no list imported."""
        return cls({}, None)

    def edition(self) -> ListEdition | None:
        """See :class:`AccreditationRegister`."""
        return self.current

    def key(self, key_identifier: bytes) -> ListedKey | None:
        """See :class:`AccreditationRegister`."""
        return self.keys.get(key_identifier.hex().upper())
