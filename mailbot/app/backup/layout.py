"""The backup folder: its layout, ``manifest.json``, and private, hashed copies of files.

::

    DEST/                         0700
      manifest.json               0600, written last
      database/<table>.jsonl      one JSON object per row
      files/store/…               registered certificates (DER)
      files/quarantine/…          certificates from unknown CAs and their metadata
      files/crl/…                 CRL cache: state files and the current indexes
      files/archive/…             raw letters (all with --with-archive; else those still waiting)
      config/config.toml          the configuration file (never the passwords)

Every file in the folder but the manifest is listed in it with its SHA-256 and
size; a restore checks them all before it touches anything.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from mailbot.files import fsync_directory, make_private_dirs, write_atomically

MANIFEST = "manifest.json"
DATABASE_DIR = "database"
FILES_DIR = "files"
CONFIG_DIR = "config"
#: What ``manifest.json`` says it is; a restore refuses anything else.
FORMAT = "mailbot-backup"
FORMAT_VERSION = 1
#: The sections of ``files/``, restored into the configured folder of the same role.
SECTIONS = ("store", "quarantine", "crl", "archive")

#: A backup holds personal data: only its owner may read it.
BACKUP_DIR_MODE = 0o700
BACKUP_FILE_MODE = 0o600
_CHUNK = 1024 * 1024
#: A relative path inside a backup: plain names only (no ``..``, no hidden tricks).
_PART = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+-]*$")


class BackupError(Exception):
    """A backup or a restore refused or failed; the text is one line for the administrator."""


@dataclass(frozen=True)
class FileEntry:
    """One file of the backup, as the manifest lists it."""

    sha256: str
    size: int


@dataclass
class Manifest:
    """What ``manifest.json`` holds."""

    mailbot_version: str
    created_at: str
    database_kind: str
    alembic_revision: str
    #: Table name -> number of rows, in the order they are loaded (parents first).
    tables: dict[str, int]
    #: Section -> the folder it was copied from (a restore rewrites paths in rows with it).
    folders: dict[str, str]
    with_archive: bool
    config_file: str | None
    files: dict[str, FileEntry] = field(default_factory=dict)

    def to_json(self) -> bytes:
        """The manifest as UTF-8 JSON."""
        document: dict[str, Any] = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "mailbot_version": self.mailbot_version,
            "created_at": self.created_at,
            "database": {
                "kind": self.database_kind,
                "alembic_revision": self.alembic_revision,
                "tables": self.tables,
            },
            "folders": self.folders,
            "with_archive": self.with_archive,
            "config_file": self.config_file,
            "files": {
                name: {"sha256": entry.sha256, "size": entry.size}
                for name, entry in sorted(self.files.items())
            },
        }
        return json.dumps(document, ensure_ascii=False, indent=1).encode("utf-8") + b"\n"

    @classmethod
    def read(cls, folder: Path) -> Manifest:
        """The manifest of the backup in *folder*; raises :class:`BackupError`."""
        path = folder / MANIFEST
        try:
            document = json.loads(path.read_bytes())
        except FileNotFoundError:
            raise BackupError(f"{folder} is not a mailbot backup: no {MANIFEST}") from None
        except ValueError as exc:
            raise BackupError(f"{path} is not valid JSON: {exc}") from None
        if not isinstance(document, dict) or document.get("format") != FORMAT:
            raise BackupError(f"{path} is not a mailbot backup manifest")
        if document.get("format_version") != FORMAT_VERSION:
            raise BackupError(
                f"{path}: backup format {document.get('format_version')!r} is not supported "
                f"(this mailbot reads {FORMAT_VERSION})"
            )
        try:
            database = document["database"]
            return cls(
                mailbot_version=str(document["mailbot_version"]),
                created_at=str(document["created_at"]),
                database_kind=str(database["kind"]),
                alembic_revision=str(database["alembic_revision"]),
                tables={str(k): int(v) for k, v in database["tables"].items()},
                folders={str(k): str(v) for k, v in document["folders"].items()},
                with_archive=bool(document["with_archive"]),
                config_file=document.get("config_file"),
                files={
                    checked_relative(name): FileEntry(str(e["sha256"]), int(e["size"]))
                    for name, e in document["files"].items()
                },
            )
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise BackupError(f"{path} is incomplete or malformed: {exc}") from None


def checked_relative(name: str) -> str:
    """*name* if it is a plain relative path inside a backup; raises :class:`BackupError`.

    The manifest names the files a restore writes: a ``..`` or an absolute
    path in it must never reach outside the installation's folders.
    """
    parts = PurePosixPath(name).parts
    if not parts or not all(_PART.match(part) for part in parts):
        raise BackupError(f"the manifest names an unsafe path: {name!r}")
    return name


def sha256_of(path: Path) -> FileEntry:
    """SHA-256 and size of a file, read in chunks."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return FileEntry(digest.hexdigest(), size)


