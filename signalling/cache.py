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
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

V = TypeVar("V")

#: long enough to absorb a burst of joins, short enough that an edit shows soon
DEFAULT_TTL = 30.0


class RecordCache(Generic[V]):
    def __init__(self, ttl: float = DEFAULT_TTL, max_entries: int = 10_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: OrderedDict[str, tuple[float, V]] = OrderedDict()

    async def get(self, key: str, load: Callable[[str], Awaitable[V]]) -> V:
        now = time.monotonic()
        self._drop_expired(now)
        hit = self._entries.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        value = await load(key)
        self._entries[key] = (now + self.ttl, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        return value

    def put(self, key: str, value: V) -> None:
        """Replace an entry with a value known to be fresh (this node just wrote it)."""
        now = time.monotonic()
        self._drop_expired(now)
        self._entries[key] = (now + self.ttl, value)
        self._entries.move_to_end(key)

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
