"""Exponential back-off with jitter for reconnect loops (IMAP, SMTP, database).

Usage::

    backoff = Backoff(base=1, cap=300)
    while True:
        try:
            await work()
            backoff.reset()
        except MailboxError:
            await backoff.sleep()
"""

from __future__ import annotations

import asyncio
import random


class Backoff:
    """Delays ``base * factor**n`` capped at *cap*, each shortened by up to *jitter*.

    Jitter spreads the reconnects of several instances after a shared outage;
    it only ever shortens a delay, so *cap* is a true upper bound.
    """

    def __init__(
        self,
        base: float = 1.0,
        cap: float = 300.0,
        factor: float = 2.0,
        jitter: float = 0.5,
        rng: random.Random | None = None,
    ) -> None:
        if base <= 0 or cap < base or factor < 1 or not 0 <= jitter <= 1:
            raise ValueError("need 0 < base <= cap, factor >= 1, 0 <= jitter <= 1")
        self.base = base
        self.cap = cap
        self.factor = factor
        self.jitter = jitter
        self._rng = rng or random.Random()  # noqa: S311 - timing jitter, not cryptography
        self.attempts = 0

    def next_delay(self) -> float:
        """The delay before the next attempt; each call counts one failure."""
        ceiling = min(self.cap, self.base * self.factor ** min(self.attempts, 64))
        self.attempts += 1
        return ceiling * (1 - self.jitter * self._rng.random())

    async def sleep(self) -> float:
        """Sleep for :meth:`next_delay` seconds and return the delay."""
        delay = self.next_delay()
        await asyncio.sleep(delay)
        return delay

    def reset(self) -> None:
        """Start again from *base* (call after a success)."""
        self.attempts = 0
