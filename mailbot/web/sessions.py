"""The session cookie: a signed (not encrypted) record of who logged in and when.

The cookie holds no secret but the CSRF token, which is only good together with
the cookie itself. Its times come from the application's clock (tests pin it),
not from the signer: idle and absolute timeouts are checked here.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from itsdangerous import BadSignature, URLSafeSerializer

COOKIE_NAME = "mailbot_session"
_SALT = "mailbot.web.session"
#: A cookie longer than this is not even looked at (browsers keep 4 KiB anyway).
_MAX_COOKIE = 4096


@dataclass(frozen=True)
class SessionState:
    """What the cookie says. ``user_id`` None: not logged in (the CSRF token still counts)."""

    csrf: str
    user_id: int | None = None
    #: :func:`mailbot.web.accounts.credential_stamp` of the account at login.
    stamp: str = ""
    #: Login time and time of the last request, seconds since the epoch.
    created: float = 0.0
    seen: float = 0.0

    def expired(self, now: float, idle_seconds: float, absolute_seconds: float) -> bool:
        """A logged-in session idle for too long, or older than the absolute limit."""
        if self.user_id is None:
            return False
        return now - self.seen > idle_seconds or now - self.created > absolute_seconds

    def touched(self, now: float) -> SessionState:
        """The same session seen at *now*."""
        return replace(self, seen=now) if self.user_id is not None else self


def new_token() -> str:
    """A fresh random CSRF token."""
    return secrets.token_urlsafe(32)


def anonymous() -> SessionState:
    """A session of nobody, with a fresh CSRF token (for the login form)."""
    return SessionState(csrf=new_token())


def logged_in(user_id: int, stamp: str, now: float) -> SessionState:
    """A new session for a successful login: a new CSRF token (no fixation of the old one)."""
    return SessionState(csrf=new_token(), user_id=user_id, stamp=stamp, created=now, seen=now)


class CookieSigner:
    """Signs and checks session cookies with the installation's key."""

    def __init__(self, key: bytes) -> None:
        self._serializer = URLSafeSerializer(key, salt=_SALT)

    def dump(self, state: SessionState) -> str:
        """The cookie value for *state*."""
        payload: dict[str, Any] = {"t": state.csrf}
        if state.user_id is not None:
            payload.update(u=state.user_id, s=state.stamp, c=state.created, l=state.seen)
        return str(self._serializer.dumps(payload))

    def load(self, value: str | None) -> SessionState | None:
        """The state in a cookie, or None for a missing, forged or malformed one."""
        if not value or len(value) > _MAX_COOKIE:
            return None
        try:
            payload = self._serializer.loads(value)
        except BadSignature:
            return None
        if not isinstance(payload, dict) or not isinstance(payload.get("t"), str):
            return None
        user_id = payload.get("u")
        if user_id is None:
            return SessionState(csrf=payload["t"])
        try:
            return SessionState(
                csrf=payload["t"],
                user_id=int(user_id),
                stamp=str(payload["s"]),
                created=float(payload["c"]),
                seen=float(payload["l"]),
            )
        except (KeyError, TypeError, ValueError):
            return None


def load_or_create_key(path: Path) -> bytes:
    """The signing key in *path*; a new random one (mode 0600) when the file does not exist."""
    try:
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        text = secrets.token_hex(32)
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            # Another process created it between our read and our create: use theirs.
            return load_or_create_key(path)
        with os.fdopen(descriptor, "w", encoding="ascii") as handle:
            handle.write(text + "\n")
    if len(text) < 32:
        raise ValueError(f"{path}: the web secret key is shorter than 32 characters")
    return text.encode("ascii")
