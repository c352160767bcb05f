"""The subscriber directory: organisations, subscribers, trusted addresses and certificates.

Every change goes through :mod:`mailbot.directory.subscribers`, the functions the
``mailbot org|subscriber|address`` commands call. A refused change is shown on its
form, refilled, by the rule's reason (the template says it in Russian); every
change is audited with the values before and after, SNILS masked.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from sqlalchemy.orm import Session
from starlette.responses import RedirectResponse, Response

from mailbot.directory import subscribers as directory
from mailbot.directory.models import Organisation, Subscriber
from mailbot.identifiers import IdentifierError, normalise_inn, normalise_ogrn, normalise_snils
from mailbot.log import mask_identifier
from mailbot.web.context import PageRequest
from mailbot.web.guard import PageGroup
from mailbot.web.paging import page_number
from mailbot.web.roles import Role

PAGES = PageGroup()
T = TypeVar("T")
PAGE_SIZE = 50
#: Longest search text taken (the columns searched are shorter).
MAX_SEARCH = 200
ORGANISATION_FIELDS = ("name", "inn", "ogrn", "registry_code")
SUBSCRIBER_FIELDS = ("surname", "given_names", "title", "snils")
#: Form field -> (the rule that checks it, the reason shown when it refuses).
_IDENTIFIERS: dict[str, tuple[Callable[[str], str], str]] = {
    "inn": (normalise_inn, "bad_inn"),
    "ogrn": (normalise_ogrn, "bad_ogrn"),
    "snils": (normalise_snils, "bad_snils"),
}


class Refused(Exception):
    """A change the directory's rules refused: form field -> reason."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(errors)
        self.errors = errors


# -- lists ---------------------------------------------------------------------------


@PAGES.get("/organisations")
def organisations(page: PageRequest) -> Response:
    """Organisations by name, searched by name, INN, OGRN or registry code, 50 a page."""
    text, number = _search(page)
    with page.db() as session:
        rows = directory.search_organisations(
            session, text, PAGE_SIZE + 1, (number - 1) * PAGE_SIZE
        )
        shown = list(rows[:PAGE_SIZE])
    return page.render(
        "organisations.html",
        organisations=shown,
        q=text,
        number=number,
        has_next=len(rows) > PAGE_SIZE,
        query={"q": text} if text else {},
    )


@PAGES.get("/subscribers")
def subscribers(page: PageRequest) -> Response:
    """Subscribers by surname, searched by name, SNILS or trusted address, 50 a page."""
    text, number = _search(page)
    with page.db() as session:
        rows = directory.search_subscribers(session, text, PAGE_SIZE + 1, (number - 1) * PAGE_SIZE)
        shown = list(rows[:PAGE_SIZE])
        return page.render(
            "subscribers.html",
            subscribers=shown,
            q=text,
            number=number,
            has_next=len(rows) > PAGE_SIZE,
            query={"q": text} if text else {},
        )


@PAGES.get("/addresses")
def addresses(page: PageRequest) -> Response:
    """Trusted addresses (removed ones too) with their subscribers, searched, 50 a page."""
    text, number = _search(page)
    with page.db() as session:
        rows = directory.search_addresses(session, text, PAGE_SIZE + 1, (number - 1) * PAGE_SIZE)
        return page.render(
            "addresses.html",
            addresses=list(rows[:PAGE_SIZE]),
            q=text,
            number=number,
            has_next=len(rows) > PAGE_SIZE,
            query={"q": text} if text else {},
        )


# -- organisations -------------------------------------------------------------------------


@PAGES.get("/organisations/new", role=Role.OPERATOR)
def new_organisation_form(page: PageRequest) -> Response:
    """The form adding an organisation (operators submit it)."""
    return page.render("organisation_new.html", form={}, errors={})


@PAGES.post("/organisations/new")
def new_organisation(page: PageRequest) -> Response:
    """Add an organisation as ``mailbot org add`` does."""
    values = _values(page.form, ORGANISATION_FIELDS)
    with page.db() as session:
        try:
            _check_identifiers(values)
            organisation = _directory_call(
                lambda: directory.add_organisation(
                    session, values["name"], inn=values["inn"], ogrn=values["ogrn"],
                    registry_code=values["registry_code"],
                )
            )  # fmt: skip
        except Refused as refused:
            session.rollback()
            return page.render(
                "organisation_new.html", status_code=400, form=values, errors=refused.errors
            )
        page.audit(
            session, "organisation.add", f"organisation:{organisation.id}",
            {"after": _organisation_state(organisation)},
        )  # fmt: skip
        session.commit()
        return _see(f"/organisations/{organisation.id}")


