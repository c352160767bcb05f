"""The ``email`` policies mailbot writes and parses with, sharing one cheaper header factory.

The stdlib's :class:`~email.headerregistry.HeaderRegistry` makes a new header
class (``type(...)``) every time it is asked for one: for every header parsed,
fetched or set, and again for every header's ``max_count`` check when a header
is set. That is a noticeable share of a letter's CPU in a burst (issue 12).
:class:`CachedHeaderRegistry` makes each class once; the headers it makes are
the same in every other respect, so letters are written byte for byte as before.
"""

from __future__ import annotations

from email import policy
from email.headerregistry import BaseHeader, HeaderRegistry


class CachedHeaderRegistry(HeaderRegistry):
    """A :class:`HeaderRegistry` that makes each header class once (bounded: one per kind)."""

    def __init__(self) -> None:
        super().__init__()
        # Keyed by the registry's class, not by the header's name: a hostile letter
        # may carry any number of distinct names, all of the one default class.
        self._made: dict[type[object], type[BaseHeader]] = {}

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
