"""RedisBus between two nodes in one process, on the session's real redis-server."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
import redis.asyncio as aioredis

from rooms.presence import LogEntry
from signalling.clock import SystemClock
from signalling.metrics import Metrics
from signalling.presence import PresenceLog
from signalling.redis_bus import RedisBus, decode, encode, team_channel
from signalling.settings import Settings
from signalling.store.redis import RedisStore

pytestmark = pytest.mark.multinode

#: a subscription is in place within milliseconds; this only bounds a broken one
WAIT = 5.0


def _entry(team: str, seq: int) -> LogEntry:
    at = datetime(2026, 11, 21, 9, 30, 0, 123456, tzinfo=UTC)
    return LogEntry(seq, team, at, "presence", "entered", "m1", {"role": "guest", "detail": {}})


async def _subscribers(url: str, channel: str, count: int) -> None:
    """Wait until Redis itself counts ``count`` subscribers on ``channel``."""
    client = aioredis.Redis.from_url(url)
    try:
        async with asyncio.timeout(WAIT):
            while True:
                numsub = dict(await client.pubsub_numsub(channel))
                if numsub.get(channel.encode(), 0) == count:
                    return
                await asyncio.sleep(0.01)  # polling Redis, which cannot notify us
    finally:
        await client.aclose()


@pytest.fixture
async def nodes(redis_server: str) -> AsyncIterator[tuple[RedisBus, RedisBus, str]]:
    """Two started buses, nodes n1 and n2, on a key prefix of their own."""
    prefix = f"t{secrets.token_hex(4)}:"
    one = RedisBus(redis_server, "n1", prefix=prefix)
    two = RedisBus(redis_server, "n2", prefix=prefix)
    await one.start()
    await two.start()
    yield one, two, prefix
    await one.stop()
    await two.stop()


def test_an_entry_survives_the_wire() -> None:
    entry = _entry("t1", 7)
    node, back = decode(encode(entry, "n1"))
    assert node == "n1"
    assert back == entry


def test_a_malformed_message_is_refused() -> None:
    with pytest.raises(ValueError, match="malformed"):
        decode(b"\x81\xa1n\xa2n1")


async def test_each_listener_gets_each_entry_once(
    redis_server: str, nodes: tuple[RedisBus, RedisBus, str]
) -> None:
    one, two, prefix = nodes
    team = "team-" + secrets.token_hex(4)
    got_one: asyncio.Queue[LogEntry] = asyncio.Queue()
    got_two: asyncio.Queue[LogEntry] = asyncio.Queue()
    one.subscribe(team, got_one.put_nowait)
    unsubscribe = two.subscribe(team, got_two.put_nowait)
    await _subscribers(redis_server, team_channel(team, prefix), 2)

    async def next_seq(queue: asyncio.Queue[LogEntry]) -> int:
        return (await asyncio.wait_for(queue.get(), WAIT)).seq

    await one.publish([_entry(team, 1)])
    assert got_one.get_nowait().seq == 1  # its own: delivered locally, at once
    assert await next_seq(got_two) == 1  # the other's: through Redis
    await two.publish([_entry(team, 2)])
    assert got_two.get_nowait().seq == 2
    assert await next_seq(got_one) == 2

    # No echo: Redis delivers a channel's messages in publish order, and each
    # marker is published after the entry whose echo would precede it.
    await two.publish([_entry(team, 3)])
    assert got_two.get_nowait().seq == 3
    assert await next_seq(got_one) == 3  # not an echo of 1
    await one.publish([_entry(team, 4)])
    assert got_one.get_nowait().seq == 4
    assert await next_seq(got_two) == 4  # not an echo of 3 (nor of 2)
    assert got_one.empty() and got_two.empty()

    unsubscribe()
    await _subscribers(redis_server, team_channel(team, prefix), 1)


async def test_a_batch_reaches_the_other_node_whole_and_in_order(
    redis_server: str, nodes: tuple[RedisBus, RedisBus, str]
) -> None:
    one, two, prefix = nodes
    here: list[LogEntry] = []
    there: asyncio.Queue[LogEntry] = asyncio.Queue()
    changed: asyncio.Queue[str] = asyncio.Queue()
    for team in ("ta", "tb"):
        one.subscribe(team, here.append)
        two.subscribe(team, there.put_nowait)
        await _subscribers(redis_server, team_channel(team, prefix), 2)
    two.on_meeting_change(changed.put_nowait)
    at = datetime(2026, 11, 21, 9, 30, tzinfo=UTC)
    batch = [
        _entry("ta", 1),
        _entry("tb", 1),
        LogEntry(2, "ta", at, "meeting", "rescheduled", "m7", {}),
        _entry("ta", 3),
    ]
    await one.publish(batch)
    assert here == batch  # delivered here before the call returns
    got = [await asyncio.wait_for(there.get(), WAIT) for _ in batch]
    assert got == batch  # every entry, in the order published
    assert await asyncio.wait_for(changed.get(), WAIT) == "m7"
    assert there.empty() and changed.empty()


async def test_a_meeting_changed_on_one_node_is_stale_on_every_other(
    nodes: tuple[RedisBus, RedisBus, str],
) -> None:
    """Each meeting entry names its meeting on the one channel every node follows,
    whatever team it subscribes to; presence entries do not; no node hears its own."""
    one, two, _ = nodes
    stale_one: asyncio.Queue[str] = asyncio.Queue()
    stale_two: asyncio.Queue[str] = asyncio.Queue()
    one.on_meeting_change(stale_one.put_nowait)
    two.on_meeting_change(stale_two.put_nowait)
    at = datetime(2026, 11, 21, 9, 30, tzinfo=UTC)
    # node 2 follows no team at all, and still hears of the change
    await two.publish([_entry("t1", 1)])  # presence: not a change to the meeting
    await two.publish([LogEntry(2, "t1", at, "meeting", "rescheduled", "m1", {})])
    assert await asyncio.wait_for(stale_one.get(), WAIT) == "m1"
    await one.publish([LogEntry(3, "t1", at, "meeting", "status_changed", "m2", {})])
    # in publish order on the channel: had node 2 heard its own "m1", it would
    # come first
    assert await asyncio.wait_for(stale_two.get(), WAIT) == "m2"
    assert stale_one.empty() and stale_two.empty()


async def test_the_presence_log_reads_a_meeting_again_once_another_node_changed_it(
    redis_server: str,
) -> None:
    prefix = f"t{secrets.token_hex(4)}:"
    here, there = (
        RedisBus(redis_server, "n1", prefix=prefix),
        RedisBus(redis_server, "n2", prefix=prefix),
    )
    store = RedisStore(redis_server)
    await store.open()
    await here.start()
    await there.start()
    try:
        presence = PresenceLog(store, here, SystemClock(), Metrics(), Settings())
        reads: list[str] = []

        async def load(meeting_id: str) -> str:
            reads.append(meeting_id)
            return meeting_id

        cache = presence.meetings
        gone: asyncio.Queue[str] = asyncio.Queue()
        here.on_meeting_change(gone.put_nowait)  # after the presence log's listener
        await cache.get("m1", load)
        await cache.get("m1", load)
        assert reads == ["m1"]
        at = datetime(2026, 11, 21, 9, 30, tzinfo=UTC)
        await there.publish([LogEntry(1, "t1", at, "meeting", "rescheduled", "m1", {})])
        assert await asyncio.wait_for(gone.get(), WAIT) == "m1"
        await cache.get("m1", load)
        assert reads == ["m1", "m1"]
    finally:
        await here.stop()
        await there.stop()
        await store.close()