@PAGES.get("/organisations/{organisation_id:int}")
def organisation(page: PageRequest) -> Response:
    """An organisation, its subscribers, and (for operators) its edit form."""
    organisation_id = int(page.request.path_params["organisation_id"])
    with page.db() as session:
        found = session.get(Organisation, organisation_id)
        if found is None:
            return _missing(page, f"Организация {organisation_id}")
        return _organisation_page(page, session, found, _organisation_form(found), {})


@PAGES.post("/organisations/{organisation_id:int}/edit")
def edit_organisation(page: PageRequest) -> Response:
    """Change an organisation's name, INN, OGRN and registry code."""
    organisation_id = int(page.request.path_params["organisation_id"])
    values = _values(page.form, ORGANISATION_FIELDS)
    with page.db() as session:
        found = session.get(Organisation, organisation_id)
        if found is None:
            return _missing(page, f"Организация {organisation_id}")
        before = _organisation_state(found)
        try:
            _check_identifiers(values)
            _directory_call(
                lambda: directory.update_organisation(
                    session, organisation_id, values["name"], inn=values["inn"],
                    ogrn=values["ogrn"], registry_code=values["registry_code"],
                )
            )  # fmt: skip
        except Refused as refused:
            session.rollback()
            found = session.get(Organisation, organisation_id)
            assert found is not None
            return _organisation_page(page, session, found, values, refused.errors, 400)
        after = _organisation_state(found)
        if after != before:
            page.audit(
                session, "organisation.edit", f"organisation:{organisation_id}",
                {"before": before, "after": after},
            )  # fmt: skip
            session.commit()
        return _see(f"/organisations/{organisation_id}")


@PAGES.post("/organisations/{organisation_id:int}/active")
def organisation_active(page: PageRequest) -> Response:
    """Deactivate (``active=0``) or reactivate (``active=1``) an organisation."""
    organisation_id = int(page.request.path_params["organisation_id"])
    active = page.form.get("active") == "1"
    with page.db() as session:
        try:
            found = _directory_call(lambda: directory.get_organisation(session, organisation_id))
        except Refused:
            return _missing(page, f"Организация {organisation_id}")
        if found.active != active:
            directory.set_organisation_active(session, organisation_id, active)
            action = "organisation.activate" if active else "organisation.deactivate"
            page.audit(
                session, action, f"organisation:{organisation_id}",
                {"before": {"active": not active}, "after": {"active": active}},
            )  # fmt: skip
            session.commit()
    return _see(f"/organisations/{organisation_id}")


# -- subscribers -------------------------------------------------------------------------


@PAGES.get("/organisations/{organisation_id:int}/subscribers/new", role=Role.OPERATOR)
def new_subscriber_form(page: PageRequest) -> Response:
    """The form adding a subscriber to an organisation."""
    organisation_id = int(page.request.path_params["organisation_id"])
    with page.db() as session:
        found = session.get(Organisation, organisation_id)
        if found is None:
            return _missing(page, f"Организация {organisation_id}")
        return page.render("subscriber_new.html", organisation=found, form={}, errors={})


@PAGES.post("/organisations/{organisation_id:int}/subscribers/new")
def new_subscriber(page: PageRequest) -> Response:
    """Add a subscriber with its trusted addresses as ``mailbot subscriber add`` does."""
    organisation_id = int(page.request.path_params["organisation_id"])
    values = _values(page.form, (*SUBSCRIBER_FIELDS, "addresses"))
    addresses = (values["addresses"] or "").replace(",", " ").replace(";", " ").split()
    with page.db() as session:
        found = session.get(Organisation, organisation_id)
        if found is None:
            return _missing(page, f"Организация {organisation_id}")
        try:
            _check_identifiers(values)
            subscriber = _directory_call(
                lambda: directory.add_subscriber(
                    session, organisation_id, surname=values["surname"],
                    given_names=values["given_names"], title=values["title"],
                    snils=values["snils"], addresses=addresses,
                ),
                field="addresses",
            )  # fmt: skip
        except Refused as refused:
            session.rollback()
            found = session.get(Organisation, organisation_id)
            return page.render(
                "subscriber_new.html", status_code=400, organisation=found, form=values,
                errors=refused.errors,
            )  # fmt: skip
        page.audit(
            session, "subscriber.add", f"subscriber:{subscriber.id}",
            {"after": _subscriber_state(subscriber) | {"addresses": addresses}},
        )  # fmt: skip
        session.commit()
        return _see(f"/subscribers/{subscriber.id}")


