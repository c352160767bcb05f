"""The subscriber directory on both databases: organisations, subscribers, addresses, gate lookup."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from mailbot.directory import subscribers as directory
from mailbot.identifiers import IdentifierError


def make_subscriber(session: Session, address: str = "Ivanov@Clinic.example") -> int:
    organisation = directory.add_organisation(
        session, "ГБУЗ МО «Больница»", inn="7710474375", registry_code="500001"
    )
    subscriber = directory.add_subscriber(
        session,
        organisation.id,
        surname="Иванов",
        given_names="Иван Иванович",
        snils="112-233-445 95",
        addresses=[address],
    )
    session.commit()
    return subscriber.id


def test_gate_lookup_is_case_insensitive_and_needs_everything_active(session: Session) -> None:
    subscriber_id = make_subscriber(session)
    found = directory.subscribers_trusting(session, "IVANOV@clinic.EXAMPLE")
    assert [s.id for s in found] == [subscriber_id]
    subscriber = directory.get_subscriber(session, subscriber_id)
    assert subscriber.snils == "11223344595"
    assert [a.address for a in subscriber.addresses] == ["ivanov@clinic.example"]

    subscriber.active = False
    session.commit()
    assert directory.subscribers_trusting(session, "ivanov@clinic.example") == []
    subscriber.active = True
    subscriber.organisation.active = False
    session.commit()
    assert directory.subscribers_trusting(session, "ivanov@clinic.example") == []
    subscriber.organisation.active = True
    directory.remove_address(session, subscriber_id, "ivanov@clinic.example")
    session.commit()
    assert directory.subscribers_trusting(session, "ivanov@clinic.example") == []
    directory.add_address(session, subscriber_id, "ivanov@clinic.example")
    session.commit()
    assert len(directory.subscribers_trusting(session, "ivanov@clinic.example")) == 1


def test_shared_address_returns_every_subscriber(session: Session) -> None:
    first = make_subscriber(session, "shared@clinic.example")
    organisation_id = directory.get_subscriber(session, first).organisation_id
    second = directory.add_subscriber(
        session, organisation_id, surname="Петрова", addresses=["shared@clinic.example"]
    )
    session.commit()
    found = directory.subscribers_trusting(session, "shared@clinic.example")
    assert [s.id for s in found] == [first, second.id]


def test_bad_values_are_refused(session: Session) -> None:
    subscriber_id = make_subscriber(session)
    with pytest.raises(IdentifierError):
        directory.set_snils(session, subscriber_id, "11223344500")
    with pytest.raises(directory.DirectoryError, match="not an e-mail address"):
        directory.add_address(session, subscriber_id, "no-at-sign")
    with pytest.raises(directory.DirectoryError, match="no subscriber with id 999"):
        directory.get_subscriber(session, 999)
    with pytest.raises(directory.DirectoryError, match="registry code"):
        directory.add_organisation(session, "Другая", registry_code="500001")
    with pytest.raises(directory.DirectoryError, match="no organisation"):
        directory.add_subscriber(session, 12345, surname="X")
    assert directory.set_snils(session, subscriber_id, None).snils is None


def test_an_edit_refused_by_a_rule_changes_nothing_and_says_which_rule(session: Session) -> None:
    first = directory.add_organisation(session, "Первая", registry_code="A1")
    second = directory.add_organisation(session, "Вторая", registry_code="A2")
    with pytest.raises(directory.DirectoryError) as refused:
        directory.update_organisation(session, second.id, "Вторая", registry_code="A1")
    assert refused.value.reason == "duplicate_code"
    with pytest.raises(IdentifierError):
        directory.update_organisation(session, second.id, "Новое имя", inn="1234567890")
    assert (second.name, second.registry_code, second.inn) == ("Вторая", "A2", None)
    directory.update_organisation(session, first.id, "Первая", registry_code="A1")  # its own code
    subscriber = directory.add_subscriber(session, first.id, surname="Орлов", addresses=["o@x.ru"])
    with pytest.raises(directory.DirectoryError) as duplicate:
        directory.add_address(session, subscriber.id, "O@X.ru", exists_ok=False)
    assert duplicate.value.reason == "duplicate_address"
    directory.add_address(session, subscriber.id, "O@X.ru")  # the CLI's way: accepted again
