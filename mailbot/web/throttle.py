"""Login rate limiting: failed attempts per client address and per user name.

An in-memory sliding window: the console is one process, and a restart
forgetting the failures costs an attacker a restart, which they cannot cause.
Memory is bounded: past :data:`MAX_KEYS` keys the oldest one is forgotten.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque

MAX_KEYS = 10_000


class LoginThrottle:
    """At most *max_failures* failures per key within *window_seconds*."""

    def __init__(self, max_failures: int, window_seconds: float) -> None:
        self.max_failures = max_failures
        self.window = window_seconds
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def blocked(self, keys: list[str], now: float) -> bool:
        """Whether any of *keys* had *max_failures* failures in the window before *now*."""
        with self._lock:
            return any(len(self._recent(key, now)) >= self.max_failures for key in keys)

    def failed(self, keys: list[str], now: float) -> None:
        """Count one failure against every key."""
        with self._lock:
            for key in keys:
                self._recent(key, now).append(now)
                self._failures.move_to_end(key)
            while len(self._failures) > MAX_KEYS:
                self._failures.popitem(last=False)

    def succeeded(self, keys: list[str]) -> None:
        """Forget the failures of *keys* (a successful login)."""
        with self._lock:
            for key in keys:
                self._failures.pop(key, None)

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failures.setdefault(key, deque())
        while times and times[0] <= now - self.window:
            times.popleft()
        return times
