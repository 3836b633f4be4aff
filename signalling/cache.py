"""A small read-through cache for records that hardly ever change (rooms,
meeting types), so the join path does not ask the store for them every time.

Entries live ``ttl`` seconds: a renamed room or edited meeting type shows on
new joins within that time, also on other nodes. A cache whose records another
node may change sooner is told so and forgets them (the presence log's
meetings, through the bus's meeting changes). Bounded: past ``max_entries`` the
oldest entries go first, and an entry past its ``ttl`` is dropped at the next
``get`` or ``put``, so that records of rooms and meetings seen once (most of them:
a guest joins once) do not stay in memory until ``max_entries`` others push them out.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

V = TypeVar("V")

#: long enough to absorb a burst of joins, short enough that an edit shows soon
DEFAULT_TTL = 30.0


class RecordCache(Generic[V]):
    def __init__(self, ttl: float = DEFAULT_TTL, max_entries: int = 10_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        #: in the order written (so in the order they expire); a plain dict keeps
        #: that order at ~50 bytes an entry less than an OrderedDict's links
        self._entries: dict[str, tuple[float, V]] = {}

    async def get(self, key: str, load: Callable[[str], Awaitable[V]]) -> V:
        now = time.monotonic()
        self._drop_expired(now)
        hit = self._entries.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        value = await load(key)
        self._write(key, (now + self.ttl, value))
        entries = self._entries
        while len(entries) > self.max_entries:
            del entries[next(iter(entries))]
        return value

    def put(self, key: str, value: V) -> None:
        """Replace an entry with a value known to be fresh (this node just wrote it)."""
        now = time.monotonic()
        self._drop_expired(now)
        self._write(key, (now + self.ttl, value))

    def _write(self, key: str, entry: tuple[float, V]) -> None:
        """Write ``entry`` as the newest: a key already held moves to the end."""
        entries = self._entries
        entries.pop(key, None)
        entries[key] = entry

    def _drop_expired(self, now: float) -> None:
        # every write moves its entry to the end with the same ttl, so the entries
        # are in the order they expire: the expired ones are at the front
        entries = self._entries
        while entries:
            key, (until, _) = next(iter(entries.items()))
            if until > now:
                return
            del entries[key]

    def __len__(self) -> int:
        """Entries held, expired ones not yet dropped included."""
        return len(self._entries)

    def forget(self, key: str) -> None:
        self._entries.pop(key, None)

    def clear(self) -> None:
        self._entries.clear()
