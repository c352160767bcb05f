"""Applying many directory rows in one transaction: lookups in memory, writes in chunks.

:class:`DirectoryLoader` reads the organisations, subscribers and trusted addresses
once into dicts, resolves each row against them exactly as a row-by-row import
would (rows see the effect of the rows before them), and writes what changed with
one ``executemany`` per table and chunk instead of an ORM flush per row.

Matching rules: an organisation by registry code, else by INN, else by exact name;
a subscriber within the organisation by SNILS, else by surname + given names. When
several records share a key, the oldest (lowest id) wins, as the database's first
row would. A matched subscriber gets the row's non-empty fields and its ``active``;
a matched organisation gets the row's ``organisation_active`` when the row has one
(nothing else of an existing organisation changes). Nothing unchanged is written, and
every row is counted as added, updated or unchanged.
"""

from __future__ import annotations

import bisect
import itertools
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal, Union

from sqlalchemy import CursorResult, bindparam, func, insert, select, text, update
from sqlalchemy.orm import Session

from mailbot.directory.models import Organisation, Subscriber, TrustedAddress

#: Rows fetched per round trip while preloading (bounds the driver's buffer).
PRELOAD_BATCH = 10_000
#: *n* new ids of a PostgreSQL table's ``id`` sequence.
_NEXT_IDS = text("SELECT nextval(pg_get_serial_sequence(:table, 'id')) FROM generate_series(1, :n)")


@dataclass(frozen=True)
class DirectoryRow:
    """One validated row: an organisation, a subscriber of it and the subscriber's addresses."""

    organisation: str
    organisation_code: str | None
    organisation_inn: str | None
    organisation_ogrn: str | None
    surname: str | None
    given_names: str | None
    title: str | None
    snils: str | None
    addresses: tuple[str, ...]
    active: bool
    #: The organisation's ``active`` flag; None leaves an existing organisation's as it is.
    organisation_active: bool | None = None

    @property
    def organisation_only(self) -> bool:
        """Whether the row names only an organisation (one without subscribers is exported so)."""
        return self.surname is None and self.snils is None


#: How :meth:`DirectoryLoader.apply` counted a row.
RowOutcome = Literal["added", "updated", "unchanged"]


class RowConflict(Exception):
    """A row contradicts an earlier row of the same file."""


@dataclass
class LoadCounts:
    """What the loader created and updated so far."""

    organisations_created: int = 0
    organisations_updated: int = 0
    subscribers_created: int = 0
    subscribers_updated: int = 0
    addresses_added: int = 0
    #: Every applied row is one of these three.
    rows_added: int = 0
    rows_updated: int = 0
    rows_unchanged: int = 0


#: Subscribers under one key: the subscriber, or a list of several (oldest first).
#: Lists only where keys repeat keeps 100,000 subscribers' indexes small.
_Entry = Union["_Subscriber", list["_Subscriber"]]


class _Organisation:
    """An organisation as the loader knows it, with its subscribers indexed."""

    __slots__ = ("active", "active_in_file", "by_name", "by_snils", "existed", "id")

    def __init__(self, organisation_id: int | None, active: bool) -> None:
        self.id = organisation_id
        #: Whether it was in the database before this import (only those count as updated).
        self.existed = organisation_id is not None
        self.active = active
        #: The ``organisation_active`` an earlier row of the file gave, if any.
        self.active_in_file: bool | None = None
        #: SNILS -> subscribers with it.
        self.by_snils: dict[str, _Entry] = {}
        #: (surname, given names) -> subscribers with them (only those with a surname).
        self.by_name: dict[tuple[str, str | None], _Entry] = {}


class _Subscriber:
    """A subscriber as the loader knows it; ``id`` is None until it is inserted."""

    __slots__ = (
        "active",
        "addresses",
        "given_names",
        "id",
        "inactive_addresses",
        "order",
        "organisation",
        "snils",
        "surname",
        "title",
    )

    def __init__(
        self,
        organisation: _Organisation,
        order: int,
        subscriber_id: int | None,
        surname: str | None,
        given_names: str | None,
        title: str | None,
        snils: str | None,
        active: bool,
    ) -> None:
        self.organisation = organisation
        #: Creation order (the id for existing ones): decides "oldest" among equal keys.
        self.order = order
        self.id = subscriber_id
        # Names and titles repeat across thousands of people: keep one copy of each.
        self.surname = _shared(surname)
        self.given_names = _shared(given_names)
        self.title = _shared(title)
        self.snils = snils
        self.active = active
        #: Trusted addresses, active and removed (tuples: most people have one).
        self.addresses: tuple[str, ...] = ()
        self.inactive_addresses: tuple[str, ...] = ()

    def columns(self) -> dict[str, Any]:
        """The values the import sets, as columns of ``subscribers``."""
        return {
            "surname": self.surname,
            "given_names": self.given_names,
            "title": self.title,
            "snils": self.snils,
            "active": self.active,
        }


