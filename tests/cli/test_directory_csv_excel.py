"""CSV that survives Excel: the files Excel saves import, workbooks and broken files are
refused in one line, and an export imports back unchanged, on both databases."""

from __future__ import annotations

import codecs
import csv
import io
import json
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import Engine, delete, select

from mailbot.cli.main import main
from mailbot.directory.models import Organisation, Subscriber, TrustedAddress
from tests.cli.processes import assert_one_line, mailbot

EXCEL_HEADER = [
    "organisation", "organisation_code", "organisation_inn", "surname", "given_names",
    "title", "snils", "addresses", "active",
]  # fmt: skip
EXCEL_ROWS = [
    # A quote and a separator inside fields: Excel quotes them.
    ['ГБУЗ МО "Поликлиника № 1"', "500001", "7710474375", "Семёнов", "Пётр Ильич",
     "врач; хирург", "112-233-445 95", "semenov@clinic.example", "да"],
    ["ГБУЗ МО «Больница»", "500002", "", "Ёлкина", "Анна", "", "", "elkina@clinic.example",
     "нет"],
]  # fmt: skip


def excel_csv(path: Path, encoding: str, bom: bytes, delimiter: str) -> Path:
    """*path* written as Excel saves a table: CRLF lines, minimal quoting, *bom* first."""
    text = io.StringIO()
    csv.writer(text, delimiter=delimiter, lineterminator="\r\n").writerows(
        [EXCEL_HEADER, *EXCEL_ROWS]
    )
    path.write_bytes(bom + text.getvalue().encode(encoding))
    return path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize(
    ("encoding", "bom", "delimiter", "shown"),
    [
        ("cp1251", b"", ";", "(cp1251, ';')"),  # "CSV (разделители — запятые)"
        ("utf-8", codecs.BOM_UTF8, ";", "(utf-8-sig, ';')"),  # "CSV UTF-8"
        ("utf-16-le", codecs.BOM_UTF16_LE, "\t", "(utf-16-le, 'tab')"),  # "Unicode text"
    ],
    ids=["cp1251", "utf-8-bom", "utf-16"],
)
def test_files_as_excel_saves_them_import(
    config_file: Path,
    engine: Engine,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    encoding: str,
    bom: bytes,
    delimiter: str,
    shown: str,
) -> None:
    path = excel_csv(tmp_path / "абоненты.csv", encoding, bom, delimiter)
    code, out, err = run(capsys, "import", str(path), "--config", str(config_file))
    assert (code, err) == (0, "")
    assert f"{shown}: imported 2 row(s): 2 added, 0 updated, 0 unchanged" in out
    with engine.connect() as connection:
        people = connection.execute(
            select(
                Organisation.name,
                Subscriber.surname,
                Subscriber.given_names,
                Subscriber.title,
                Subscriber.snils,
                Subscriber.active,
                TrustedAddress.address,
            )
            .join(Subscriber, Subscriber.organisation_id == Organisation.id)
            .join(TrustedAddress, TrustedAddress.subscriber_id == Subscriber.id)
            .order_by(Subscriber.id)
        ).all()
    assert [tuple(person) for person in people] == [
        ('ГБУЗ МО "Поликлиника № 1"', "Семёнов", "Пётр Ильич", "врач; хирург", "11223344595",
         True, "semenov@clinic.example"),
        ("ГБУЗ МО «Больница»", "Ёлкина", "Анна", None, None, False, "elkina@clinic.example"),
    ]  # fmt: skip


def minimal_xlsx(path: Path) -> Path:
    """A real (if tiny) Excel workbook: the parts Excel needs to open it."""
    parts = {
        "[Content_Types].xml": (
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" '
            'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/xl/workbook.xml" ContentType="application/'
            'vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
            '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/'
            'vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>'
        ),
        "_rels/.rels": (
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/'
            '2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>'
        ),
        "xl/workbook.xml": (
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
            'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
            '<sheets><sheet name="Лист1" sheetId="1" r:id="rId1"/></sheets></workbook>'
        ),
        "xl/_rels/workbook.xml.rels": (
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/'
            '2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>'
        ),
        "xl/worksheets/sheet1.xml": (
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
            '<sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>organisation</t></is></c>'
            "</row></sheetData></worksheet>"
        ),
    }
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as workbook:
        for name, content in parts.items():
            workbook.writestr(name, content)
    return path


