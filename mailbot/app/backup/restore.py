"""``restore_backup``: check everything, then the database, then the files.

Nothing is touched until every check has passed: every file's SHA-256 against
the manifest, the schema revision (one this mailbot knows), the lease (no
daemon may work the mailbox meanwhile; the restore holds the lease itself
until it is done), and, without ``force``, that the installation is empty.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine

from mailbot.app.backup.dump import table_file
from mailbot.app.backup.layout import (
    FILES_DIR,
    SECTIONS,
    BackupError,
    Manifest,
    restore_file,
    sha256_of,
)
from mailbot.app.backup.load import PathRewrites, load_database, tables_with_rows
from mailbot.app.backup.snapshot import backed_up_folders
from mailbot.config import Config
from mailbot.directory import migrate
from mailbot.directory.engine import engine_from_config
from mailbot.directory.lease import lease_for
from mailbot.files import fsync_directory

#: The files of each folder that a restore replaces (and that make it "not empty"):
#: mailbot's own names only, so a folder shared with anything else loses nothing else.
_OWN_FILES = {
    "store": ("*.cer",),
    "quarantine": ("*.cer", "*.json"),
    "crl": ("state-*.json", "crl-*"),
    "archive": ("*/*.eml",),
}
#: Rows holding paths into the folders, rewritten when this installation's folder differs.
_PATH_COLUMNS = {
    ("certificates", "store_path"): "store",
    ("quarantine", "path"): "quarantine",
    ("letters", "archive_path"): "archive",
}


@dataclass(frozen=True)
class RestoreReport:
    """What a restore did."""

    revision: str
    #: The newest revision this mailbot knows; a restored older one needs ``db upgrade``.
    head: str | None
    rows: int
    files: int
    config_copy: Path | None

    @property
    def needs_upgrade(self) -> bool:
        """Whether the restored schema is older than this mailbot's."""
        return self.revision != self.head


def restore_backup(config: Config, source: Path, *, force: bool = False) -> RestoreReport:
    """Restore the backup in folder *source* into the installation of *config*."""
    manifest = Manifest.read(source)
    verify_files(source, manifest)
    head = migrate.head_revision()
    if not migrate.is_known_revision(manifest.alembic_revision):
        raise BackupError(
            f"the backup's database schema is at revision {manifest.alembic_revision}, "
            f"newer than this mailbot knows (newest {head}): restore it with mailbot "
            f"{manifest.mailbot_version} or later"
        )
    folders = {section: Path(path) for section, path in backed_up_folders(config).items()}
    rewrites: PathRewrites = {
        key: (manifest.folders.get(section, ""), str(folders[section]))
        for key, section in _PATH_COLUMNS.items()
    }
    engine = engine_from_config(config)
    try:
        with _lease_held(engine, config):
            if not force:
                _refuse_non_empty(tables_with_rows(engine), folders)
            load_database(engine, source, manifest.alembic_revision, manifest.tables, rewrites)
            files = _restore_files(source, manifest, folders)
    finally:
        engine.dispose()
    copy = source / manifest.config_file if manifest.config_file else None
    return RestoreReport(
        manifest.alembic_revision, head, sum(manifest.tables.values()), files, copy
    )


@contextlib.contextmanager
def _lease_held(engine: Engine, config: Config) -> Iterator[None]:
    """The daemon's lease, held by the restore: refused while a daemon holds it."""
    with engine.connect():
        pass  # an unreachable database says so, not "the lease is held"
    lease = lease_for(engine, config.general.instance_name, config.general.state_dir)
    if not lease.try_acquire():
        raise BackupError(
            f"a mailbot daemon holds the lease of instance {config.general.instance_name!r}: "
            "stop it (and mailbot-once.timer) before restoring"
        )
    try:
        yield
    finally:
        lease.release()


def verify_files(source: Path, manifest: Manifest) -> None:
    """Refuse a backup any of whose files is missing or differs from its manifest entry."""
    for table in manifest.tables:
        if table_file(table) not in manifest.files:
            raise BackupError(f"the manifest lists table {table} but not its file")
    for name, expected in sorted(manifest.files.items()):
        path = source / name
        try:
            actual = sha256_of(path)
        except FileNotFoundError:
            raise BackupError(f"backup file {name} is missing: nothing was restored") from None
        if actual != expected:
            raise BackupError(
                f"backup file {name} does not match its SHA-256 in the manifest "
                "(damaged or changed): nothing was restored"
            )


def _own_files(folder: Path, section: str) -> Iterator[Path]:
    if folder.is_dir():
        for pattern in _OWN_FILES[section]:
            yield from (p for p in folder.glob(pattern) if p.is_file())


def _refuse_non_empty(tables: list[str], folders: dict[str, Path]) -> None:
    occupied = [f"database tables {', '.join(tables)}"] if tables else []
    for section in ("store", "quarantine"):
        if next(_own_files(folders[section], section), None) is not None:
            occupied.append(f"{section} folder {folders[section]}")
    if occupied:
        raise BackupError(
            "the installation is not empty (" + "; ".join(occupied) + "): "
            "restore --force replaces it"
        )


def _restore_files(source: Path, manifest: Manifest, folders: dict[str, Path]) -> int:
    """Replace mailbot's files in each folder with the backup's; the archive only gains."""
    by_section: dict[str, list[str]] = {section: [] for section in SECTIONS}
    for name in manifest.files:
        parts = name.split("/", 2)
        if parts[0] == FILES_DIR and len(parts) == 3 and parts[1] in by_section:
            by_section[parts[1]].append(parts[2])
    count = 0
    for section in SECTIONS:
        folder = folders[section]
        # Raw letters are named by their SHA-256: the ones there already can stay.
        if section != "archive":
            for stale in list(_own_files(folder, section)):
                with contextlib.suppress(FileNotFoundError):
                    stale.unlink()
            if folder.is_dir():
                fsync_directory(folder)
        for relative in sorted(by_section[section]):
            restore_file(source / FILES_DIR / section / relative, folder / relative)
            count += 1
    return count
