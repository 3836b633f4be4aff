"""RecordCache: read-through, and expired entries do not stay in memory."""

from __future__ import annotations

import asyncio

from signalling.cache import RecordCache


async def _load(key: str) -> str:
    return key.upper()


def test_a_fresh_entry_is_served_without_loading_again() -> None:
    cache: RecordCache[str] = RecordCache(ttl=3600)
    loads: list[str] = []

    async def counting(key: str) -> str:
        loads.append(key)
        return key.upper()

    async def scenario() -> None:
        assert await cache.get("a", counting) == "A"
        assert await cache.get("a", counting) == "A"

    asyncio.run(scenario())
    assert loads == ["a"]


def test_expired_entries_are_dropped_not_kept_until_the_bound() -> None:
    fresh: RecordCache[str] = RecordCache(ttl=3600)
    # a ttl of 0: every entry has expired by the next call
    expiring: RecordCache[str] = RecordCache(ttl=0.0)

    async def scenario() -> None:
        for i in range(100):
            await fresh.get(f"k{i}", _load)
            await expiring.get(f"k{i}", _load)
        expiring.put("written", "W")

    asyncio.run(scenario())
    assert len(fresh) == 100
    assert len(expiring) == 1


def test_the_oldest_entries_go_past_the_bound() -> None:
    cache: RecordCache[str] = RecordCache(ttl=3600, max_entries=3)

    async def scenario() -> list[str]:
        for key in ("a", "b", "c", "d"):
            await cache.get(key, _load)
        loads: list[str] = []

        async def counting(key: str) -> str:
            loads.append(key)
            return key.upper()

        for key in ("b", "c", "d", "a"):
            await cache.get(key, counting)
        return loads

    assert asyncio.run(scenario()) == ["a"]
    assert len(cache) == 3


def test_an_entry_written_again_is_the_newest() -> None:
    cache: RecordCache[str] = RecordCache(ttl=3600, max_entries=2)
    loads: list[str] = []

    async def counting(key: str) -> str:
        loads.append(key)
        return key.upper()

    async def scenario() -> None:
        cache.put("a", "A")
        cache.put("b", "B")
        cache.put("a", "A2")  # now newer than b
        await cache.get("c", counting)  # past the bound: the oldest, b, goes
        assert await cache.get("a", counting) == "A2"
        assert await cache.get("b", counting) == "B"

    asyncio.run(scenario())
    assert loads == ["c", "b"]
