"""Durable, private file writes: temporary file, fsync, rename, fsync of the folder.

A crash leaves either the whole new file or the old state, never a torn file.
What mailbot writes holds personal data (letters, certificates with SNILS,
quarantine metadata with senders), so files are at most ``0640`` and folders at
most ``0750`` whatever umask the process was started with.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

#: Owner reads and writes, the service's group (admins) reads, others nothing.
PRIVATE_FILE_MODE = 0o640
PRIVATE_DIR_MODE = 0o750
#: Permission bits the process never grants, whatever umask it inherited.
PRIVATE_UMASK = 0o027


def restrict_umask() -> None:
    """Add :data:`PRIVATE_UMASK` to the process umask (never loosen it).

    Covers what mailbot does not write itself: the SQLite database and its
    journal files, the lease file, files of an install command.
    """
    inherited = os.umask(PRIVATE_UMASK)
    os.umask(inherited | PRIVATE_UMASK)


def make_private_dirs(directory: Path) -> None:
    """Create *directory* and its missing parents, each at most ``0750``.

    ``Path.mkdir(parents=True)`` gives the parents the umask's default (often
    ``0755``); here every folder created is private.
    """
    missing: list[Path] = []
    current = directory
    while not current.exists() and current != current.parent:
        missing.append(current)
        current = current.parent
    for folder in reversed(missing):
        # mkdir filters the mode through the umask: at most 0750, stricter if asked.
        with contextlib.suppress(FileExistsError):
            folder.mkdir(mode=PRIVATE_DIR_MODE)


def write_atomically(
    path: Path, data: bytes | Iterable[bytes | memoryview], mode: int = PRIVATE_FILE_MODE
) -> None:
    """Replace *path* with *data* (bytes, or chunks of bytes) atomically and durably.

    Missing parent folders are created private. Chunks let a large file be
    written without building it in memory first.
    """
    make_private_dirs(path.parent)
    descriptor, name = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    temporary = Path(name)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            for chunk in [data] if isinstance(data, bytes | bytearray) else data:
                handle.write(chunk)
            handle.flush()
            os.fsync(handle.fileno())
        temporary.chmod(mode)
        temporary.replace(path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    fsync_directory(path.parent)


def fsync_directory(directory: Path) -> None:
    """Make a rename or unlink in *directory* durable."""
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


@contextlib.contextmanager
def private_scratch_file(folder: Path, prefix: str) -> Iterator[Path]:
    """An empty private (``0600``) temporary file in *folder*, deleted on exit.

    For bytes on their way in (a download, a body for a worker): they never lie
    world-readable, and the file goes whatever happens, errors and timeouts too.
    """
    make_private_dirs(folder)
    descriptor, name = tempfile.mkstemp(prefix=prefix, dir=folder)  # mode 0600
    os.close(descriptor)
    path = Path(name)
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)
