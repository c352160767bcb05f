"""``make_backup``: the database first, then the files its rows name, then the manifest.

The order is what makes the copy consistent while the daemon keeps working:
mailbot writes a certificate's file (and a quarantined one's, and a letter's
raw copy) before it commits the row naming it, so every row of the snapshot
has its file by the time the files are copied. Files newer than the snapshot
are left out: the store and the quarantine are copied by the rows, not by a
listing of the folders, so ``mailbot store verify`` after a restore finds
neither a row without a file nor a file without a row.

The backup is built in a hidden sibling folder and renamed to DEST at the
end: a DEST that exists is a complete backup.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import re
import secrets
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from mailbot import __version__
from mailbot.app.backup.dump import dump_database, read_rows
from mailbot.app.backup.layout import (
    CONFIG_DIR,
    FILES_DIR,
    MANIFEST,
    BackupError,
    BackupWriter,
    Manifest,
    make_backup_dir,
)
from mailbot.app.states import LetterState
from mailbot.config import Config
from mailbot.directory.engine import engine_from_config
from mailbot.files import fsync_directory, make_private_dirs

#: Letters whose raw copy is still needed (to decide them again): kept even without --with-archive.
_WAITING = (LetterState.DEFERRED, LetterState.CLAIMED)
#: A CRL cache's current index named in a state file (names are hex only).
_INDEX_NAME = re.compile(r"^crl-[0-9a-f]+-[0-9a-fh]+\.idx$")


@dataclass
class BackupReport:
    """What a backup holds."""

    path: Path
    revision: str
    tables: dict[str, int]
    files: int
    bytes: int
    #: Files the database names that were not there (the backup is written all the same).
    missing: list[str] = field(default_factory=list)


def make_backup(
    config: Config,
    dest: Path,
    *,
    with_archive: bool = False,
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
) -> BackupReport:
    """Write a backup of the installation configured by *config* into the new folder *dest*."""
    dest = dest.absolute()
    if dest.exists() or dest.is_symlink():
        raise BackupError(f"{dest} already exists: name a new folder for the backup")
    make_private_dirs(dest.parent)
    partial = dest.parent / f".{dest.name}.partial-{secrets.token_hex(4)}"
    make_backup_dir(partial)
    try:
        report = _write(config, partial, with_archive, clock)
        partial.rename(dest)
        fsync_directory(dest.parent)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    report.path = dest
    return report


def _write(
    config: Config, root: Path, with_archive: bool, clock: Callable[[], dt.datetime]
) -> BackupReport:
    created_at = clock()
    writer = BackupWriter(root)
    engine = engine_from_config(config)
    try:
        dump = dump_database(engine, writer)
    finally:
        engine.dispose()
    missing: list[str] = []
    for name, source, required in _files(config, root, with_archive):
        if name in writer.files:
            continue
        try:
            writer.copy(source, name)
        except FileNotFoundError:
            if required:
                missing.append(str(source))
    _copy_crl_cache(config.crl_cache_dir, writer)
    config_name = None
    if config.source is not None:
        # A fixed name: the file's own may be anything, the manifest's names are plain.
        config_name = f"{CONFIG_DIR}/config.toml"
        writer.copy(config.source, config_name)
    manifest = Manifest(
        mailbot_version=__version__,
        created_at=created_at.isoformat(),
        database_kind=dump.kind,
        alembic_revision=dump.revision,
        tables=dump.tables,
        folders=backed_up_folders(config),
        with_archive=with_archive,
        config_file=config_name,
        files=dict(writer.files),
    )
    writer.sync()
    # Last, so that a manifest is there only when everything it lists is.
    writer.write_bytes(MANIFEST, manifest.to_json())
    fsync_directory(root)
    return BackupReport(
        root,
        dump.revision,
        dump.tables,
        files=len(manifest.files),
        bytes=sum(entry.size for entry in manifest.files.values()),
        missing=sorted(missing),
    )


def backed_up_folders(config: Config) -> dict[str, str]:
    """Section -> the configured folder it stands for."""
    return {
        "store": str(config.certificate_store),
        "quarantine": str(config.quarantine_dir),
        "crl": str(config.crl_cache_dir),
        "archive": str(config.archive_dir),
    }


def _files(config: Config, root: Path, with_archive: bool) -> Iterator[tuple[str, Path, bool]]:
    """(name in the backup, file, whether the database needs it) for every file to copy."""
    store, quarantine, archive = (f"{FILES_DIR}/{s}" for s in ("store", "quarantine", "archive"))
    for row in read_rows(root, "certificates"):
        path = _stored(config.certificate_store, row.get("store_path"),
                       f"{row['thumbprint_sha1']}.cer")  # fmt: skip
        yield f"{store}/{path.name}", path, True
    for row in read_rows(root, "quarantine"):
        path = _stored(config.quarantine_dir, row.get("path"), f"{row['thumbprint_sha1']}.cer")
        yield f"{quarantine}/{path.name}", path, row.get("status") == "pending"
        metadata = path.with_suffix(".json")
        yield f"{quarantine}/{metadata.name}", metadata, False
    if with_archive:
        if config.archive_dir.is_dir():
            for path in sorted(config.archive_dir.glob("*/*.eml")):
                yield f"{archive}/{path.parent.name}/{path.name}", path, False
        return
    for row in read_rows(root, "letters"):
        if row.get("state") in _WAITING and row.get("archive_path"):
            path = Path(row["archive_path"])
            yield f"{archive}/{path.name[:2]}/{path.name}", path, True


def _stored(folder: Path, recorded: object, default_name: str) -> Path:
    """The file a row names: its recorded path, else the default name in the folder."""
    return Path(recorded) if isinstance(recorded, str) and recorded else folder / default_name


def _copy_crl_cache(cache: Path, writer: BackupWriter) -> None:
    """The CRL cache's state files and each one's current index (with its metadata).

    The state files keep the highest CRL number accepted per CA key, which an
    older CRL replayed later must not undercut; the current index lets
    revocation checks go on before the next download. The raw CRLs (the
    largest files) and superseded indexes are left out: nothing reads them
    after an ingest, and a download brings them back. A state is read once:
    the copy and the index it names agree even while a new CRL comes in
    (an ingest never deletes the index it replaces).
    """
    if not cache.is_dir():
        return
    folder = f"{FILES_DIR}/crl"
    for state in sorted(cache.glob("state-*.json")):
        try:
            data = state.read_bytes()
        except FileNotFoundError:
            continue
        writer.write_bytes(f"{folder}/{state.name}", data)
        try:
            current = json.loads(data).get("current")
        except (ValueError, AttributeError):
            continue
        if isinstance(current, str) and _INDEX_NAME.match(current):
            for path in (cache / current, (cache / current).with_suffix(".json")):
                with contextlib.suppress(FileNotFoundError):
                    writer.copy(path, f"{folder}/{path.name}")
