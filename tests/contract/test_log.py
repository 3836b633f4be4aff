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


async def test_a_presence_batch_numbers_after_single_appends_and_keeps_facts(
    world: World, backend: Backend
) -> None:
    store = world.store
    m1, m2 = world.meeting(), world.meeting()
    await store.add_meetings([m1, m2], [])
    before = await store.append_log("team1", NOW, "presence", "entered", m1.id, {})
    batch = [
        ("team1", NOW, "presence", "waiting", m1.id, {"participant": "p1"}),
        ("team2", NOW, "presence", "entered", None, {}),
        ("team1", NOW, "meeting", "status_changed", m1.id, {"status": "live"}),
    ]
    facts = {m1.id: {"guest_entered": True, "status": "live"}, m2.id: {"x": 1}}
    entries = await store.write_presence(batch, facts)
    assert [(e.team_id, e.seq) for e in entries] == [("team1", 2), ("team2", 1), ("team1", 3)]
    assert await store.log_since("team1", 0) == [before, entries[0], entries[2]]
    assert await store.log_since("team2", 0) == [entries[1]]
    assert dict(entries[0].data) == {"participant": "p1"}
    # single appends, on this instance or another, go on after the batch
    again = await backend.open()
    assert (await again.append_log("team1", NOW, "presence", "left", None, {})).seq == 4
    stored = await store.get_meeting_facts_many([m1.id, m2.id, "never"])
    assert stored == {m1.id: facts[m1.id], m2.id: facts[m2.id]}
    assert await store.get_meeting_facts(m1.id) == facts[m1.id]
    assert await store.write_presence([], {}) == []


async def test_concurrent_batches_and_appends_share_one_sequence(world: World) -> None:
    store = world.store
    batch = [("team1", NOW, "presence", "entered", None, {"n": n}) for n in range(5)]
    results = await asyncio.gather(
        *(store.write_presence(batch, {}) for _ in range(4)),
        *(store.append_log("team1", NOW, "presence", "left", None, {}) for _ in range(5)),
    )
    seqs = [e.seq for r in results[:4] for e in r] + [e.seq for e in results[4:]]
    assert sorted(seqs) == list(range(1, 26))
    for r in results[:4]:  # a batch's entries are consecutive and in order
        assert [e.seq for e in r] == list(range(r[0].seq, r[0].seq + 5))
