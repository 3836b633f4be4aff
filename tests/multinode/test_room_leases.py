"""RoomLeases of two nodes in one process, on the session's real redis-server."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from rooms.errors import Busy
from signalling import cluster
from signalling.cluster import RoomLeases, alive_key, owner_key, sessions_key, state_key

pytestmark = pytest.mark.multinode


class Node:
    """A node's leases, the rooms it says it has people in, and the rooms it was
    told another node holds (room id -> that node's URL)."""

    def __init__(self, url: str, name: str, prefix: str) -> None:
        self.people_in: set[str] = set()
        self.public = f"http://{name}.test:8080"
        self.moved: dict[str, str] = {}
        #: participant id -> JSON, as RoomCommands.people gives it
        self.people: dict[str, str] = {}
        self.orphans: list[dict[str, Any]] = []
        self.leases = RoomLeases(
            url,
            name,
            self.public,
            lambda: set(self.people_in),
            grace=0.0,
            prefix=prefix,
            on_lost=self.moved.__setitem__,
            people=lambda: list(self.people),
            describe=lambda pid: self.people.get(pid),
            on_orphans=self.orphans.extend,
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


@pytest.fixture
async def trio(redis_server: str, prefix: str) -> AsyncIterator[tuple[Node, Node, Node]]:
    nodes = tuple(Node(redis_server, name, prefix) for name in ("a", "b", "c"))
    for node in nodes:
        await node.leases.start()
    yield nodes  # type: ignore[misc]
    for node in nodes:
        await node.leases.stop()


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
    # a stalled past its liveness and b took the room meanwhile
    await redis_client.delete(alive_key("a", prefix))
    assert await b.leases.claim("r1") is None
    await a.leases.release_all()
    assert await redis_client.get(owner_key("r1", prefix)) == f"b|{b.public}"
    assert await a.leases.claim("r1") == b.public


async def test_a_live_owner_keeps_its_room_and_a_dead_ones_is_taken_over_at_once(
    pair: tuple[Node, Node], redis_client: aioredis.Redis, prefix: str
) -> None:
    a, b = pair
    assert await a.leases.claim("r1") is None
    assert 0 < await redis_client.pttl(alive_key("a", prefix)) <= 2_000
    assert await b.leases.claim("r1") == a.public  # a is alive: b sends people there
    # a dies: its liveness key lapses long before its lease would
    await redis_client.delete(alive_key("a", prefix))
    assert await redis_client.exists(owner_key("r1", prefix)) == 1
    assert await b.leases.claim("r1") is None
    assert await redis_client.get(owner_key("r1", prefix)) == f"b|{b.public}"


async def test_two_nodes_racing_for_a_dead_nodes_room_exactly_one_wins(
    trio: tuple[Node, Node, Node], redis_client: aioredis.Redis, prefix: str
) -> None:
    a, b, c = trio
    rooms = [f"r{n}" for n in range(20)]
    for room in rooms:
        assert await a.leases.claim(room) is None
    await redis_client.delete(alive_key("a", prefix))
    for room in rooms:
        won_b, won_c = await asyncio.gather(b.leases.claim(room), c.leases.claim(room))
        assert (won_b is None) != (won_c is None), room
        winner = b if won_b is None else c
        assert (won_c if winner is b else won_b) == winner.public
        assert (
            await redis_client.get(owner_key(room, prefix))
            == f"{winner.leases.node_id}|{winner.public}"
        )


async def test_a_lease_that_redis_lost_is_claimed_again_not_dropped(
    pair: tuple[Node, Node], redis_client: aioredis.Redis, prefix: str
) -> None:
    a, b = pair
    assert await a.leases.claim("r1") is None
    a.people_in = {"r1"}
    # Redis restarted without persistence: every key is gone
    await redis_client.delete(owner_key("r1", prefix), alive_key("a", prefix))
    a.leases.held["r1"] = 0.0  # due for renewal
    await a.leases.beat()
    await a.leases.tend()
    assert set(a.leases.held) == {"r1"}
    assert a.moved == {}
    assert await redis_client.get(owner_key("r1", prefix)) == f"a|{a.public}"
    assert await b.leases.claim("r1") == a.public  # no split: b sends people to a


async def test_a_node_that_finds_its_room_taken_sends_its_people_there(
    pair: tuple[Node, Node], redis_client: aioredis.Redis, prefix: str
) -> None:
    a, b = pair
    assert await a.leases.claim("r1") is None
    a.people_in = {"r1"}
    # a stalled past its liveness; b took the room over
    await redis_client.delete(alive_key("a", prefix))
    assert await b.leases.claim("r1") is None
    a.leases.held["r1"] = 0.0
    await a.leases.tend()
    assert a.moved == {"r1": b.public}
    assert "r1" not in a.leases.held
    assert await redis_client.get(owner_key("r1", prefix)) == f"b|{b.public}"


def _who(pid: str) -> str:
    return json.dumps(
        {"participant": pid, "team": "t", "room": "r", "meeting": "m", "role": "guest"}
    )


async def test_a_dead_nodes_people_are_reported_once_unless_served_elsewhere(
    trio: tuple[Node, Node, Node], redis_client: aioredis.Redis, prefix: str
) -> None:
    a, b, c = trio
    a.people = {"p1": _who("p1"), "p2": _who("p2")}
    await a.leases.publish_people()
    assert set(await redis_client.hkeys(sessions_key("a", prefix))) == {"p1", "p2"}
    # while a is alive nothing is taken
    await b.leases.reap()
    assert b.orphans == [] and await redis_client.exists(sessions_key("a", prefix)) == 1
    # p2 came back on c (a rejoin), then a died
    c.people = {"p2": _who("p2")}
    await c.leases.publish_people()
    await redis_client.delete(alive_key("a", prefix))
    await asyncio.gather(b.leases.reap(), c.leases.reap())
    reported = b.orphans + c.orphans
    assert [o["participant"] for o in reported] == ["p1"]  # once, by one node
    assert reported[0] == json.loads(_who("p1"))
    assert await redis_client.exists(sessions_key("a", prefix)) == 0
    # someone leaving is taken out of the hash at the next beat
    c.people = {}
    await c.leases.publish_people()
    assert await redis_client.hlen(sessions_key("c", prefix)) == 0


async def test_a_node_restarted_under_its_id_takes_its_rooms_back_at_once(
    redis_server: str, redis_client: aioredis.Redis, prefix: str
) -> None:
    # the earlier process of node "a" held r1 at another address; it died and
    # the new one beats under the same id, so its liveness key is alive
    await redis_client.set(owner_key("r1", prefix), "a|http://a-before.test:8080", px=10_000)
    again = Node(redis_server, "a", prefix)
    await again.leases.start()
    try:
        assert await redis_client.exists(alive_key("a", prefix)) == 1
        assert await again.leases.claim("r1") is None
        assert await redis_client.get(owner_key("r1", prefix)) == again.leases.value
    finally:
        await again.leases.stop()


class Clock:
    """time.monotonic as signalling.cluster reads it, moved by the test."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(cluster, "time", fake)
    return fake


async def test_a_claim_made_moments_ago_stands_without_asking_redis(
    pair: tuple[Node, Node], redis_client: aioredis.Redis, prefix: str, clock: Clock
) -> None:
    a, _ = pair
    await a.leases.beat()
    assert await a.leases.claim("r1") is None
    # the key vanishes: a claim within the window does not ask (nor set it again)
    await redis_client.delete(owner_key("r1", prefix))
    clock.now += cluster.CLAIM_REMEMBER / 2
    assert await a.leases.claim("r1") is None
    assert await redis_client.exists(owner_key("r1", prefix)) == 0
    # past the window it asks Redis again
    clock.now += cluster.CLAIM_REMEMBER
    assert await a.leases.claim("r1") is None
    assert await redis_client.get(owner_key("r1", prefix)) == a.leases.value


async def test_a_remembered_claim_ends_with_the_nodes_liveness(
    pair: tuple[Node, Node], redis_client: aioredis.Redis, prefix: str, clock: Clock
) -> None:
    """A claim made just before the node's liveness key may lapse is trusted
    only until then: after it, another node could have taken the room over."""
    a, b = pair
    await a.leases.beat()
    clock.now += cluster.ALIVE_TTL - 0.1
    assert await a.leases.claim("r1") is None
    clock.now += 0.05
    assert await a.leases.claim("r1") is None  # within both bounds
    # a's liveness lapsed (it stalled) and b took the room over
    await redis_client.delete(alive_key("a", prefix))
    assert await b.leases.claim("r1") is None
    clock.now += 0.1  # past the liveness a wrote, still within CLAIM_REMEMBER
    assert await a.leases.claim("r1") == b.public
    assert "r1" not in a.leases.held


async def test_a_released_room_is_claimed_from_redis_again(
    pair: tuple[Node, Node], redis_client: aioredis.Redis, prefix: str
) -> None:
    a, b = pair
    assert await a.leases.claim("r1") is None
    await a.leases.tend()  # nobody in it: released at once (no grace here)
    assert "r1" not in a.leases.held
    assert await b.leases.claim("r1") is None
    assert await a.leases.claim("r1") == b.public


async def test_a_claim_says_whether_there_is_a_copy_to_load(
    pair: tuple[Node, Node], redis_client: aioredis.Redis, prefix: str
) -> None:
    a, b = pair
    assert not a.leases.without_copy("never-claimed")
    assert await a.leases.claim("fresh") is None
    assert a.leases.without_copy("fresh")
    assert not a.leases.without_copy("fresh")  # asked once
    # b held a room and wrote its copy, then died: a has the copy to load
    assert await b.leases.claim("kept") is None
    await redis_client.hset(state_key("kept", prefix), "lobby", "{}")
    await redis_client.delete(alive_key("b", prefix))
    assert await a.leases.claim("kept") is None
    assert not a.leases.without_copy("kept")
    # a room lost to another node has nothing to say
    assert await a.leases.claim("lost") is None
    await redis_client.set(owner_key("lost", prefix), "c|http://c.test:8080")
    a.leases.held["lost"] = 0.0
    a.people_in = {"lost"}
    await a.leases.tend()
    assert not a.leases.without_copy("lost")


async def test_claims_made_together_share_a_round_trip_and_keep_their_own_answers(
    pair: tuple[Node, Node], monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = pair
    assert await b.leases.claim("theirs") is None
    batches: list[int] = []
    real = cluster.evalsha_all

    async def counted(client: Any, script: Any, calls: list[Any], **kw: Any) -> list[Any]:
        batches.append(len(calls))
        return await real(client, script, calls, **kw)

    monkeypatch.setattr(cluster, "evalsha_all", counted)
    rooms = [f"r{n}" for n in range(9)] + ["theirs"]
    answers = await asyncio.gather(*(a.leases.claim(room) for room in rooms))
    assert answers == [None] * 9 + [b.public]
    assert set(a.leases.held) == set(rooms[:9])
    assert batches == [10]  # one pipeline for the ten claims made together


async def test_a_claim_redis_refuses_is_busy_alone_and_the_batch_stands(
    pair: tuple[Node, Node], redis_client: aioredis.Redis, prefix: str
) -> None:
    a, _ = pair
    # a lease key of the wrong type: the claim's script fails for this room only
    await redis_client.hset(owner_key("broken", prefix), "x", "1")
    answers = await asyncio.gather(
        *(a.leases.claim(room) for room in ("r1", "broken", "r2")), return_exceptions=True
    )
    assert answers[0] is None and answers[2] is None
    assert isinstance(answers[1], Busy)
    assert set(a.leases.held) == {"r1", "r2"}


async def test_leases_are_renewed_without_script_exists_and_after_a_script_flush(
    pair: tuple[Node, Node], redis_client: aioredis.Redis, prefix: str
) -> None:
    a, _ = pair
    rooms = {"r1", "r2", "r3"}
    for room in rooms:
        assert await a.leases.claim(room) is None
    a.people_in = set(rooms)
    await redis_client.script_flush()  # Redis restarted with its data, not its scripts
    exists_before = await _calls(redis_client, "script|exists")
    for _ in range(2):
        for room in rooms:
            a.leases.held[room] = 0.0  # due
            await redis_client.pexpire(owner_key(room, prefix), 1_000)
        await a.leases.tend()
        assert set(a.leases.held) == rooms and a.moved == {}
        assert all(a.leases.held[room] > 0 for room in rooms)
        for room in rooms:
            assert await redis_client.pttl(owner_key(room, prefix)) > 1_000
    assert await _calls(redis_client, "script|exists") == exists_before


async def _calls(client: aioredis.Redis, command: str) -> int:
    stats = await client.info("commandstats")
    found = stats.get(f"cmdstat_{command}")
    return int(found["calls"]) if found else 0
