"""Contract: the per-team ordered log (seq from 1, never reused) and its trimming."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from .records import NOW, Backend, World


async def test_append_and_read_back(world: World) -> None:
    store = world.store
    data = {"participant": "p1", "role": "guest", "detail": {"reasons": ["no_mic"], "n": 2}}
    first = await store.append_log("team1", NOW, "presence", "entered", "m1", data)
    later = NOW + timedelta(seconds=1)
    second = await store.append_log("team1", later, "meeting", "created", None, {})
    other_team = await store.append_log("team2", NOW, "presence", "left", "m9", {})
    assert (first.seq, second.seq, other_team.seq) == (1, 2, 1)
    assert (first.team_id, first.at, first.topic, first.kind, first.meeting_id) == (
        "team1",
        NOW,
        "presence",
        "entered",
        "m1",
    )
    assert dict(first.data) == data
    assert await store.log_since("team1", 0) == [first, second]
    assert await store.log_since("team1", 1) == [second]
    assert await store.log_since("team1", 2) == []
    assert await store.log_since("team1", 0, limit=1) == [first]
    assert await store.log_since("team2", 0) == [other_team]
    assert await store.log_for_meeting("team1", "m1") == [first]


async def test_bounds_and_trim_never_reuse_seq(world: World, backend: Backend) -> None:
    store = world.store
    assert await store.log_bounds("team1") == (0, 0)
    for i in range(10):
        await store.append_log("team1", NOW, "presence", "entered", f"m{i % 2}", {"i": i})
    assert await store.log_bounds("team1") == (1, 10)
    assert await store.trim_log("team1", 4) == 6
    assert await store.log_bounds("team1") == (7, 10)
    assert [e.seq for e in await store.log_since("team1", 0)] == [7, 8, 9, 10]
    assert [e.seq for e in await store.log_for_meeting("team1", "m0")] == [7, 9]
    assert await store.trim_log("team1", 4) == 0
    assert (await store.append_log("team1", NOW, "presence", "left", None, {})).seq == 11
    assert await store.trim_log("team1", 0) == 5
    assert await store.log_bounds("team1") == (12, 11)  # nothing retained
    assert await store.log_since("team1", 0) == []
    # another instance (another node, or this one after a restart) goes on from 12
    again = await backend.open()
    assert (await again.append_log("team1", NOW, "presence", "left", None, {})).seq == 12
    assert await store.log_bounds("team1") == (12, 12)
    with pytest.raises(ValueError, match="keep_last"):
        await store.trim_log("team1", -1)


async def test_concurrent_appenders_get_distinct_increasing_seqs(
    world: World, backend: Backend
) -> None:
    stores = [world.store, await backend.open()]

    async def appender(n: int) -> list[int]:
        seqs = []
        for i in range(25):
            entry = await stores[n % 2].append_log(
                "team1", NOW, "presence", "entered", None, {"writer": n, "i": i}
            )
            seqs.append(entry.seq)
        return seqs

    per_writer = await asyncio.wait_for(asyncio.gather(*(appender(n) for n in range(4))), 30)
    for seqs in per_writer:
        assert seqs == sorted(seqs)  # each writer sees its own appends in order
    assert sorted(s for seqs in per_writer for s in seqs) == list(range(1, 101))
    log = await world.store.log_since("team1", 0)
    assert [e.seq for e in log] == list(range(1, 101))
    # and the stored order is each writer's order
    for n in range(4):
        assert [e.data["i"] for e in log if e.data["writer"] == n] == list(range(25))
