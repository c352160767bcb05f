"""A pass's new letters fetched ahead of their turn, in order, one IMAP command at a time.

While a letter is decided the daemon's event loop is free; fetching the letters
after it meanwhile takes the fetch off the path of the decisions. The fetches
form a chain (each starts when the one before it ended), so the IMAP commands of
a pass never overlap: before its own command (a MOVE) the pass waits until the
chain is quiet (:meth:`Prefetch.quiet`), and it never leaves with a fetch
running (:meth:`Prefetch.close`). A fetch's error is kept for its letter's turn:
the letters before it are decided first.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")


class Prefetch(Generic[T]):
    """Fetches *uids* with *fetch* (None: a letter gone), each once, in order, as far ahead as
    asked."""

    def __init__(self, fetch: Callable[[int], Awaitable[T | None]], uids: Sequence[int]) -> None:
        self._fetch = fetch
        self._uids = uids
        #: Fetches started and not yet dropped, by index in *uids*.
        self._tasks: dict[int, asyncio.Task[T | None]] = {}
        self._started = 0  # how many fetches were started
        self._last: asyncio.Task[T | None] | None = None
        self._closed = False

    def __len__(self) -> int:
        return len(self._uids)

    def ahead(self, index: int) -> None:
        """Start fetching every letter up to *index* (those beyond the last are ignored)."""
        while self._started <= min(index, len(self._uids) - 1) and not self._closed:
            uid, previous = self._uids[self._started], self._last
            task = asyncio.create_task(self._after(previous, uid), name=f"fetch-{uid}")
            self._tasks[self._started] = self._last = task
            self._started += 1

    async def get(self, index: int) -> T | None:
        """Letter *index* as fetched (starting its fetch if need be); raises the fetch's error."""
        self.ahead(index)
        return await self._tasks[index]

    async def take(self, index: int) -> T | None:
        """:meth:`get`, then forget the letter: its bytes are not kept for the whole pass."""
        try:
            return await self.get(index)
        finally:
            self._tasks.pop(index, None)

    async def quiet(self) -> None:
        """Wait until no fetch runs (their errors stay for their turn); no new one starts
        until :meth:`ahead` or :meth:`get` is called again."""
        if self._last is not None:
            await asyncio.wait([self._last])

    async def close(self) -> None:
        """Start no more fetches and wait for the running one (a cancelled pass cancels it:
        the connection is then broken, and the next pass reconnects)."""
        self._closed = True
        tasks = list(self._tasks.values())
        self._tasks.clear()
        try:
            if tasks:
                await asyncio.wait(tasks)
        except asyncio.CancelledError:
            for task in tasks:
                task.cancel()
            raise
        finally:
            for task in tasks:
                if task.done() and not task.cancelled():
                    task.exception()  # retrieved: an untaken letter's error is not logged

    async def _after(self, previous: asyncio.Task[T | None] | None, uid: int) -> T | None:
        if previous is not None:
            await asyncio.wait([previous])  # its error is its own letter's, not ours
        if self._closed:
            return None
        return await self._fetch(uid)