@PAGES.get("/subscribers/{subscriber_id:int}")
def subscriber(page: PageRequest) -> Response:
    """A subscriber: details, trusted addresses, registered certificates, edit forms."""
    subscriber_id = int(page.request.path_params["subscriber_id"])
    with page.db() as session:
        found = session.get(Subscriber, subscriber_id)
        if found is None:
            return _missing(page, f"Абонент {subscriber_id}")
        return _subscriber_page(page, found, _subscriber_form(found), {})


@PAGES.post("/subscribers/{subscriber_id:int}/edit")
def edit_subscriber(page: PageRequest) -> Response:
    """Change a subscriber's name, title and SNILS."""
    subscriber_id = int(page.request.path_params["subscriber_id"])
    values = _values(page.form, SUBSCRIBER_FIELDS)
    with page.db() as session:
        found = session.get(Subscriber, subscriber_id)
        if found is None:
            return _missing(page, f"Абонент {subscriber_id}")
        before = _subscriber_state(found)
        # The form never carries the stored SNILS (an operator may not see it whole):
        # an empty field keeps it, the box clears it.
        snils = values["snils"] or (None if page.form.get("clear_snils") else found.snils)
        try:
            _check_identifiers(values)
            _directory_call(
                lambda: directory.update_subscriber(
                    session, subscriber_id, values["surname"], values["given_names"],
                    values["title"], snils,
                )
            )  # fmt: skip
        except Refused as refused:
            session.rollback()
            found = session.get(Subscriber, subscriber_id)
            assert found is not None
            return _subscriber_page(page, found, values, refused.errors, 400)
        after = _subscriber_state(found)
        if after != before:
            page.audit(
                session, "subscriber.edit", f"subscriber:{subscriber_id}",
                {"before": before, "after": after},
            )  # fmt: skip
            session.commit()
        return _see(f"/subscribers/{subscriber_id}")


@PAGES.post("/subscribers/{subscriber_id:int}/active")
def subscriber_active(page: PageRequest) -> Response:
    """Deactivate (``active=0``) or reactivate (``active=1``) a subscriber."""
    subscriber_id = int(page.request.path_params["subscriber_id"])
    active = page.form.get("active") == "1"
    with page.db() as session:
        found = session.get(Subscriber, subscriber_id)
        if found is None:
            return _missing(page, f"Абонент {subscriber_id}")
        if found.active != active:
            directory.set_subscriber_active(session, subscriber_id, active)
            action = "subscriber.activate" if active else "subscriber.deactivate"
            page.audit(
                session, action, f"subscriber:{subscriber_id}",
                {"before": {"active": not active}, "after": {"active": active}},
            )  # fmt: skip
            session.commit()
    return _see(f"/subscribers/{subscriber_id}")


@PAGES.post("/subscribers/{subscriber_id:int}/addresses")
def add_address(page: PageRequest) -> Response:
    """Trust an address for the subscriber (one it trusts already is refused)."""
    subscriber_id = int(page.request.path_params["subscriber_id"])
    address = page.form.get("address", "").strip()[:400]
    with page.db() as session:
        found = session.get(Subscriber, subscriber_id)
        if found is None:
            return _missing(page, f"Абонент {subscriber_id}")
        try:
            trusted = _directory_call(
                lambda: directory.add_address(session, subscriber_id, address, exists_ok=False),
                field="address",
            )
        except Refused as refused:
            session.rollback()
            found = session.get(Subscriber, subscriber_id)
            assert found is not None
            return _subscriber_page(
                page, found, _subscriber_form(found), refused.errors, 400, address=address
            )
        page.audit(
            session, "address.add", f"subscriber:{subscriber_id}", {"address": trusted.address}
        )
        session.commit()
    return _see(f"/subscribers/{subscriber_id}")


