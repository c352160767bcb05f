"""Passwords come from an environment variable or a file, never from the config itself.

A resolved password is wrapped in :class:`Secret`, whose ``repr`` and ``str``
hide the value, and its text is registered with the log scrubber so that it
cannot appear in a log line even by accident.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

_known_secret_values: set[str] = set()


def known_secret_values() -> frozenset[str]:
    """Every secret text resolved so far in this process (for the log scrubber)."""
    return frozenset(_known_secret_values)


class SecretError(Exception):
    """A configured secret could not be read."""


class Secret:
    """A secret text that never shows itself in ``repr``, ``str`` or f-strings."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value
        if value:
            _known_secret_values.add(value)

    def reveal(self) -> str:
        """The secret text, for the one call that needs it (a LOGIN, a DB connect)."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __bool__(self) -> bool:
        return bool(self._value)


@dataclass(frozen=True)
class SecretSource:
    """Where a password is read from: ``<name>_env`` or ``<name>_file`` in TOML."""

    env: str = ""
    file: Path | None = None

    @property
    def configured(self) -> bool:
        """True when one of the two sources is set."""
        return bool(self.env) or self.file is not None

    def describe(self) -> str:
        """Where the secret comes from, without the secret."""
        if self.env:
            return f"environment variable {self.env}"
        if self.file is not None:
            return f"file {self.file}"
        return "nowhere"

    def resolve(self) -> Secret:
        """Read the secret now. Raises :class:`SecretError` naming the source."""
        if self.env:
            value = os.environ.get(self.env)
            if value is None:
                raise SecretError(f"environment variable {self.env} is not set")
            if not value:
                raise SecretError(f"environment variable {self.env} is empty")
            return Secret(value)
        if self.file is not None:
            try:
                text = self.file.read_text(encoding="utf-8")
            except OSError as exc:
                raise SecretError(f"cannot read {self.file}: {exc.strerror or exc}") from None
            # A trailing newline from `echo pw > file` is not part of the password.
            value = text.rstrip("\r\n")
            if not value:
                raise SecretError(f"{self.file} is empty")
            return Secret(value)
        raise SecretError("no password source is configured")
