"""Indexed address keys: the per-letter lookups compare one indexed column.

* ``trusted_addresses.address_key`` holds :func:`normalize_address` of ``address``:
  the sender gate finds a sender's subscribers by equality on it;
* ``outbox.recipient_key`` holds :func:`reply_count_key` of a reply's recipient
  (NULL for other kinds): the reply cap counts a day's replies to an address by it.

The keys are computed in Python (Unicode case folding and IDNA are no SQL), so
:func:`derived_key_column` gives the columns a context-sensitive default computed
from the row's own parameters: every INSERT fills them, an ORM flush as well as a
Core ``executemany`` naming only the source columns. An UPDATE leaving the source
columns alone leaves the key as it is; one setting a source column without the key
fails to compile, since a stale key would trust or count the wrong address.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import String
from sqlalchemy.engine.default import DefaultExecutionContext
from sqlalchemy.exc import CompileError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import MappedColumn, mapped_column
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement

from mailbot.addresses import MAX_ADDRESS_CHARS, normalize_address

#: Width of the key columns (what a trusted address may have, see ``MAX_ADDRESS_CHARS``).
ADDRESS_KEY_CHARS = MAX_ADDRESS_CHARS


def reply_count_key(address: str) -> str:
    """The key replies to *address* are counted under: its :func:`normalize_address`.

    Cut to the column width: IDNA can lengthen a valid address past it, and a
    reply must never fail to be queued. Addresses sharing their first
    ``ADDRESS_KEY_CHARS`` normalised characters would share a cap, which costs
    nobody anything (anyone can send from any address anyway).
    """
    return normalize_address(address)[:ADDRESS_KEY_CHARS]


def reply_recipient_key(kind: object, recipients: object) -> str | None:
    """``outbox.recipient_key`` of a row: the reply's recipient's count key, else None.

    A reply goes to the one sender it answers (``queue_answer`` queues exactly one
    recipient), so the first recipient is the one counted.
    """
    if kind != "reply" or not isinstance(recipients, list | tuple) or not recipients:
        return None
    return reply_count_key(str(recipients[0]))


class _KeptUnlessSourcesSet(ColumnElement[Any]):
    """The ``onupdate`` of a derived key: ``SET key = key``, refused if a source changes."""

    inherit_cache = True

    def __init__(self, name: str, sources: frozenset[str]) -> None:
        self.name = name
        self.sources = sources


@compiles(_KeptUnlessSourcesSet)
def _compile_kept(element: _KeptUnlessSourcesSet, compiler: SQLCompiler, **_kw: Any) -> str:
    # Rendered only when the UPDATE does not set the key itself (SQLAlchemy's
    # onupdate rule); the columns it does set are the statement's values plus the
    # keys of the parameters it is executed with (ORM flushes, executemany).
    state = compiler.dml_compile_state
    values = getattr(state, "_dict_parameters", None) or {}
    assigned = {getattr(key, "key", key) for key in values} | set(compiler.column_keys or ())
    changed = sorted(element.sources & assigned)
    if changed:
        raise CompileError(
            f"{element.name} is derived from {', '.join(changed)}: a statement changing one "
            "must set both (assigning on an ORM object does; see mailbot.directory.address_keys)"
        )
    return str(compiler.preparer.quote(element.name))


def derived_key_column(
    name: str,
    sources: Sequence[str],
    compute: Callable[[Mapping[str, Any]], str | None],
    *,
    index: bool = False,
) -> MappedColumn[Any]:
    """A String column *name* holding ``compute(row parameters)`` on every INSERT.

    *sources* are the columns *compute* reads; an UPDATE must set the key together
    with any of them (see the module docstring).
    """

    def default(context: DefaultExecutionContext) -> str | None:
        parameters = context.get_current_parameters()  # type: ignore[no-untyped-call]
        return compute(parameters)

    return mapped_column(
        String(ADDRESS_KEY_CHARS),
        index=index,
        default=default,
        onupdate=_KeptUnlessSourcesSet(name, frozenset(sources)),
    )
