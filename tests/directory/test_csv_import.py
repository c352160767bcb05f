"""The CSV import resolves every row as a row-by-row import would, whatever the chunk size."""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mailbot.directory import subscribers as directory
from mailbot.directory.csv_format import NotCsvError, detect_delimiter, sniff
from mailbot.directory.csv_import import (
    COLUMNS,
    CsvImportError,
    ImportReport,
    import_csv,
    preview_csv,
)
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


def organisation_states(session: Session) -> list[tuple[str, bool]]:
    query = select(Organisation.name, Organisation.active).order_by(Organisation.id)
    return [tuple(row) for row in session.execute(query)]  # type: ignore[misc]


def test_organisation_active_is_honoured_when_given_and_kept_when_not(
    session: Session, tmp_path: Path
) -> None:
    closed = directory.add_organisation(session, "Закрытая", registry_code="1", active=False)
    directory.add_subscriber(session, closed.id, surname="Петров")
    # A file from before the column: the deactivated organisation stays so.
    report = import_csv(session, write(tmp_path, "Закрытая;1;;Петров;;;;;да"))
    assert (report.rows_unchanged, report.organisations_updated) == (1, 0)
    assert organisation_states(session) == [("Закрытая", False)]

    path = tmp_path / "with-flag.csv"
    path.write_text(
        "organisation;organisation_code;organisation_active;surname\n"
        "Закрытая;1;да;Петров\n"
        "Новая закрытая;2;нет;\n"  # an organisation-only row
        "Новая;3;;\n",
        encoding="utf-8",
    )
    report = import_csv(session, path)
    assert (report.rows_added, report.rows_updated, report.rows_unchanged) == (2, 1, 0)
    assert (report.organisations_created, report.organisations_updated) == (2, 1)
    assert report.subscribers_created == report.subscribers_updated == 0
    assert organisation_states(session) == [
        ("Закрытая", True),
        ("Новая закрытая", False),
        ("Новая", True),
    ]
    assert len(session.scalars(select(Subscriber.id)).all()) == 1


def test_rows_contradicting_each_other_on_organisation_active_are_refused(
    session: Session, tmp_path: Path
) -> None:
    path = tmp_path / "conflict.csv"
    path.write_text(
        "organisation;organisation_active;surname\n"
        "Больница;да;Петров\n"
        "Больница;;Сидоров\n"  # says nothing: no conflict
        "Больница;нет;Иванов\n",
        encoding="utf-8",
    )
    with pytest.raises(CsvImportError) as caught:
        import_csv(session, path)
    assert caught.value.report.errors == [
        "line 4: organisation_active is no here but yes on an earlier row of the same organisation"
    ]


@pytest.mark.parametrize(
    ("header", "delimiter"),
    [
        ("organisation;surname", ";"),
        ("Organisation,Surname", ","),
        ("organisation\tsurname", "\t"),
        # Commas inside a ';' header's unknown name do not mislead.
        ("organisation;surname;x,y,z", ";"),
        ("organisation", ";"),
    ],
)
def test_the_separator_is_the_one_that_splits_the_header_into_known_columns(
    header: str, delimiter: str
) -> None:
    assert detect_delimiter(header + "\r\n", COLUMNS) == delimiter


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (codecs.BOM_UTF16_BE + "organisation\tsurname\n".encode("utf-16-be"), "utf-16-be"),
        ("organisation;surname\nБольница;Пётр\n".encode(), "utf-8"),
        ("organisation;surname\nБольница;Пётр\n".encode("cp1251"), "cp1251"),
    ],
)
def test_encodings(tmp_path: Path, content: bytes, expected: str) -> None:
    path = tmp_path / "f.csv"
    path.write_bytes(content)
    assert sniff(path, COLUMNS).name == expected


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        # UTF-16 without its byte order mark: NUL bytes everywhere.
        ("organisation\n".encode("utf-16-le"), "binary file"),
        # A NUL far into otherwise fine text.
        (b"organisation\n" + b"x\n" * (1 << 20) + b"\0\n", "binary file"),
        (
            codecs.BOM_UTF8 + "Больница".encode("cp1251"),
            "UTF-8 byte order mark but is not UTF-8 text",
        ),
    ],
)
def test_not_csv_text(tmp_path: Path, content: bytes, problem: str) -> None:
    path = tmp_path / "f.csv"
    path.write_bytes(content)
    with pytest.raises(NotCsvError, match=problem):
        sniff(path, COLUMNS)


def test_empty_columns_excel_adds_at_the_right_are_ignored(
    session: Session, tmp_path: Path
) -> None:
    path = tmp_path / "wide.csv"
    path.write_text("organisation;surname;;\nБольница;Петров;;\nБольница;Иванов\n", "cp1251")
    report = import_csv(session, path)
    assert (report.rows, report.rows_added) == (2, 2)


def test_a_preview_resolves_every_row_as_the_import_does_and_writes_nothing(
    session: Session, tmp_path: Path
) -> None:
    path = write(
        tmp_path,
        "Больница №1;500001;7710474375;Иванов;Иван;врач;112-233-445 95;a@x.example;да",
        "Больница первая;500001;;;;главный врач;112-233-445 95;;да",
        "Б1;;7710474375;Иванов;Иван;;;a@x.example;да",
    )
    seen: list[tuple[int, str]] = []
    preview = preview_csv(session, path, lambda line, _row, outcome: seen.append((line, outcome)))
    session.rollback()
    assert session.scalar(select(func.count(Organisation.id))) == 0
    assert seen == [(2, "added"), (3, "updated"), (4, "unchanged")]
    report = import_csv(session, path)
    assert (preview.rows_added, preview.rows_updated, preview.rows_unchanged) == (
        report.rows_added, report.rows_updated, report.rows_unchanged,
    )  # fmt: skip
    assert counts(preview) == counts(report)
