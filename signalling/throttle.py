"""Attempt throttling for short credentials (guest keys) and logins.

A guest key has 31^8 ≈ 8.5e11 values, but an attacker who can try freely
still wins eventually; a fixed window per client address bounds what one
address can try. Per room there is no budget, only an alarm (KeyAlarm): a
budget per room would let three addresses sending wrong keys lock every real
patient of that room out, which is worse than the guessing it slows. Kept in
the node's memory: with several nodes, each enforces its own budget (documented
in docs/operations.md), which multiplies the budget by the node count at most.
"""

from __future__ import annotations

import time
from collections import OrderedDict

from rooms.errors import RateLimited


class WindowLimiter:
    """At most ``limit`` attempts per key per ``window`` seconds (fixed windows)."""

    def __init__(self, limit: int, window: float = 60.0, max_keys: int = 100_000) -> None:
        self.limit = limit
        self.window = window
        self.max_keys = max_keys
        self._counts: OrderedDict[str, tuple[float, int]] = OrderedDict()

    def hit(self, key: str, now: float | None = None) -> None:
        """Count one attempt; raise RateLimited when over the limit."""
        t = time.monotonic() if now is None else now
        start, count = self._counts.get(key, (t, 0))
        if t - start >= self.window:
            start, count = t, 0
        if count >= self.limit:
            raise RateLimited(
                "too many attempts; wait a minute", retry_after=self.window - (t - start)
            )
        self._record(key, start, count + 1)

    def count(self, key: str, now: float | None = None) -> int:
        """Count one event, never refusing; the number counted in this window."""
        t = time.monotonic() if now is None else now
        start, count = self._counts.get(key, (t, 0))
        if t - start >= self.window:
            start, count = t, 0
        self._record(key, start, count + 1)
        return count + 1

    def _record(self, key: str, start: float, count: int) -> None:
        self._counts[key] = (start, count)
        self._counts.move_to_end(key)
        while len(self._counts) > self.max_keys:
            self._counts.popitem(last=False)
