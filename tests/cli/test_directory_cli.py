"""The administrator's directory commands and the CSV import, on both databases."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from mailbot.cli.exit_codes import EX_CONFIG
from mailbot.cli.main import main
from mailbot.directory.csv_import import CHUNK_ROWS, PROGRESS_EVERY
from mailbot.directory.models import Subscriber, TrustedAddress
from testkit.directory_csv import write_directory_csv

CSV_HEADER = "organisation;organisation_code;organisation_inn;surname;given_names;title;snils;addresses;active\n"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_org_subscriber_address_lifecycle(
    config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    c = ["--config", str(config_file)]
    code, out, _ = run(
        capsys, "org", "add", "--name", "ГБУЗ МО «Поликлиника»", "--inn", "7710474375", *c
    )
    assert (code, out.strip()) == (0, "organisation 1 added: ГБУЗ МО «Поликлиника»")
    code, out, _ = run(
        capsys, "subscriber", "add", "--org", "1", "--surname", "Иванов",
        "--snils", "11223344595", "--address", "Ivanov@Clinic.example", *c,
    )  # fmt: skip
    assert code == 0
    code, out, _ = run(capsys, "subscriber", "list", "--format", "json", *c)
    (row,) = json.loads(out)
    assert row["addresses"] == "ivanov@clinic.example"
    assert row["snils"] == "11223344595"
    assert run(capsys, "address", "add", "1", "second@clinic.example", *c)[0] == 0
    code, out, _ = run(capsys, "address", "list", "--format", "csv", *c)
    assert out.splitlines() == [
        "subscriber_id,address,active",
        "1,ivanov@clinic.example,True",
        "1,second@clinic.example,True",
    ]
    assert run(capsys, "org", "deactivate", "1", *c)[0] == 0
    code, out, _ = run(capsys, "org", "list", "--format", "json", *c)
    assert json.loads(out)[0]["active"] is False
    code, out, _ = run(capsys, "subscriber", "set-snils", "1", "--clear", *c)
    assert "cleared" in out


def test_errors_are_one_line_with_nonzero_exit(
    config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    c = ["--config", str(config_file)]
    code, _, err = run(capsys, "subscriber", "show", "42", *c)
    assert (code, err.strip()) == (1, "mailbot: no subscriber with id 42")
    code, _, err = run(capsys, "org", "add", "--name", "X", "--inn", "123", *c)
    assert code == 1
    assert "INN must have 10 or 12 digits" in err


def test_csv_import_all_or_nothing(
    config_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    c = ["--config", str(config_file)]
    bad = tmp_path / "bad.csv"
    bad.write_bytes(
        (
            CSV_HEADER
            + "Больница №1;500001;7710474375;Иванов;Иван Иванович;Врач;112-233-445 95;a@x.example;да\n"
            + "Больница №1;500001;7710474375;Петров;Пётр;Врач;112-233-445 96;p@x.example;да\n"
            + "Больница №2;500002;;Сидоров;;;;not-an-address;может\n"
        ).encode("cp1251")
    )
    code, out, err = run(capsys, "import", str(bad), *c)
    assert code == 1
    assert "line 3: SNILS '112-233-445 96' fails its checksum" in out
    assert "line 4: 'not-an-address' is not an e-mail address" in out
    assert "line 4: active must be yes or no, got 'может'" in out
    assert "nothing was imported" in err
    code, out, _ = run(capsys, "subscriber", "list", "--format", "json", *c)
    assert json.loads(out) == []

    good = tmp_path / "good.csv"
    good.write_bytes(
        (
            CSV_HEADER
            + "Больница №1;500001;7710474375;Иванов;Иван Иванович;Врач;112-233-445 95;a@x.example;да\n"
            + "Больница №1;500001;7710474375;Петров;Пётр;Врач;123-456-789 64;a@x.example p@x.example;нет\n"
        ).encode("cp1251")
    )
    code, out, _ = run(capsys, "import", "--dry-run", str(good), *c)
    assert code == 0 and "would import 2 row(s)" in out and "(cp1251, ';')" in out
    assert json.loads(run(capsys, "subscriber", "list", "--format", "json", *c)[1]) == []
    code, out, _ = run(capsys, "import", str(good), *c)
    assert code == 0
    assert "2 added, 0 updated, 0 unchanged; 1 organisation(s) created" in out
    rows = json.loads(run(capsys, "export", "--format", "json", *c)[1])
    assert {(r["surname"], r["addresses"], r["active"]) for r in rows} == {
        ("Иванов", "a@x.example", "yes"),
        ("Петров", "a@x.example;p@x.example", "no"),
    }
    # Importing the same file again changes nothing.
    code, out, _ = run(capsys, "import", str(good), *c)
    assert "0 added, 0 updated, 2 unchanged; 0 organisation(s) created" in out


def test_csv_import_reports_progress_unless_quiet(
    config_file: Path, engine: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    c = ["--config", str(config_file)]
    rows = PROGRESS_EVERY + 1
    directory = write_directory_csv(tmp_path / "directory.csv", rows)
    code, out, err = run(capsys, "import", "--dry-run", str(directory), *c)
    assert code == 0 and f"would import {rows} row(s)" in out
    assert err.splitlines() == [f"checked {PROGRESS_EVERY}/{rows} rows"]
    code, out, err = run(capsys, "import", str(directory), *c)
    assert code == 0
    assert f"{rows} added, 0 updated, 0 unchanged" in out
    assert f"{rows} address(es) added" in out
    assert err.splitlines() == [f"imported {PROGRESS_EVERY}/{rows} rows"]
    # Every generated row is a new person: distinct valid SNILS and addresses.
    with engine.connect() as connection:
        snils = connection.scalars(select(Subscriber.snils)).all()
        addresses = connection.scalars(select(TrustedAddress.address)).all()
    assert (len(set(snils)), len(set(addresses))) == (rows, rows)

    code, out, err = run(capsys, "import", "--quiet", str(directory), *c)
    assert code == 0 and f"0 added, 0 updated, {rows} unchanged" in out
    assert err == ""


def test_csv_import_of_many_rows_with_a_bad_last_row_writes_nothing(
    config_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    c = ["--config", str(config_file)]
    directory = write_directory_csv(tmp_path / "directory.csv", 2 * CHUNK_ROWS + 1)
    with directory.open("a", encoding="utf-8") as stream:
        stream.write("Больница;;;;;Иванов;;;112-233-445 96;;да\n")
    code, out, err = run(capsys, "import", "-q", str(directory), *c)
    assert code == 1
    assert out.splitlines() == [
        f"{directory}: line {2 * CHUNK_ROWS + 3}: SNILS '112-233-445 96' fails its checksum"
    ]
    assert "1 problem(s); nothing was imported" in err
    assert json.loads(run(capsys, "org", "list", "--format", "json", *c)[1]) == []


def test_csv_import_of_a_file_in_no_known_encoding_is_refused(
    config_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # 0x98 is undefined in CP1251 and cannot start a UTF-8 character.
    bad = tmp_path / "bad.csv"
    bad.write_bytes(CSV_HEADER.encode() + b"\x98;;;;;;;;\n")
    code, out, err = run(capsys, "import", str(bad), "--config", str(config_file))
    assert code == 1
    assert (out, err) == ("", f"mailbot: {bad}: the file is neither UTF-8 nor CP1251 text\n")


def test_csv_import_of_a_missing_file(
    config_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "missing.csv"
    code, _, err = run(capsys, "import", str(missing), "--config", str(config_file))
    assert (code, err.strip()) == (1, f"mailbot: cannot read {missing}: No such file or directory")


def test_schema_must_be_current(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "c.toml"
    path.write_text(f'[general]\nstate_dir = "{tmp_path}"\n[imap]\npassword_env = "X"\n')
    code, _, err = run(capsys, "org", "list", "--config", str(path))
    assert code == EX_CONFIG
    assert "run `mailbot db upgrade`" in err


def test_store_verify(
    config_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    c = ["--config", str(config_file)]
    code, out, _ = run(capsys, "store", "verify", *c)
    assert code == 0 and "0 registered certificate(s), consistent" in out
    store = tmp_path / "state" / "store"
    store.mkdir(parents=True)
    (store / ("D" * 40 + ".cer")).write_bytes(b"\x30\x00")
    code, out, _ = run(capsys, "store", "verify", *c)
    assert code == 1
    assert f"file without row: {store / ('D' * 40 + '.cer')}" in out


def test_journal_and_cert_list(
    config_file: Path,
    engine,
    capsys: pytest.CaptureFixture[str],  # type: ignore[no-untyped-def]
) -> None:
    import datetime as dt

    from mailbot.directory.models import CertificateRecord, LetterRecord
    from mailbot.directory.session import session_factory

    c = ["--config", str(config_file)]
    assert run(capsys, "org", "add", "--name", "Org", *c)[0] == 0
    assert run(capsys, "subscriber", "add", "--org", "1", "--surname", "Иванов", *c)[0] == 0
    now = dt.datetime.now(dt.UTC)
    with session_factory(engine)() as session:
        session.add_all(
            [
                LetterRecord(mailbox="INBOX", sha256="a" * 64, sender="a@x.example", outcome="success",
                       state="done", received_at=now - dt.timedelta(days=10)),
                LetterRecord(mailbox="INBOX", sha256="b" * 64, sender="b@x.example", outcome="no_cer",
                       state="done", received_at=now),
            ]
        )  # fmt: skip
        for days, thumb in ((20, "1" * 40), (200, "2" * 40)):
            session.add(
                CertificateRecord(subscriber_id=1, serial="01AB", issuer_dn="CN=CA", subject_dn="CN=I",
                            subject_cn="Иванов", not_before=now - dt.timedelta(days=300),
                            not_after=now + dt.timedelta(days=days), thumbprint_sha1=thumb,
                            thumbprint_sha256="f" * 64, store_path=f"/s/{thumb}.cer")
            )  # fmt: skip
        session.commit()
    rows = json.loads(run(capsys, "journal", "--format", "json", *c)[1])
    assert [r["sender"] for r in rows] == ["b@x.example", "a@x.example"]
    rows = json.loads(run(capsys, "journal", "--since", "3d", "--format", "json", *c)[1])
    assert [r["outcome"] for r in rows] == ["no_cer"]
    rows = json.loads(run(capsys, "journal", "--outcome", "success", "--format", "json", *c)[1])
    assert [r["sender"] for r in rows] == ["a@x.example"]
    rows = json.loads(
        run(capsys, "cert", "list", "--expiring-within", "30", "--format", "json", *c)[1]
    )
    assert [r["thumbprint_sha1"] for r in rows] == ["1" * 40]
    assert len(json.loads(run(capsys, "cert", "list", "--format", "json", *c)[1])) == 2


def test_store_verify_compares_rows_and_files(
    config_file: Path,
    engine,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],  # type: ignore[no-untyped-def]
) -> None:
    import datetime as dt

    from mailbot.directory.models import CertificateRecord
    from mailbot.directory.session import session_factory

    c = ["--config", str(config_file)]
    store = tmp_path / "state" / "store"
    store.mkdir(parents=True)
    code, out, _ = run(capsys, "store", "verify", *c)
    assert (code, out.strip().endswith("0 registered certificate(s), consistent")) == (0, True)
    assert run(capsys, "org", "add", "--name", "Org", *c)[0] == 0
    assert run(capsys, "subscriber", "add", "--org", "1", "--surname", "Иванов", *c)[0] == 0
    now = dt.datetime.now(dt.UTC)
    (store / f"{'1' * 40}.cer").write_bytes(b"0")
    with session_factory(engine)() as session:
        session.add(
            CertificateRecord(
                subscriber_id=1, serial="01AB", issuer_dn="CN=CA", subject_dn="CN=I",
                subject_cn="Иванов", not_before=now, not_after=now + dt.timedelta(days=1),
                thumbprint_sha1="1" * 40, thumbprint_sha256="f" * 64,
                store_path=str(store / f"{'1' * 40}.cer"),
            )
        )  # fmt: skip
        session.commit()
    assert run(capsys, "store", "verify", *c)[0] == 0
    (store / f"{'2' * 40}.cer").write_bytes(b"0")
    code, out, _ = run(capsys, "store", "verify", *c)
    assert code == 1
    assert f"file without row: {store / ('2' * 40 + '.cer')}" in out
    assert "INCONSISTENT" in out