@PAGES.post("/subscribers/{subscriber_id:int}/addresses/remove")
def remove_address(page: PageRequest) -> Response:
    """Stop trusting an address (kept inactive for the record, as ``address remove``)."""
    subscriber_id = int(page.request.path_params["subscriber_id"])
    address = page.form.get("address", "")[:400]
    with page.db() as session:
        found = session.get(Subscriber, subscriber_id)
        if found is None:
            return _missing(page, f"Абонент {subscriber_id}")
        try:
            _directory_call(
                lambda: directory.remove_address(session, subscriber_id, address),
                field="address",
            )
        except Refused as refused:
            session.rollback()
            found = session.get(Subscriber, subscriber_id)
            assert found is not None
            return _subscriber_page(page, found, _subscriber_form(found), refused.errors, 400)
        page.audit(
            session, "address.remove", f"subscriber:{subscriber_id}",
            {"address": address.strip().lower()},
        )  # fmt: skip
        session.commit()
    return _see(f"/subscribers/{subscriber_id}")


# -- helpers -----------------------------------------------------------------------


def _search(page: PageRequest) -> tuple[str, int]:
    params = page.request.query_params
    return params.get("q", "").strip()[:MAX_SEARCH], page_number(params.get("page", "1"))


def _values(form: Mapping[str, str], names: tuple[str, ...]) -> dict[str, Any]:
    """The named fields, stripped and bounded; empty ones as None."""
    return {name: form.get(name, "").strip()[:500] or None for name in names}


def _check_identifiers(values: Mapping[str, Any]) -> None:
    """Refuse every identifier field its rule refuses (all at once, each on its field)."""
    errors: dict[str, str] = {}
    for name, (rule, reason) in _IDENTIFIERS.items():
        if values.get(name):
            try:
                rule(values[name])
            except IdentifierError:
                errors[name] = reason
    if errors:
        raise Refused(errors)


def _directory_call(call: Callable[[], T], field: str = "") -> T:
    """*call*'s result; a refusal by the directory's rules becomes :class:`Refused`."""
    try:
        return call()
    except directory.DirectoryError as exc:
        where = {"empty_name": "name", "duplicate_code": "registry_code"}.get(exc.reason, field)
        raise Refused({where or "form": exc.reason or "refused"}) from None
    except IdentifierError:
        raise Refused({"form": "bad_identifier"}) from None


def _organisation_state(organisation: Organisation) -> dict[str, Any]:
    return {name: getattr(organisation, name) for name in (*ORGANISATION_FIELDS, "active")}


def _subscriber_state(subscriber: Subscriber) -> dict[str, Any]:
    state = {name: getattr(subscriber, name) for name in (*SUBSCRIBER_FIELDS, "active")}
    # The audit log is no place for a whole SNILS.
    state["snils"] = mask_identifier(state["snils"]) if state["snils"] else None
    return state


def _organisation_form(organisation: Organisation) -> dict[str, Any]:
    return {name: getattr(organisation, name) for name in ORGANISATION_FIELDS}


def _subscriber_form(subscriber: Subscriber) -> dict[str, Any]:
    # Not the SNILS: the field shows it (as the user may see it) only as a placeholder.
    return {name: getattr(subscriber, name) for name in SUBSCRIBER_FIELDS} | {"snils": None}


def _organisation_page(
    page: PageRequest,
    session: Session,
    organisation: Organisation,
    form: Mapping[str, Any],
    errors: Mapping[str, str],
    status_code: int = 200,
) -> Response:
    members = directory.list_subscribers(session, organisation.id)
    return page.render(
        "organisation.html", status_code=status_code, organisation=organisation,
        members=members, form=form, errors=errors,
    )  # fmt: skip


def _subscriber_page(
    page: PageRequest,
    subscriber: Subscriber,
    form: Mapping[str, Any],
    errors: Mapping[str, str],
    status_code: int = 200,
    address: str = "",
) -> Response:
    return page.render(
        "subscriber.html", status_code=status_code, subscriber=subscriber,
        addresses=sorted(subscriber.addresses, key=lambda a: (not a.active, a.address)),
        certificates=sorted(subscriber.certificates, key=lambda c: c.registered_at, reverse=True),
        form=form, errors=errors, address=address,
    )  # fmt: skip


def _missing(page: PageRequest, what: str) -> Response:
    return page.render("not_found.html", status_code=404, what=what)


def _see(path: str) -> Response:
    return RedirectResponse(path, status_code=303)
