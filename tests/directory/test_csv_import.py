"""The CSV import resolves every row as a row-by-row import would, whatever the chunk size."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from mailbot.directory import subscribers as directory
from mailbot.directory.csv_import import ImportReport, import_csv
from mailbot.directory.models import Organisation, Subscriber, TrustedAddress

HEADER = "organisation;organisation_code;organisation_inn;surname;given_names;title;snils;addresses;active\n"
CHUNK_SIZES = [1, 2, 1000]


def write(tmp_path: Path, *lines: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / "directory.csv"
    path.write_bytes((HEADER + "".join(f"{line}\n" for line in lines)).encode(encoding))
    return path


def people(session: Session) -> list[tuple[str, str | None, str | None, str | None, str | None]]:
    """(organisation, surname, given names, title, SNILS) of every subscriber, by id."""
    query = (
        select(Organisation.name, Subscriber.surname, Subscriber.given_names, Subscriber.title,
               Subscriber.snils)
        .join(Organisation, Organisation.id == Subscriber.organisation_id)
        .order_by(Subscriber.id)
    )  # fmt: skip
    return [tuple(row) for row in session.execute(query)]  # type: ignore[misc]


def counts(report: ImportReport) -> tuple[int, int, int, int]:
    return (
        report.organisations_created,
        report.subscribers_created,
        report.subscribers_updated,
        report.addresses_added,
    )


@pytest.mark.parametrize("chunk_rows", CHUNK_SIZES)
def test_later_rows_see_earlier_rows(session: Session, tmp_path: Path, chunk_rows: int) -> None:
    path = write(
        tmp_path,
        # A new organisation and subscriber.
        "Больница №1;500001;7710474375;Иванов;Иван;врач;112-233-445 95;a@x.example;да",
        # Same organisation by code (other name), same person by SNILS: title updated.
        "Больница первая;500001;;;;главный врач;112-233-445 95;;да",
        # Same organisation by INN, same person by name: no SNILS needed.
        "Б1;;7710474375;Иванов;Иван;;;b@x.example;да",
        # Same organisation by name; a namesake without given names is someone else.
        "Больница №1;;;Иванов;;;;;нет",
        # A second organisation, its own Иванов Иван.
        "Больница №2;500002;;Иванов;Иван;;;a@x.example;да",
    )
    report = import_csv(session, path, chunk_rows=chunk_rows)
    assert counts(report) == (2, 3, 2, 3)
    assert people(session) == [
        ("Больница №1", "Иванов", "Иван", "главный врач", "11223344595"),
        ("Больница №1", "Иванов", None, None, None),
        ("Больница №2", "Иванов", "Иван", None, None),
    ]
    trusted = session.execute(
        select(TrustedAddress.subscriber_id, TrustedAddress.address).order_by(TrustedAddress.id)
    ).all()
    first, _, third = session.scalars(select(Subscriber.id).order_by(Subscriber.id))
    assert [tuple(t) for t in trusted] == [
        (first, "a@x.example"),
        (first, "b@x.example"),
        (third, "a@x.example"),
    ]


@pytest.mark.parametrize("chunk_rows", CHUNK_SIZES)
def test_a_changed_snils_or_name_moves_the_subscriber_in_the_lookups(
    session: Session, tmp_path: Path, chunk_rows: int
) -> None:
    organisation = directory.add_organisation(session, "Больница", registry_code="500001")
    directory.add_subscriber(session, organisation.id, surname="Петров", given_names="Пётр")
    path = write(
        tmp_path,
        # Found by name, gets a SNILS.
        "Больница;500001;;Петров;Пётр;;112-233-445 95;;да",
        # Found by that SNILS, renamed.
        "Больница;500001;;Сидоров;Пётр;;112-233-445 95;;да",
        # The old name finds nobody now: a new subscriber.
        "Больница;500001;;Петров;Пётр;;;;да",
        # The new name finds the renamed one.
        "Больница;500001;;Сидоров;Пётр;врач;;;да",
    )
    report = import_csv(session, path, chunk_rows=chunk_rows)
    assert counts(report) == (0, 1, 3, 0)
    assert people(session) == [
        ("Больница", "Сидоров", "Пётр", "врач", "11223344595"),
        ("Больница", "Петров", "Пётр", None, None),
    ]


def test_of_namesakes_the_oldest_is_updated(session: Session, tmp_path: Path) -> None:
    organisation = directory.add_organisation(session, "Больница")
    older = directory.add_subscriber(session, organisation.id, surname="Петров", title="врач")
    directory.add_subscriber(session, organisation.id, surname="Петров", title="бухгалтер")
    report = import_csv(session, write(tmp_path, "Больница;;;Петров;;хирург;;;да"))
    assert counts(report) == (0, 0, 1, 0)
    assert session.scalar(select(Subscriber.title).where(Subscriber.id == older.id)) == "хирург"


def test_a_removed_address_is_trusted_again_and_repeats_count_once(
    session: Session, tmp_path: Path
) -> None:
    organisation = directory.add_organisation(session, "Больница")
    subscriber = directory.add_subscriber(
        session, organisation.id, surname="Петров", addresses=["old@x.example"]
    )
    directory.remove_address(session, subscriber.id, "old@x.example")
    path = write(
        tmp_path,
        "Больница;;;Петров;;;;old@x.example new@x.example NEW@x.example;да",
        "Больница;;;Петров;;;;new@x.example;да",
    )
    report = import_csv(session, path)
    # The second row finds everything in place.
    assert counts(report) == (0, 0, 1, 2)
    assert (report.rows_added, report.rows_updated, report.rows_unchanged) == (0, 1, 1)
    trusted = session.execute(
        select(TrustedAddress.address, TrustedAddress.active).order_by(TrustedAddress.id)
    ).all()
    assert [tuple(t) for t in trusted] == [("old@x.example", True), ("new@x.example", True)]


def test_an_unchanged_subscriber_is_not_written(session: Session, tmp_path: Path) -> None:
    path = write(tmp_path, "Больница;;;Петров;;врач;112-233-445 95;p@x.example;да")
    import_csv(session, path)
    before = session.scalar(select(Subscriber.updated_at))
    report = import_csv(session, path)
    assert counts(report) == (0, 0, 0, 0)
    assert (report.rows_added, report.rows_updated, report.rows_unchanged) == (0, 0, 1)
    assert session.scalar(select(Subscriber.updated_at)) == before


def test_a_utf8_file_with_bom(session: Session, tmp_path: Path) -> None:
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbf" + (HEADER + "Больница;;;Петров;;;;;да\n").encode())
    report = import_csv(session, path)
    assert (report.encoding, report.subscribers_created) == ("utf-8-sig", 1)


@pytest.mark.parametrize("chunk_rows", CHUNK_SIZES)
def test_imported_addresses_are_found_by_the_sender_gate(
    session: Session, tmp_path: Path, chunk_rows: int
) -> None:
    # The bulk insert passes only `address`: the column default must fill the key.
    path = write(
        tmp_path,
        "Больница;;;Иванов;Иван;;112-233-445 95;Ivan@Пример.РФ;да",
        "Больница;;;Петров;Пётр;;;petrov@x.example;да",
    )
    import_csv(session, path, chunk_rows=chunk_rows)
    session.commit()
    keys = session.scalars(select(TrustedAddress.address_key).order_by(TrustedAddress.id)).all()
    assert keys == ["ivan@xn--e1afmkfd.xn--p1ai", "petrov@x.example"]
    (found,) = directory.subscribers_trusting(session, "IVAN@xn--e1afmkfd.xn--p1ai")
    assert found.surname == "Иванов"
    assert [s.surname for s in directory.subscribers_trusting(session, "Petrov@X.example")] == [
        "Петров"
    ]
