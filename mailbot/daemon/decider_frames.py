"""The frames between the daemon and its decision process (:mod:`mailbot.daemon.decide_worker`).

A frame is a 4-byte big-endian length and a pickle. The protocol is private to
the two ends, both this code, started by the daemon: first :class:`Start` (the
configuration with the rules and templates the daemon validated), answered
:class:`Started` or :class:`Refused`; then a :class:`~mailbot.app.letter_turns.Turn`
per letter, answered in order by its :class:`~mailbot.app.letter_turns.TurnResult`,
or by :class:`Refused` when the database failed. Nothing of a letter but its raw
bytes is pickled.

The messages live here, not in the worker's module: that one runs as
``__main__``, and a pickle names the module of a message's class.
"""

from __future__ import annotations

import pickle
import struct
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:  # the worker imports this module before anything heavy
    from mailbot.config import Config
    from mailbot.notices.templates import Templates
    from mailbot.regulation.routes import RouteTable

#: The frame header: the pickle's length.
HEADER = struct.Struct(">I")


@dataclass(frozen=True)
class Start:
    """The first frame: what the worker decides with."""

    config: Config
    routes: RouteTable
    templates: Templates


@dataclass(frozen=True)
class Started:
    """The worker is ready: its processor is built, its database engine made."""

    pid: int


@dataclass(frozen=True)
class Refused:
    """The worker could not start (*database* False), or a turn's database error."""

    database: bool
    #: The error's first line (the rest may hold SQL parameters: letter data).
    text: str


def frame(message: object) -> bytes:
    """One frame: header and pickle."""
    body = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return HEADER.pack(len(body)) + body


def unframe(body: bytes) -> Any:
    """A frame's message from its body (the bytes after the header)."""
    # Both ends of the pipe are this code, the worker started by the daemon.
    return pickle.loads(body)  # noqa: S301


def read_frame(stream: IO[bytes]) -> Any:
    """The next frame's message from a blocking stream; None at its end."""
    header = stream.read(HEADER.size)
    if len(header) < HEADER.size:
        return None
    (size,) = HEADER.unpack(header)
    body = stream.read(size)
    if len(body) < size:
        return None
    return unframe(body)


def first_line(error: BaseException) -> str:
    """An error's first line: a database error's next lines show SQL and its parameters."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
