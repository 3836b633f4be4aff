"""RoomLeases of two nodes in one process, on the session's real redis-server."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from signalling.cluster import RoomLeases, owner_key

pytestmark = pytest.mark.multinode


class Node:
    """A node's leases and the rooms it says it has people in."""

    def __init__(self, url: str, name: str, prefix: str) -> None:
        self.people_in: set[str] = set()
        self.public = f"http://{name}.test:8080"
        self.leases = RoomLeases(
            url, name, self.public, lambda: set(self.people_in), grace=0.0, prefix=prefix
        )


@pytest.fixture
def prefix() -> str:
    return f"t{secrets.token_hex(4)}:"


@pytest.fixture
async def redis_client(redis_server: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_server, decode_responses=True)
    yield client
    await client.aclose()


@pytest.fixture
async def pair(redis_server: str, prefix: str) -> AsyncIterator[tuple[Node, Node]]:
    a, b = Node(redis_server, "a", prefix), Node(redis_server, "b", prefix)
    await a.leases.start()
    await b.leases.start()
    yield a, b
    await a.leases.stop()
    await b.leases.stop()


async def test_the_first_claim_wins_and_the_others_are_sent_there(
    pair: tuple[Node, Node], redis_client: aioredis.Redis, prefix: str
) -> None:
    a, b = pair
    assert await a.leases.claim("r1") is None
    assert await a.leases.claim("r1") is None  # its own: still here
    assert await b.leases.claim("r1") == a.public
    assert await redis_client.get(owner_key("r1", prefix)) == f"a|{a.public}"
    assert 0 < await redis_client.pttl(owner_key("r1", prefix)) <= 10_000


async def test_an_empty_room_is_released_and_a_busy_one_kept(
    pair: tuple[Node, Node], redis_client: aioredis.Redis, prefix: str
) -> None:
    a, b = pair
    assert await a.leases.claim("busy") is None
    assert await a.leases.claim("empty") is None
    a.people_in = {"busy"}
    a.leases.release_if_empty("empty")
    await a.leases.tend()
    assert set(a.leases.held) == {"busy"}
    assert await redis_client.exists(owner_key("empty", prefix)) == 0
    assert await b.leases.claim("empty") is None
    assert await b.leases.claim("busy") == a.public


async def test_a_node_never_deletes_a_lease_it_lost(
    pair: tuple[Node, Node], redis_client: aioredis.Redis, prefix: str
) -> None:
    a, b = pair
    assert await a.leases.claim("r1") is None
    # a stalled past its TTL and b took the room meanwhile
    await redis_client.delete(owner_key("r1", prefix))
    assert await b.leases.claim("r1") is None
    await a.leases.release_all()
    assert await redis_client.get(owner_key("r1", prefix)) == f"b|{b.public}"
    assert await a.leases.claim("r1") == b.public