def test_workbooks_and_binary_files_are_refused_in_one_line(
    config_file: Path, engine: Engine, tmp_path: Path
) -> None:
    xls = tmp_path / "абоненты.xls"
    # An OLE compound file header, as every .xls starts.
    xls.write_bytes(
        bytes.fromhex("d0cf11e0a1b11ae1") + bytes(16) + b"\x3e\x00\x03\x00" + bytes(488)
    )
    binary = tmp_path / "абоненты.csv"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00")
    for path, words in (
        (minimal_xlsx(tmp_path / "абоненты.xlsx"), ("Excel workbook (.xlsx)", "Save As")),
        (xls, ("Excel 97-2003 workbook (.xls)", "Save As")),
        (binary, ("binary file", "not CSV")),
    ):
        result = mailbot("import", str(path), "--config", str(config_file))
        assert_one_line(result, 1, str(path), *words)
        assert result.stdout == ""
    with engine.connect() as connection:
        assert connection.scalars(select(Organisation.id)).all() == []


HEADER = "organisation;surname;given_names;snils;active\r\n"


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        # An unclosed quote used to swallow the rest of the file into one field.
        ('"Больница;Иванов;;;да\r\nБольница;Петров;;;да\r\n', "line 2: unclosed quote"),
        # ... or the next lines up to the following quote.
        (
            'Больница;Сидоров;;;да\r\n"Больница;Иванов;;;да\r\nБольница 2";Петров;;;да\r\n',
            "line 3: a quoted field runs over several lines (an unclosed quote?)",
        ),
        ('Больница;"Иванов"ич;;;да\r\n', "line 2: text after a closing quote"),
        ("Больница;Иванов;;;да;лишнее\r\n", "line 2: more fields than columns"),
    ],
    ids=["unclosed-to-the-end", "unclosed-to-a-later-quote", "after-a-quote", "extra-field"],
)
def test_broken_quoting_is_refused_with_its_line(
    config_file: Path,
    engine: Engine,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    body: str,
    problem: str,
) -> None:
    path = tmp_path / "абоненты.csv"
    path.write_bytes((HEADER + body).encode("cp1251"))
    code, out, err = run(capsys, "import", str(path), "--config", str(config_file))
    assert (code, err) == (1, f"mailbot: {path}: 1 problem(s); nothing was imported\n")
    (line,) = out.splitlines()
    assert line.startswith(f"{path}: {problem}")
    with engine.connect() as connection:
        assert connection.scalars(select(Organisation.id)).all() == []


def run_binary(capsysbinary: pytest.CaptureFixture[bytes], *args: str) -> tuple[int, bytes, str]:
    code = main(list(args))
    captured = capsysbinary.readouterr()
    return code, captured.out, captured.err.decode()


def organisations(engine: Engine) -> list[tuple[str, str | None, bool]]:
    with engine.connect() as connection:
        query = select(Organisation.name, Organisation.registry_code, Organisation.active)
        return [tuple(row) for row in connection.execute(query.order_by(Organisation.name))]  # type: ignore[misc]


