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


def test_past_the_bound_the_oldest_eighth_goes_at_once() -> None:
    cache: RecordCache[str] = RecordCache(ttl=3600, max_entries=16)

    async def scenario() -> None:
        for i in range(17):
            await cache.get(f"k{i:02}", _load)

    asyncio.run(scenario())
    assert len(cache) == 14
    assert [key for key in cache._entries] == [f"k{i:02}" for i in range(3, 17)]


def test_expired_entries_go_within_an_eighth_of_the_ttl_and_are_never_returned() -> None:
    now = [0.0]
    cache: RecordCache[str] = RecordCache(ttl=8.0, clock=lambda: now[0])
    loads: list[str] = []

    async def counting(key: str) -> str:
        loads.append(key)
        return key.upper()

    async def scenario() -> None:
        for i in range(10):
            cache.put(f"k{i}", "old")
        now[0] = 8.5  # all ten expired at 8.0; the last sweep was at 0.0
        cache.put("x", "X")
        assert len(cache) == 1
        now[0] = 9.0  # swept at 8.5: not again before 9.5
        cache.put("y", "Y")
        assert len(cache) == 2
        now[0] = 16.7  # x expired at 16.5, y lives until 17.0
        assert await cache.get("x", counting) == "X"
        assert await cache.get("y", counting) == "Y"

    asyncio.run(scenario())
    assert loads == ["x"]
