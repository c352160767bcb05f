"""The web console's accounts: argon2id password hashes, roles, active or not."""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Sequence

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from mailbot.directory.models import WebUser
from mailbot.web.roles import Role

#: argon2-cffi's defaults are the RFC 9106 "low memory" argon2id profile.
_HASHER = PasswordHasher()
#: Shorter passwords are refused; longer ones are cut by no one (argon2 takes any length) ...
MIN_PASSWORD_LENGTH = 10
#: ... up to this, so that a login form cannot make the server hash megabytes.
MAX_PASSWORD_LENGTH = 1024
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$")


@functools.cache
def _dummy_hash() -> str:
    """Verified against when the user does not exist, so that timing does not tell.

    Made on first use, not at import: an argon2id hash takes 64 MiB for a moment,
    and every ``mailbot`` command (the daemon too) imports this module.
    """
    return _HASHER.hash("not-a-password-of-anyone")


class AccountError(ValueError):
    """A name, role or password that cannot be accepted; the message says why."""


def check_name(name: str) -> str:
    """*name* when it is a valid account name (letters, digits, ``._@-``, up to 100)."""
    if not _NAME.match(name):
        raise AccountError(
            f"{name!r}: a user name is 1-100 Latin letters, digits, '.', '_', '@', '-'"
        )
    return name


def hash_password(password: str) -> str:
    """The argon2id hash of *password*, after checking its length."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"the password must be at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise AccountError(f"the password must be at most {MAX_PASSWORD_LENGTH} characters")
    return _HASHER.hash(password)


def find_user(session: Session, name: str) -> WebUser | None:
    """The account called *name*, active or not."""
    return session.scalar(select(WebUser).where(WebUser.name == name))


def get_user(session: Session, name: str) -> WebUser:
    """The account called *name*, or :class:`AccountError`."""
    user = find_user(session, name)
    if user is None:
        raise AccountError(f"no web user {name!r}")
    return user


def add_user(session: Session, name: str, role: Role, password: str) -> WebUser:
    """A new active account (the caller commits); refuses a name already taken."""
    check_name(name)
    if find_user(session, name) is not None:
        raise AccountError(f"web user {name!r} exists already")
    user = WebUser(name=name, role=role.value, password_hash=hash_password(password), active=True)
    session.add(user)
    session.flush()
    return user


def list_users(session: Session) -> Sequence[WebUser]:
    """Every account, by name."""
    return session.scalars(select(WebUser).order_by(WebUser.name)).all()


def authenticate(session: Session, name: str, password: str) -> WebUser | None:
    """The active account *name* if *password* is its password, else None.

    Takes as long for an unknown name as for a wrong password.
    """
    user = find_user(session, name) if _NAME.match(name) else None
    if len(password) > MAX_PASSWORD_LENGTH:
        return None
    stored = user.password_hash if user is not None and user.password_hash else _dummy_hash()
    try:
        _HASHER.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return None
    if user is None or not user.active or not user.password_hash:
        return None
    if _HASHER.check_needs_rehash(stored):
        user.password_hash = _HASHER.hash(password)
        session.commit()
    return user


def credential_stamp(user: WebUser) -> str:
    """A short fingerprint of the account's password and role, kept in its sessions.

    A new password or role changes it, which ends every session signed before.
    """
    digest = hashlib.sha256(f"{user.role}\0{user.password_hash}".encode()).hexdigest()
    return digest[:16]
