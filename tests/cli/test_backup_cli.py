"""``mailbot backup`` / ``mailbot restore`` on SQLite and PostgreSQL: what a backup holds,
and every refusal of a restore (damaged backup, non-empty installation, running daemon,
newer schema), each leaving the installation as it was."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from mailbot.cli.exit_codes import EX_FAILURE
from mailbot.cli.main import main
from mailbot.directory import migrate
from mailbot.directory import subscribers as directory
from mailbot.directory.engine import make_engine
from mailbot.directory.lease import lease_for
from mailbot.directory.models import CertificateRecord, LetterRecord, Organisation
from testkit import pki as factory
from testkit import postgres
from tests.app.world import SNILS, World, cert_letter
from tests.cli.test_quarantine_cli import write_config


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def config(world: World, tmp_path: Path) -> list[str]:
    """A configuration of the world, with one certificate registered by a letter."""
    result = world.process(cert_letter(factory.make_end_entity(world.ca, snils=SNILS)), uid=1)
    assert result.outcome == "success", result.detail
    return write_config(world, tmp_path)


@pytest.fixture
def backup(config: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    path = tmp_path / "backups" / "one"
    code, out, err = run(capsys, "backup", str(path), *config)
    assert (code, err) == (0, ""), err
    assert out.startswith(f"backup written to {path}: database revision ")
    return path


def organisations(world: World) -> list[str]:
    with world.sessions() as session:
        return list(session.scalars(select(Organisation.name).order_by(Organisation.id)))


def test_backup_holds_everything_privately_with_a_manifest(
    world: World, backup: Path, config: list[str]
) -> None:
    manifest = json.loads((backup / "manifest.json").read_text("utf-8"))
    assert manifest["database"]["alembic_revision"] == migrate.head_revision()
    assert manifest["database"]["kind"] == world.sessions.kw["bind"].dialect.name
    assert manifest["database"]["tables"]["letters"] == 1
    assert manifest["database"]["tables"]["certificates"] == 1
    with world.sessions() as session:
        thumbprint = session.scalars(select(CertificateRecord.thumbprint_sha1)).one()
    files = manifest["files"]
    assert f"files/store/{thumbprint}.cer" in files
    assert any(name.startswith("files/crl/state-") for name in files)
    assert any(name.startswith("files/crl/crl-") and name.endswith(".idx") for name in files)
    assert not any(name.endswith(".crl") for name in files)  # raw CRLs are downloaded again
    config_file = Path(config[1])
    assert (backup / "config" / "config.toml").read_bytes() == config_file.read_bytes()
    assert not any(name.startswith("files/archive/") for name in files)  # no --with-archive
    listed = {str(p.relative_to(backup)) for p in backup.rglob("*") if p.is_file()}
    assert listed == set(files) | {"manifest.json"}
    for path in [backup, *backup.rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), path
    assert not list(backup.parent.glob(".one.partial-*"))


def test_with_archive_copies_the_raw_letters(
    world: World, config: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, _ = run(capsys, "backup", str(tmp_path / "full"), "--with-archive", *config)
    assert code == 0
    manifest = json.loads((tmp_path / "full" / "manifest.json").read_text("utf-8"))
    with world.sessions() as session:
        archived = Path(str(session.scalars(select(LetterRecord.archive_path)).one()))
    assert f"files/archive/{archived.parent.name}/{archived.name}" in manifest["files"]
    assert manifest["with_archive"] is True


def test_a_missing_store_file_is_reported_and_the_rest_backed_up(
    world: World, config: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    [stored] = list(world.config.certificate_store.glob("*.cer"))
    stored.unlink()
    code, out, err = run(capsys, "backup", str(tmp_path / "holed"), *config)
    assert code == EX_FAILURE
    assert out.startswith(f"backup written to {tmp_path / 'holed'}")
    assert f"mailbot: warning: the database names {stored}, which is missing" in err
    assert not (tmp_path / "holed" / "files" / "store").exists()  # no empty stand-in
    manifest = json.loads((tmp_path / "holed" / "manifest.json").read_text("utf-8"))
    assert manifest["database"]["tables"]["certificates"] == 1


def test_backup_refuses_an_existing_destination(
    backup: Path, config: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "backup", str(backup), *config)
    assert code == EX_FAILURE
    assert err.strip() == f"mailbot: {backup} already exists: name a new folder for the backup"


def test_restore_refuses_a_non_empty_installation_without_force(
    world: World, backup: Path, config: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with world.sessions() as session:
        directory.add_organisation(session, "Добавлена после копии")
        session.commit()
    code, _, err = run(capsys, "restore", str(backup), *config)
    assert code == EX_FAILURE
    assert len(err.strip().splitlines()) == 1
    assert "the installation is not empty (database tables " in err
    assert f"store folder {world.config.certificate_store}" in err
    assert "restore --force replaces it" in err
    assert organisations(world)[-1] == "Добавлена после копии"  # nothing changed

    code, out, _ = run(capsys, "restore", str(backup), "--force", *config)
    assert code == 0, out
    assert "Добавлена после копии" not in organisations(world)
    assert run(capsys, "store", "verify", *config)[0] == 0


def test_restore_refuses_files_in_an_empty_database_folder(
    world: World,
    backup: Path,
    config: list[str],
    engine: Engine,
    capsys: pytest.CaptureFixture[str],
) -> None:
    migrate.downgrade(engine, "base")
    migrate.upgrade(engine)  # an empty database, but the store still holds a certificate
    code, _, err = run(capsys, "restore", str(backup), *config)
    assert code == EX_FAILURE
    assert f"(store folder {world.config.certificate_store})" in err


def test_a_tampered_file_is_refused_by_name(
    world: World, backup: Path, config: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    [stored] = list((backup / "files" / "store").iterdir())
    data = bytearray(stored.read_bytes())
    data[-1] ^= 1
    stored.write_bytes(bytes(data))
    with world.sessions() as session:
        directory.add_organisation(session, "Должна остаться")
        session.commit()
    code, _, err = run(capsys, "restore", str(backup), "--force", *config)
    assert code == EX_FAILURE
    assert err.strip() == (
        f"mailbot: backup file files/store/{stored.name} does not match its SHA-256 in the "
        "manifest (damaged or changed): nothing was restored"
    )
    assert organisations(world)[-1] == "Должна остаться"


def test_a_manifest_naming_a_path_outside_is_refused(
    backup: Path, config: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = json.loads((backup / "manifest.json").read_text("utf-8"))
    manifest["files"]["files/store/../../../../etc/evil"] = {"sha256": "0" * 64, "size": 1}
    (backup / "manifest.json").write_text(json.dumps(manifest), "utf-8")
    code, _, err = run(capsys, "restore", str(backup), "--force", *config)
    assert code == EX_FAILURE
    assert "the manifest names an unsafe path: 'files/store/../../../../etc/evil'" in err


def test_restore_refuses_while_a_daemon_holds_the_lease(
    world: World, backup: Path, config: list[str], engine: Engine,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    general = world.config.general
    lease = lease_for(engine, general.instance_name, general.state_dir)
    assert lease.try_acquire()
    try:
        code, _, err = run(capsys, "restore", str(backup), "--force", *config)
    finally:
        lease.release()
    assert code == EX_FAILURE
    assert err.strip() == (
        f"mailbot: a mailbot daemon holds the lease of instance '{general.instance_name}': "
        "stop it (and mailbot-once.timer) before restoring"
    )
    assert run(capsys, "restore", str(backup), "--force", *config)[0] == 0  # released: works


def test_a_backup_of_a_newer_schema_is_refused(
    backup: Path, config: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = json.loads((backup / "manifest.json").read_text("utf-8"))
    manifest["database"]["alembic_revision"] = "9999"
    (backup / "manifest.json").write_text(json.dumps(manifest), "utf-8")
    code, _, err = run(capsys, "restore", str(backup), "--force", *config)
    assert code == EX_FAILURE
    assert "schema is at revision 9999, newer than this mailbot knows" in err


def test_a_backup_of_an_older_schema_asks_for_db_upgrade(
    world: World, engine: Engine, config: list[str], tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    migrate.downgrade(engine, "0002")
    assert run(capsys, "backup", str(tmp_path / "old"), *config)[0] == 0
    migrate.upgrade(engine)
    code, out, _ = run(capsys, "restore", str(tmp_path / "old"), "--force", *config)
    assert code == 0
    head = migrate.head_revision()
    assert (
        f"the database schema is at 0002, this mailbot needs {head}: run `mailbot db upgrade`"
        in out
    )
    assert migrate.current_revision(engine) == "0002"
    assert run(capsys, "db", "upgrade", *config)[0] == 0
    assert run(capsys, "store", "verify", *config)[0] == 0


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_sqlite_backup_moves_to_postgresql_and_other_folders(
    world: World, backup: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One dump format: a new server with PostgreSQL and its own folders takes the backup."""
    url = postgres.create_database()
    new_state = tmp_path / "new-server"
    path = tmp_path / "new-server.toml"
    path.write_text(
        f'[general]\nstate_dir = "{new_state}"\n[imap]\npassword_env = "UNUSED"\n'
        f'[database]\nurl = "{url}"\n[logging]\nformat = "console"\nlevel = "warning"\n',
        encoding="utf-8",
    )
    c = ["--config", str(path)]
    engine = make_engine(url)
    try:
        code, _, err = run(capsys, "restore", str(backup), *c)
        assert code == 0, err
        code, out, _ = run(capsys, "store", "verify", *c)
        assert (code, out.strip()) == (
            0, f"{new_state / 'store'}: 1 registered certificate(s), consistent",
        )  # fmt: skip
        with engine.connect() as connection:
            stored = Path(connection.execute(select(CertificateRecord.store_path)).scalar_one())
        assert stored.parent == new_state / "store" and stored.is_file()
        # PostgreSQL's ids go on after the restored rows.
        code, out, _ = run(capsys, "org", "add", "--name", "Новая", *c)
        assert (code, out.strip()) == (0, "organisation 2 added: Новая")
    finally:
        engine.dispose()
        postgres.drop_database(url)


def test_a_failed_load_leaves_the_database_as_it_was(
    world: World, backup: Path, config: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """The drop, the schema and the rows are one transaction, on SQLite as on PostgreSQL."""
    manifest = json.loads((backup / "manifest.json").read_text("utf-8"))
    manifest["database"]["tables"]["letters"] = 5  # the rows file holds one
    (backup / "manifest.json").write_text(json.dumps(manifest), "utf-8")
    with world.sessions() as session:
        directory.add_organisation(session, "Должна остаться")
        session.commit()
    code, _, err = run(capsys, "restore", str(backup), "--force", *config)
    assert code == EX_FAILURE
    assert err.strip() == "mailbot: table letters: the backup holds 1 rows, its manifest says 5"
    assert organisations(world)[-1] == "Должна остаться"
