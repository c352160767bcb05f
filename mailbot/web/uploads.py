"""Uploaded files kept between a preview and its commit, private to the user who uploaded.

The CSV import shows what a file would change, then applies *that* file when the
user confirms. The browser never holds the rows: the bytes wait here, in
``<state_dir>/web-uploads/<user id>-<token>`` (folder ``0700``, file ``0600``),
named by a random token that only the uploading user's commit can redeem. Files
older than :data:`MAX_AGE_SECONDS` are swept whenever a new one is stored.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import time
from pathlib import Path
from typing import BinaryIO

from mailbot.config import Config
from mailbot.files import make_private_dirs

#: The largest file taken (a directory of 100,000 subscribers is about 15 MB).
MAX_UPLOAD_BYTES = 32 * 1024 * 1024
#: How long an upload waits for its commit.
MAX_AGE_SECONDS = 3600
_TOKEN = re.compile(r"[A-Za-z0-9_-]{32}")
_CHUNK = 64 * 1024


class UploadTooLarge(Exception):
    """The upload exceeds :data:`MAX_UPLOAD_BYTES`."""


def upload_dir(config: Config) -> Path:
    """Where uploads wait: ``web-uploads`` in the state folder."""
    return config.general.state_dir / "web-uploads"


def store(config: Config, user_id: int, source: BinaryIO) -> tuple[str, str]:
    """Copy *source* into a new private file of *user_id*: (token, sha256 of the bytes).

    Raises :class:`UploadTooLarge` (keeping nothing) beyond :data:`MAX_UPLOAD_BYTES`.
    """
    folder = upload_dir(config)
    make_private_dirs(folder)
    folder.chmod(0o700)  # the service alone: uploads hold SNILS
    sweep(config)
    token = secrets.token_urlsafe(24)  # 32 characters
    path = folder / f"{user_id}-{token}"
    digest = hashlib.sha256()
    size = 0
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as target:
            while chunk := source.read(_CHUNK):
                size += len(chunk)
                if size > MAX_UPLOAD_BYTES:
                    raise UploadTooLarge
                digest.update(chunk)
                target.write(chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return token, digest.hexdigest()


def find(config: Config, user_id: int, token: str, sha256: str) -> Path | None:
    """The upload *token* of *user_id* if it is still there and holds the bytes hashed *sha256*."""
    if not _TOKEN.fullmatch(token):
        return None
    path = upload_dir(config) / f"{user_id}-{token}"
    digest = hashlib.sha256()
    try:
        with path.open("rb") as stored:
            while chunk := stored.read(_CHUNK):
                digest.update(chunk)
    except OSError:
        return None
    return path if secrets.compare_digest(digest.hexdigest(), sha256) else None


def discard(path: Path) -> None:
    """Remove an upload (after its commit)."""
    path.unlink(missing_ok=True)


def sweep(config: Config) -> None:
    """Remove uploads older than :data:`MAX_AGE_SECONDS` (never committed)."""
    limit = time.time() - MAX_AGE_SECONDS
    with contextlib.suppress(OSError):
        for path in upload_dir(config).iterdir():
            with contextlib.suppress(OSError):
                if path.stat().st_mtime < limit:
                    path.unlink()
