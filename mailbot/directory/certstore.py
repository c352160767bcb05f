"""The server's certificate store: DER files named by thumbprint, plus an optional install command.

Files are written atomically (temporary file, fsync, rename, fsync of the
folder), so a crash leaves either the whole certificate or nothing. The name
is always the certificate's SHA-1 thumbprint, never a name from a letter.
The optional install command (e.g. CryptoPro's ``certmgr``) runs after the
file is in place; when it fails, a file this call created is removed again
and the command's standard error becomes the ``install_error`` text. The
texts are phrases of ``templates/phrases.toml``; this module names them by key.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from mailbot.config import Config
from mailbot.files import fsync_directory, write_atomically

_THUMBPRINT = re.compile(r"^[0-9A-F]{40}$")
_SERIAL = re.compile(r"^[0-9A-F]{1,128}$")
#: Longest error text passed on to a participant.
MAX_ERROR_TEXT = 500
#: Participants read Russian: the operating system's English ``strerror`` is
#: replaced by what the failure means for them - a phrase key of
#: ``[install_os_errors]`` in ``templates/phrases.toml`` (the journal keeps the original).
_OS_ERROR_KEYS = {
    errno.EACCES: "no_permission",
    errno.EPERM: "no_permission",
    errno.ENOSPC: "no_space",
    errno.EDQUOT: "quota",
    errno.EROFS: "read_only",
    errno.ENOENT: "no_folder",
    errno.ENOTDIR: "no_folder",
    errno.EEXIST: "file_in_way",
    errno.EISDIR: "folder_in_way",
    errno.EIO: "io_error",
}


class InstallError(Exception):
    """Installing a certificate failed: why, as a phrase key of ``[install_errors]``.

    The text (``templates/phrases.toml``) is written where it is read - the
    ``install_error`` reply, the admins' alert, the journal - from *key* and
    *values* (the phrase's placeholders). *detail* keeps what the operating
    system said, for the journal and the admins.
    """

    def __init__(
        self, key: str, values: Mapping[str, str] | None = None, detail: str | None = None
    ) -> None:
        super().__init__(key)
        self.key = key
        self.values: dict[str, str] = dict(values or {})
        self.detail = detail


@dataclass(frozen=True)
class StoredCertificate:
    """Where a certificate was stored, and whether this call created the file."""

    path: Path
    created: bool


@dataclass(frozen=True)
class StoreReport:
    """Differences between the store's files and the directory's rows."""

    rows_without_files: list[str]
    files_without_rows: list[str]
    unreadable_files: list[str]

    @property
    def consistent(self) -> bool:
        """True when every row has its file and every file its row."""
        return not (self.rows_without_files or self.files_without_rows or self.unreadable_files)


class CertificateStore:
    """A folder of registered certificates."""

    def __init__(
        self,
        directory: Path,
        install_command: tuple[str, ...] = (),
        install_timeout: float = 60.0,
    ) -> None:
        self.directory = directory
        self.install_command = install_command
        self.install_timeout = install_timeout

    @classmethod
    def from_config(cls, config: Config) -> CertificateStore:
        """The store configured by ``paths.certificate_store`` and ``[store]``."""
        return cls(
            config.certificate_store,
            config.store.install_command,
            config.store.install_timeout_seconds,
        )

    def path_for(self, thumbprint: str) -> Path:
        """The file of the certificate with this SHA-1 thumbprint (upper-case hex)."""
        if not _THUMBPRINT.match(thumbprint):
            raise ValueError(f"not a SHA-1 thumbprint: {thumbprint!r}")
        return self.directory / f"{thumbprint}.cer"

    def install(self, der: bytes, thumbprint: str, serial: str) -> StoredCertificate:
        """Write the certificate (if not already there) and run the install command.

        Raises :class:`InstallError`; then nothing this call wrote is left behind.
        """
        if not _SERIAL.match(serial):
            raise ValueError(f"not a serial number: {serial!r}")
        path = self.path_for(thumbprint)
        created = False
        try:
            if not path.exists() or path.read_bytes() != der:
                write_atomically(path, der)
                created = True
        except OSError as exc:
            raise InstallError("write_failed", {"reason": os_error_key(exc)}, str(exc)) from exc
        try:
            self._run_install_command(path, thumbprint, serial)
        except InstallError:
            if created:
                self.discard(path)
            raise
        return StoredCertificate(path=path, created=created)

    def discard(self, path: Path) -> None:
        """Remove a file written by :meth:`install` (when the database commit failed)."""
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        fsync_directory(path.parent)

    def _run_install_command(self, path: Path, thumbprint: str, serial: str) -> None:
        if not self.install_command:
            return
        values = {"path": str(path), "thumbprint": thumbprint, "serial": serial}
        arguments = [part.format_map(values) for part in self.install_command]
        try:
            result = subprocess.run(
                arguments,
                capture_output=True,
                timeout=self.install_timeout,
                check=False,
                stdin=subprocess.DEVNULL,
            )
        except FileNotFoundError:
            raise InstallError("command_not_found", {"command": arguments[0]}) from None
        except subprocess.TimeoutExpired:
            raise InstallError(
                "command_timeout", {"seconds": f"{self.install_timeout:g}"}
            ) from None
        except OSError as exc:
            raise InstallError(
                "command_not_started", {"reason": os_error_key(exc)}, str(exc)
            ) from None
        if result.returncode != 0:
            text = _decode(result.stderr).strip() or _decode(result.stdout).strip()
            text = " ".join(text.split())[:MAX_ERROR_TEXT]
            if text:
                raise InstallError("command_output", {"output": text})
            raise InstallError("command_failed", {"code": str(result.returncode)})

    def verify(self, rows: Iterable[tuple[str, str]]) -> StoreReport:
        """Compare ``(thumbprint, store_path)`` rows with the files in the folder."""
        expected = {thumbprint.upper(): Path(path) for thumbprint, path in rows}
        present = (
            {p.stem.upper(): p for p in self.directory.glob("*.cer")}
            if self.directory.is_dir()
            else {}
        )
        rows_without_files = sorted(
            f"{t} ({p})" for t, p in expected.items() if not p.is_file() and t not in present
        )
        files_without_rows = sorted(str(p) for t, p in present.items() if t not in expected)
        unreadable = []
        for thumbprint, path in present.items():
            if thumbprint in expected and not os.access(path, os.R_OK):
                unreadable.append(str(path))
        return StoreReport(rows_without_files, files_without_rows, sorted(unreadable))


def os_error_key(exc: OSError) -> str:
    """The ``[install_os_errors]`` phrase key of *exc*, else its errno name (``ELOOP``)."""
    known = _OS_ERROR_KEYS.get(exc.errno or 0)
    if known is not None:
        return known
    return errno.errorcode.get(exc.errno or 0, str(exc.errno))


def _decode(data: bytes) -> str:
    # CryptoPro tools on Russian systems may print in UTF-8 or CP1251.
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1251", errors="replace")
