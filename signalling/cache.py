"""A small read-through cache for records that hardly ever change (rooms,
meeting types), so the join path does not ask the store for them every time.

Entries live ``ttl`` seconds: a renamed room or edited meeting type shows on
new joins within that time, also on other nodes. A cache whose records another
node may change sooner is told so and forgets them (the presence log's
meetings, through the bus's meeting changes). Bounded: past ``max_entries`` the
oldest entries go first (an eighth of them at once), and an entry past its
``ttl`` is dropped by a ``get`` or ``put`` made up to an eighth of the ``ttl``
later, so that records of rooms and meetings seen once (most of them: a guest
joins once) do not stay in memory until ``max_entries`` others push them out.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

V = TypeVar("V")

#: long enough to absorb a burst of joins, short enough that an edit shows soon
DEFAULT_TTL = 30.0
#: expired entries are dropped at most this often, as a fraction of the ttl
SWEEP_EVERY = 0.125


class RecordCache(Generic[V]):
    def __init__(
        self,
        ttl: float = DEFAULT_TTL,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._clock = clock
        #: in the order written (so in the order they expire); a plain dict keeps
        #: that order at ~50 bytes an entry less than an OrderedDict's links
        self._entries: dict[str, tuple[float, V]] = {}
        #: when _drop_expired next looks for expired entries
        self._sweep_at = 0.0

    async def get(self, key: str, load: Callable[[str], Awaitable[V]]) -> V:
        now = self._clock()
        self._drop_expired(now)
        hit = self._entries.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        value = await load(key)
        self._write(key, (now + self.ttl, value))
        if len(self._entries) > self.max_entries:
            self._evict()
        return value

    def put(self, key: str, value: V) -> None:
        """Replace an entry with a value known to be fresh (this node just wrote it)."""
        now = self._clock()
        self._drop_expired(now)
        self._write(key, (now + self.ttl, value))

    def _write(self, key: str, entry: tuple[float, V]) -> None:
        """Write ``entry`` as the newest: a key already held moves to the end."""
        entries = self._entries
        entries.pop(key, None)
        entries[key] = entry

    def _drop_expired(self, now: float) -> None:
        """Drop the expired entries, at most every SWEEP_EVERY of the ttl.

        Every write moves its entry to the end with the same ttl, so the entries
        are in the order they expire: the expired ones are at the front. A dict
        leaves a deleted slot behind, and finding its first entry walks every slot
        deleted before it, so the sweep is not made on every call (that walk was
        most of a join's cache time) and the dict is rebuilt after it, without
        the holes. An expired entry is never returned meanwhile: get checks."""
        if now < self._sweep_at:
            return
        self._sweep_at = now + self.ttl * SWEEP_EVERY
        expired = 0
        for until, _ in self._entries.values():
            if until > now:
                break
            expired += 1
        if expired:
            self._drop_oldest(expired)

    def _evict(self) -> None:
        """Past the bound: the oldest eighth goes at once (deleting the oldest
        entry one by one left slots that every later look for the oldest walked)."""
        self._drop_oldest(len(self._entries) - (self.max_entries - self.max_entries // 8))

    def _drop_oldest(self, count: int) -> None:
        """Drop the ``count`` oldest entries, into a dict rebuilt without holes."""
        self._entries = dict(itertools.islice(self._entries.items(), count, None))

    def __len__(self) -> int:
        """Entries held, expired ones not yet dropped included."""
        return len(self._entries)

    def forget(self, key: str) -> None:
        self._entries.pop(key, None)

    def clear(self) -> None:
        self._entries.clear()