def _yes_no(value: bool) -> str:
    return "yes" if value else "no"


def _shared(text: str | None) -> str | None:
    return None if text is None else sys.intern(text)


def _order(subscriber: _Subscriber) -> int:
    return subscriber.order


def _first(index: dict[Any, _Entry], key: Any) -> _Subscriber | None:
    """The oldest subscriber under *key*, if any."""
    entry = index.get(key)
    return entry[0] if isinstance(entry, list) else entry


def _put(index: dict[Any, _Entry], key: Any, subscriber: _Subscriber) -> None:
    entry = index.get(key)
    if entry is None:
        index[key] = subscriber
    elif isinstance(entry, list):
        bisect.insort(entry, subscriber, key=_order)
    else:
        index[key] = sorted((entry, subscriber), key=_order)


def _take(index: dict[Any, _Entry], key: Any, subscriber: _Subscriber) -> None:
    entry = index[key]
    if not isinstance(entry, list):
        del index[key]
        return
    entry.remove(subscriber)
    if len(entry) == 1:
        index[key] = entry[0]


class DirectoryLoader:
    """Resolves rows against the preloaded directory and writes the changes in chunks.

    Call :meth:`apply` for each row, :meth:`flush` whenever a chunk is complete and
    once at the end; the caller commits or rolls back the session.
    """

    def __init__(self, session: Session, counts: LoadCounts | None = None) -> None:
        self._session = session
        #: Counted as rows are applied (the caller's report, or a fresh one).
        self.counts = counts if counts is not None else LoadCounts()
        self._by_code: dict[str, _Organisation] = {}
        self._by_inn: dict[str, _Organisation] = {}
        self._by_name: dict[str, _Organisation] = {}
        # Pending writes of the current chunk.
        self._new_organisations: list[tuple[_Organisation, dict[str, Any]]] = []
        self._changed_organisations: dict[_Organisation, None] = {}  # ordered set
        self._new_subscribers: list[_Subscriber] = []
        self._changed_subscribers: dict[_Subscriber, None] = {}  # ordered set
        self._new_addresses: list[tuple[_Subscriber, str]] = []
        self._reactivated_addresses: list[tuple[_Subscriber, str]] = []
        self._preload()
        self._next_order = itertools.count(self._max_subscriber_id() + 1)

    # -- preloading -------------------------------------------------------------

    def _rows(self, query: Any) -> Iterator[Any]:
        """The rows of *query*, fetched in batches through Core (no ORM row handling)."""
        connection = self._session.connection()
        yield from connection.execute(query.execution_options(yield_per=PRELOAD_BATCH))

    def _preload(self) -> None:
        # Core reads do not autoflush: let pending ORM changes reach the database first.
        self._session.flush()
        organisations: dict[int, _Organisation] = {}
        organisation_query = select(
            Organisation.id,
            Organisation.name,
            Organisation.inn,
            Organisation.registry_code,
            Organisation.active,
        ).order_by(Organisation.id)
        for organisation_id, name, inn, code, active in self._rows(organisation_query):
            organisation = _Organisation(organisation_id, active)
            organisations[organisation_id] = organisation
            self._register_organisation(organisation, name, inn, code)
        subscribers: dict[int, _Subscriber] = {}
        subscriber_query = select(
            Subscriber.id,
            Subscriber.organisation_id,
            Subscriber.surname,
            Subscriber.given_names,
            Subscriber.title,
            Subscriber.snils,
            Subscriber.active,
        ).order_by(Subscriber.id)
        for subscriber_id, organisation_id, *fields in self._rows(subscriber_query):
            subscriber = _Subscriber(
                organisations[organisation_id], subscriber_id, subscriber_id, *fields
            )
            subscribers[subscriber_id] = subscriber
            self._index_subscriber(subscriber, present=True)
        address_query = select(
            TrustedAddress.subscriber_id, TrustedAddress.address, TrustedAddress.active
        )
        for subscriber_id, address, active in self._rows(address_query):
            subscriber = subscribers[subscriber_id]
            if active:
                subscriber.addresses += (address,)
            else:
                subscriber.inactive_addresses += (address,)

    def _max_subscriber_id(self) -> int:
        return self._session.scalar(select(func.max(Subscriber.id))) or 0

    # -- resolving rows -------------------------------------------------------------

    def _register_organisation(
        self, organisation: _Organisation, name: str, inn: str | None, code: str | None
    ) -> None:
        # setdefault: with several organisations sharing a key, the oldest is found.
        if code:
            self._by_code.setdefault(code, organisation)
        if inn:
            self._by_inn.setdefault(inn, organisation)
        self._by_name.setdefault(name, organisation)

    @staticmethod
    def _index_subscriber(subscriber: _Subscriber, present: bool) -> None:
        """Enter *subscriber* under its current SNILS and name, or remove it from there."""
        change = _put if present else _take
        organisation = subscriber.organisation
        if subscriber.snils:
            change(organisation.by_snils, subscriber.snils, subscriber)
        if subscriber.surname:  # only a row with a surname is matched by name
            change(organisation.by_name, (subscriber.surname, subscriber.given_names), subscriber)

    def _organisation(self, row: DirectoryRow) -> _Organisation | None:
        """The row's organisation if it exists (or an earlier row created it)."""
        return (
            (self._by_code.get(row.organisation_code) if row.organisation_code else None)
            or (self._by_inn.get(row.organisation_inn) if row.organisation_inn else None)
            or self._by_name.get(row.organisation)
        )

    def _create_organisation(self, row: DirectoryRow) -> _Organisation:
        organisation = _Organisation(None, row.organisation_active is not False)
        organisation.active_in_file = row.organisation_active
        values = {
            "name": row.organisation,
            "inn": row.organisation_inn,
            "ogrn": row.organisation_ogrn,
            "registry_code": row.organisation_code,
        }
        self._new_organisations.append((organisation, values))
        self._register_organisation(
            organisation, row.organisation, row.organisation_inn, row.organisation_code
        )
        self.counts.organisations_created += 1
        return organisation

    def _set_organisation_active(self, organisation: _Organisation, row: DirectoryRow) -> bool:
        """Give *organisation* the row's ``organisation_active``; whether that changed it.

        Raises :class:`RowConflict` if an earlier row gave the other value: with
        the flag on every row of an organisation, which row wins would be an accident.
        """
        wanted = row.organisation_active
        if wanted is None:
            return False
        if organisation.active_in_file not in (None, wanted):
            raise RowConflict(
                f"organisation_active is {_yes_no(wanted)} here but "
                f"{_yes_no(not wanted)} on an earlier row of the same organisation"
            )
        organisation.active_in_file = wanted
        if organisation.active == wanted:
            return False
        organisation.active = wanted
        if organisation.id is not None:  # a pending insert carries the new value anyway
            self._changed_organisations[organisation] = None
        if organisation.existed:
            self.counts.organisations_updated += 1
        return True

    @staticmethod
    def _subscriber(organisation: _Organisation, row: DirectoryRow) -> _Subscriber | None:
        found = _first(organisation.by_snils, row.snils) if row.snils else None
        if found is None and row.surname:
            found = _first(organisation.by_name, (row.surname, row.given_names))
        return found

    def _update(self, subscriber: _Subscriber, row: DirectoryRow) -> bool:
        """Give *subscriber* the row's non-empty fields and its ``active``; whether it changed."""
        wanted = (
            _shared(row.surname) or subscriber.surname,
            _shared(row.given_names) or subscriber.given_names,
            _shared(row.title) or subscriber.title,
            row.snils or subscriber.snils,
            row.active,
        )
        current = (
            subscriber.surname,
            subscriber.given_names,
            subscriber.title,
            subscriber.snils,
            subscriber.active,
        )
        if wanted == current:
            return False  # an unchanged subscriber is not written (updated_at stays)
        self._index_subscriber(subscriber, present=False)
        (
            subscriber.surname,
            subscriber.given_names,
            subscriber.title,
            subscriber.snils,
            subscriber.active,
        ) = wanted
        self._index_subscriber(subscriber, present=True)
        if subscriber.id is not None:  # a pending insert carries the new values anyway
            self._changed_subscribers[subscriber] = None
        return True

    def apply(self, row: DirectoryRow) -> RowOutcome:
        """Create or update the row's organisation, subscriber and addresses (pending).

        Returns how the row counted. Resolution works on the loader's memory alone:
        without :meth:`flush` nothing is written (a preview). Raises
        :class:`RowConflict` (changing nothing) if the row contradicts an earlier one.
        """
        organisation = self._organisation(row)
        if organisation is None:
            organisation = self._create_organisation(row)
            created, changed = True, False
        else:
            created, changed = False, self._set_organisation_active(organisation, row)
        if not row.organisation_only:
            # A new organisation has no subscribers yet: its row adds one.
            subscriber_created, subscriber_changed = self._apply_subscriber(organisation, row)
            created = created or subscriber_created
            changed = changed or subscriber_changed
        if created:
            self.counts.rows_added += 1
            return "added"
        if changed:
            self.counts.rows_updated += 1
            return "updated"
        self.counts.rows_unchanged += 1
        return "unchanged"

    def _apply_subscriber(
        self, organisation: _Organisation, row: DirectoryRow
    ) -> tuple[bool, bool]:
        """Create or update the row's subscriber and addresses: (created, changed)."""
        subscriber = self._subscriber(organisation, row)
        created = subscriber is None
        if subscriber is None:
            subscriber = _Subscriber(
                organisation,
                next(self._next_order),
                None,
                row.surname,
                row.given_names,
                row.title,
                row.snils,
                row.active,
            )
            self._index_subscriber(subscriber, present=True)
            self._new_subscribers.append(subscriber)
            self.counts.subscribers_created += 1
            changed = False
        else:
            changed = self._update(subscriber, row)
        for address in row.addresses:
            if address in subscriber.addresses:
                continue
            if address in subscriber.inactive_addresses:
                subscriber.inactive_addresses = tuple(
                    a for a in subscriber.inactive_addresses if a != address
                )
                self._reactivated_addresses.append((subscriber, address))
            else:
                self._new_addresses.append((subscriber, address))
            subscriber.addresses += (address,)
            self.counts.addresses_added += 1
            changed = True
        if changed and not created:
            self.counts.subscribers_updated += 1
        return created, changed

    # -- writing ---------------------------------------------------------------------

    def _execute(self, statement: Any, rows: list[dict[str, Any]]) -> CursorResult[Any]:
        """One Core executemany on the session's connection (inside its transaction).

        Not ``Session.execute``: the ORM's bulk path leaves None values out of a row's
        parameters and so splits a chunk into as many statements as there are
        patterns of empty columns.
        """
        return self._session.connection().execute(statement, rows)

    def _insert_with_ids(self, model: Any, rows: list[dict[str, Any]]) -> list[int]:
        """Insert *rows* into *model*'s table; their new ids, in the order of *rows*.

        No RETURNING: SQLAlchemy keeps RETURNING rows in order only by inserting one
        row per statement on SQLite, and by a large multi-row statement on PostgreSQL
        that psycopg parses anew every time; both cost more than the whole rest.
        """
        session = self._session
        if session.get_bind().dialect.name == "sqlite":
            # SQLite gives each new row the largest rowid plus one, and this transaction
            # holds the write lock from the first row on: the last len(rows) ids are these.
            self._execute(insert(model), rows)
            newest = select(model.id).order_by(model.id.desc()).limit(len(rows))
            ids = list(session.scalars(newest))[::-1]
            if ids != list(range(ids[0], ids[0] + len(rows))):
                raise RuntimeError(f"{model.__tablename__}: new ids are not consecutive")
            return ids
        # PostgreSQL: take the ids from the table's sequence (never handed out twice,
        # whoever else inserts meanwhile) and insert them explicitly.
        ids = sorted(session.scalars(_NEXT_IDS, {"table": model.__tablename__, "n": len(rows)}))
        self._execute(
            insert(model), [{**row, "id": id_} for row, id_ in zip(rows, ids, strict=True)]
        )
        return ids

    def flush(self) -> None:
        """Write the pending changes: one executemany per table (parents first)."""
        if self._new_organisations:
            rows = [{**values, "active": o.active} for o, values in self._new_organisations]
            ids = self._insert_with_ids(Organisation, rows)
            for (organisation, _), organisation_id in zip(
                self._new_organisations, ids, strict=True
            ):
                organisation.id = organisation_id
            self._new_organisations.clear()
        if self._changed_organisations:
            # updated_at comes from the column's onupdate.
            statement = update(Organisation).where(Organisation.id == bindparam("organisation"))
            self._execute(
                statement,
                [{"organisation": o.id, "active": o.active} for o in self._changed_organisations],
            )
            self._changed_organisations.clear()
        if self._new_subscribers:
            rows = [
                {"organisation_id": s.organisation.id, "certificate_fields": {}, **s.columns()}
                for s in self._new_subscribers
            ]
            ids = self._insert_with_ids(Subscriber, rows)
            for subscriber, subscriber_id in zip(self._new_subscribers, ids, strict=True):
                subscriber.id = subscriber_id
            self._new_subscribers.clear()
        if self._changed_subscribers:
            # updated_at comes from the column's onupdate.
            statement = update(Subscriber).where(Subscriber.id == bindparam("subscriber"))
            self._execute(
                statement,
                [{"subscriber": s.id, **s.columns()} for s in self._changed_subscribers],
            )
            self._changed_subscribers.clear()
        if self._new_addresses:
            self._execute(
                insert(TrustedAddress),
                [
                    {"subscriber_id": s.id, "address": address, "active": True}
                    for s, address in self._new_addresses
                ],
            )
            self._new_addresses.clear()
        if self._reactivated_addresses:
            statement = (
                update(TrustedAddress)
                .where(
                    TrustedAddress.subscriber_id == bindparam("subscriber"),
                    TrustedAddress.address == bindparam("trusted"),
                )
                .values(active=True)
            )
            self._execute(
                statement,
                [{"subscriber": s.id, "trusted": a} for s, a in self._reactivated_addresses],
            )
            self._reactivated_addresses.clear()
