"""RedisBus between two nodes in one process, on the session's real redis-server."""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime

import pytest
import redis.asyncio as aioredis

from rooms.presence import LogEntry
from signalling.redis_bus import RedisBus, decode, encode, team_channel

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


def test_an_entry_survives_the_wire() -> None:
    entry = _entry("t1", 7)
    node, back = decode(encode(entry, "n1"))
    assert node == "n1"
    assert back == entry


def test_a_malformed_message_is_refused() -> None:
    with pytest.raises(ValueError, match="malformed"):
        decode(b"\x81\xa1n\xa2n1")


async def test_each_listener_gets_each_entry_once(redis_server: str) -> None:
    prefix = f"t{secrets.token_hex(4)}:"
    team = "team-" + secrets.token_hex(4)
    one, two = (
        RedisBus(redis_server, "n1", prefix=prefix),
        RedisBus(redis_server, "n2", prefix=prefix),
    )
    await one.start()
    await two.start()
    try:
        got_one: asyncio.Queue[LogEntry] = asyncio.Queue()
        got_two: asyncio.Queue[LogEntry] = asyncio.Queue()
        one.subscribe(team, got_one.put_nowait)
        unsubscribe = two.subscribe(team, got_two.put_nowait)
        await _subscribers(redis_server, team_channel(team, prefix), 2)

        async def next_seq(queue: asyncio.Queue[LogEntry]) -> int:
            return (await asyncio.wait_for(queue.get(), WAIT)).seq

        await one.publish(_entry(team, 1))
        await two.publish(_entry(team, 2))
        assert got_one.get_nowait().seq == 1  # its own: delivered locally, at once
        assert got_two.get_nowait().seq == 2
        assert await next_seq(got_one) == 2  # the other's: through Redis
        assert await next_seq(got_two) == 1

        # No echo: Redis delivers a channel's messages in publish order, and each
        # marker is published after the entry whose echo would precede it.
        await two.publish(_entry(team, 3))
        assert got_two.get_nowait().seq == 3
        assert await next_seq(got_one) == 3  # not an echo of 1
        await one.publish(_entry(team, 4))
        assert got_one.get_nowait().seq == 4
        assert await next_seq(got_two) == 4  # not an echo of 3 (nor of 2)
        assert got_one.empty() and got_two.empty()

        unsubscribe()
        await _subscribers(redis_server, team_channel(team, prefix), 1)
    finally:
        await one.stop()
        await two.stop()