def make_backup_dir(path: Path) -> None:
    """Create a folder of the backup (and its missing parents inside it) as ``0700``."""
    missing = []
    while not path.exists():
        missing.append(path)
        path = path.parent
    for folder in reversed(missing):
        folder.mkdir(mode=BACKUP_DIR_MODE)
        folder.chmod(BACKUP_DIR_MODE)  # whatever the umask took away or left


class BackupWriter:
    """Writes the files of a backup under *root*, each ``0600``, and remembers their hashes."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.files: dict[str, FileEntry] = {}

    def open_new(self, name: str) -> tuple[Path, int]:
        """A new private file *name* (relative), as a path and an open descriptor."""
        path = self.root / checked_relative(name)
        make_backup_dir(path.parent)
        return path, os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, BACKUP_FILE_MODE)

    def write_bytes(self, name: str, data: bytes) -> None:
        """Add a file with *data*."""
        self.write_chunks(name, [data])

    def write_chunks(self, name: str, chunks: Iterable[bytes]) -> FileEntry:
        """Add a file written from *chunks* (a large table never sits in memory whole)."""
        _path, descriptor = self.open_new(name)
        digest = hashlib.sha256()
        size = 0
        with os.fdopen(descriptor, "wb") as handle:
            for chunk in chunks:
                digest.update(chunk)
                handle.write(chunk)
                size += len(chunk)
            handle.flush()
            os.fsync(handle.fileno())
        entry = FileEntry(digest.hexdigest(), size)
        self.files[name] = entry
        return entry

    def copy(self, source: Path, name: str) -> FileEntry:
        """Add a copy of *source* (its modification time kept: archive retention goes by it)."""
        with source.open("rb") as reader:  # first: a missing source leaves no empty copy
            info = os.fstat(reader.fileno())
            path, descriptor = self.open_new(name)
            digest = hashlib.sha256()
            size = 0
            with os.fdopen(descriptor, "wb") as writer:
                while chunk := reader.read(_CHUNK):
                    digest.update(chunk)
                    writer.write(chunk)
                    size += len(chunk)
                writer.flush()
                os.fsync(writer.fileno())
        os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns))
        entry = FileEntry(digest.hexdigest(), size)
        self.files[name] = entry
        return entry

    def sync(self) -> None:
        """Make every folder's entries durable (before the backup's final rename)."""
        for folder in sorted({p for p in self.root.rglob("*") if p.is_dir()} | {self.root}):
            fsync_directory(folder)


def restore_file(source: Path, target: Path) -> None:
    """Put a file of a backup in place in the installation (mailbot's own private modes)."""
    make_private_dirs(target.parent)

    def chunks() -> Iterator[bytes]:
        with source.open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                yield chunk

    write_atomically(target, chunks())
    info = source.stat()
    os.utime(target, ns=(info.st_atime_ns, info.st_mtime_ns))