def test_export_imports_back_unchanged_and_into_an_empty_directory(
    config_file: Path, engine: Engine, tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    c = ["--config", str(config_file)]
    for org in (
        ["--name", 'ООО "Ромашка"', "--code", "500001"],
        ["--name", "Больница без абонентов"],
        ["--name", "Закрытая больница", "--code", "500003"],
        ["--name", "Закрытая, без абонентов"],
    ):
        assert run_binary(capsysbinary, "org", "add", *org, *c)[0] == 0
    for args in (
        ["--org", "1", "--surname", "Семёнов", "--given-names", "Пётр Ильич",
         "--snils", "112-233-445 95", "--address", "p@x.example",
         "--address", "q@x.example"],
        ["--org", "1", "--surname", "Ёлкина", "--title", "врач; хирург"],
        ["--org", "3", "--surname", "Иванов", "--address", "i@x.example"],
    ):  # fmt: skip
        assert run_binary(capsysbinary, "subscriber", "add", *args, *c)[0] == 0
    for org in ("3", "4"):
        assert run_binary(capsysbinary, "org", "deactivate", org, *c)[0] == 0
    assert run_binary(capsysbinary, "subscriber", "deactivate", "2", *c)[0] == 0
    before = organisations(engine)

    code, exported, err = run_binary(capsysbinary, "export", *c)
    assert (code, err) == (0, "")
    # What a Russian Excel opens by double-click: UTF-8 with its mark, ';'.
    assert exported.startswith(codecs.BOM_UTF8 + b"organisation;organisation_code;")
    text = exported.decode("utf-8-sig")
    assert "Закрытая больница;500003;;;no;" in text
    assert "Закрытая, без абонентов" in text and "Больница без абонентов" in text
    path = tmp_path / "export.csv"
    path.write_bytes(exported)

    code, out, err = run_binary(capsysbinary, "import", str(path), *c)
    assert (code, err) == (0, "")
    assert (
        b"imported 5 row(s): 0 added, 0 updated, 5 unchanged; 0 organisation(s) created, "
        b"0 organisation(s) updated, 0 address(es) added"
    ) in out

    # Into an empty directory (a new server): everything comes back as it was.
    with engine.begin() as connection:
        for table in (TrustedAddress, Subscriber, Organisation):
            connection.execute(delete(table))
    code, out, err = run_binary(capsysbinary, "import", str(path), *c)
    assert (code, err) == (0, "")
    assert b"5 added, 0 updated, 0 unchanged; 4 organisation(s) created" in out
    assert organisations(engine) == before
    assert [active for _, _, active in before] == [True, False, False, True]
    assert run_binary(capsysbinary, "export", *c)[1] == exported

    # Other encodings and separators import back unchanged too.
    code, exported, _ = run_binary(
        capsysbinary, "export", "--encoding", "cp1251", "--delimiter", "tab", *c
    )
    assert exported.decode("cp1251").startswith("organisation\torganisation_code\t")
    path.write_bytes(exported)
    code, out, _ = run_binary(capsysbinary, "import", str(path), *c)
    assert b"(cp1251, 'tab'): imported 5 row(s): 0 added, 0 updated, 5 unchanged" in out


def test_export_to_cp1251_refuses_a_name_it_cannot_hold(
    config_file: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    c = ["--config", str(config_file)]
    run_binary(capsysbinary, "org", "add", "--name", "Больница", *c)
    run_binary(capsysbinary, "subscriber", "add", "--org", "1", "--surname", "Иванов", *c)
    run_binary(capsysbinary, "subscriber", "add", "--org", "1", "--surname", "Әлиев", *c)
    code, out, err = run_binary(capsysbinary, "export", "--encoding", "cp1251", *c)
    assert (code, out) == (1, b"")
    assert err == (
        "mailbot: nothing exported: line 3 (subscriber 2), column surname: cp1251 has no "
        "'Ә' (U+04D8); export with --encoding utf-8-sig\n"
    )
    code, out, _ = run_binary(capsysbinary, "export", *c)
    assert code == 0 and "Әлиев" in out.decode("utf-8-sig")
    code, out, err = run_binary(capsysbinary, "export", "--format", "json", "--delimiter", ",", *c)
    assert (code, err) == (1, "mailbot: --encoding and --delimiter apply to --format csv only\n")
    rows = json.loads(run_binary(capsysbinary, "export", "--format", "json", *c)[1])
    assert [row["surname"] for row in rows] == ["Иванов", "Әлиев"]
