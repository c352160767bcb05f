"""The working folders mailbot writes to: which they are, their modes, and creating them.

One table (:data:`FOLDERS`) names every configured folder the daemon writes,
with the mode a missing one is created with. ``mailbot run`` calls
:func:`prepare_folders` before anything else touches the disk, so that the
folders exist with safe modes from the start (an administrator can drop CRLs
into ``crl_drop_dir`` at once); ``mailbot doctor`` checks the same table.

An existing folder is never re-chmodded: its mode may be the administrator's
decision, and a walk of a large archive at every start costs. A folder open to
others is logged as a warning instead.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mailbot.config import Config
from mailbot.files import fsync_directory, make_private_dirs
from mailbot.log import get_logger

log = get_logger(__name__)

#: Letters, quarantined certificates, CRLs, the database: only the service's user.
PRIVATE_DATA_MODE = 0o700
#: The certificate store: its files are 0640 so that a reader in the service's group
#: (the install command, the server's store) can read them; the folder matches.
STORE_MODE = 0o750


@dataclass(frozen=True)
class Folder:
    """A folder the daemon writes: its configuration key, where it is, its mode when created."""

    key: str
    path: Callable[[Config], Path]
    mode: int


#: Every folder mailbot writes, parents before children (state_dir holds the defaults).
FOLDERS: tuple[Folder, ...] = (
    Folder("general.state_dir", lambda c: c.general.state_dir, PRIVATE_DATA_MODE),
    Folder("paths.certificate_store", lambda c: c.certificate_store, STORE_MODE),
    Folder("paths.quarantine_dir", lambda c: c.quarantine_dir, PRIVATE_DATA_MODE),
    Folder("paths.archive_dir", lambda c: c.archive_dir, PRIVATE_DATA_MODE),
    Folder("paths.crl_cache_dir", lambda c: c.crl_cache_dir, PRIVATE_DATA_MODE),
    Folder("paths.crl_drop_dir", lambda c: c.crl_drop_dir, PRIVATE_DATA_MODE),
)


class FolderError(OSError):
    """A configured folder cannot be made: the path is taken by a file, or not writable."""


def open_to_others(path: Path) -> bool:
    """Whether others (not the owner, not the group) have any access to *path*."""
    return bool(path.stat().st_mode & stat.S_IRWXO)


def create_folder(path: Path, mode: int) -> bool:
    """Create *path* with exactly *mode* (missing parents private); whether it was created.

    Raises :class:`FolderError` when the path exists but is not a folder, or
    cannot be created.
    """
    if path.is_dir():
        return False
    if path.exists() or path.is_symlink():
        raise FolderError(f"{path} exists and is not a folder")
    try:
        make_private_dirs(path.parent)
        try:
            path.mkdir(mode=mode)
        except FileExistsError:
            # Another process (a second instance starting) made it meanwhile.
            if path.is_dir():
                return False
            raise
        # mkdir's mode went through the umask; the table's mode is meant exactly.
        path.chmod(mode)
    except OSError as exc:
        raise FolderError(f"{path}: cannot create: {exc.strerror or exc}") from None
    fsync_directory(path.parent)
    return True


def prepare_folders(config: Config) -> list[Path]:
    """Create every missing folder of :data:`FOLDERS`; the ones created.

    Existing folders keep their mode; one that others may enter is logged.
    Raises :class:`FolderError` (an ``OSError``: ``mailbot run`` exits 74).
    """
    created: list[Path] = []
    for folder in FOLDERS:
        path = folder.path(config)
        try:
            made = create_folder(path, folder.mode)
        except FolderError as exc:
            raise FolderError(f"{folder.key}: {exc}") from None
        if made:
            created.append(path)
            log.info("folder_created", key=folder.key, path=str(path), mode=f"{folder.mode:04o}")
        else:
            with contextlib.suppress(OSError):
                if open_to_others(path):
                    log.warning(
                        "folder_open_to_others",
                        key=folder.key,
                        path=str(path),
                        mode=f"{stat.S_IMODE(path.stat().st_mode):04o}",
                        hint="chmod o-rwx",
                    )
    return created


def probe_writable(path: Path) -> None:
    """Create and delete a file in *path*: the only honest test (as root ``os.access`` lies).

    Raises ``OSError`` when that fails.
    """
    descriptor, name = tempfile.mkstemp(prefix=".mailbot-doctor-", dir=path)
    os.close(descriptor)
    Path(name).unlink()
