"""The ``email`` policies mailbot writes and parses with, sharing one cheaper header factory.

The stdlib's :class:`~email.headerregistry.HeaderRegistry` makes a new header
class (``type(...)``) every time it is asked for one: for every header parsed,
fetched or set, and again for every header's ``max_count`` check when a header
is set. That is a noticeable share of a letter's CPU in a burst (issue 12).
:class:`CachedHeaderRegistry` makes each class once, and keeps the header objects
of recent short values (header objects are immutable, and in a burst most values
repeat: ``MIME-Version``, ``Content-Type``, our own ``From``, the fund's address).
The headers it makes are the same in every other respect, so letters are written
byte for byte as before.
"""

from __future__ import annotations

import functools
from email import policy
from email.headerregistry import BaseHeader, HeaderRegistry
from typing import Any

#: How many recently made header objects are kept, and the longest value kept.
MAX_KEPT_HEADERS = 256
MAX_KEPT_VALUE_CHARS = 256


class CachedHeaderRegistry(HeaderRegistry):
    """A :class:`HeaderRegistry` that makes each header class once (bounded: one per kind)."""

    def __init__(self) -> None:
        super().__init__()
        # Keyed by the registry's class, not by the header's name: a hostile letter
        # may carry any number of distinct names, all of the one default class.
        self._made: dict[type[object], type[BaseHeader]] = {}
        # Bounded twice over: entries, and the length of a value that may be kept.
        self._recent = functools.lru_cache(maxsize=MAX_KEPT_HEADERS)(self._make)

    def __call__(self, name: str, value: Any) -> BaseHeader:
        """The header *name* with *value* (see :class:`HeaderRegistry`); short values kept."""
        if isinstance(value, str) and len(value) <= MAX_KEPT_VALUE_CHARS:
            header: BaseHeader = self._recent(name, value)
            return header
        return self._make(name, value)

    def _make(self, name: str, value: Any) -> BaseHeader:
        return super().__call__(name, value)

    def __getitem__(self, name: str) -> type[BaseHeader]:
        """The header class for *name* (see :class:`HeaderRegistry`), made once."""
        kind = self.registry.get(name.lower(), self.default_class)
        made = self._made.get(kind)
        if made is None:
            made = type("_" + kind.__name__, (kind, self.base_class), {})
            self._made[kind] = made
        return made


#: The header factory every policy below shares.
HEADER_FACTORY = CachedHeaderRegistry()
#: ``policy.SMTP`` and ``policy.SMTPUTF8`` with the shared header factory.
SMTP = policy.SMTP.clone(header_factory=HEADER_FACTORY)
SMTPUTF8 = policy.SMTPUTF8.clone(header_factory=HEADER_FACTORY)
