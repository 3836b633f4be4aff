"""Rooms' copies in Redis (signalling/room_state.py) and the drain's lease
hand-over (signalling/cluster.py), two nodes in one process on the session's
real redis-server."""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
import redis.asyncio as aioredis

from rooms import lobby
from rooms.presence import Role
from rooms.room import Room, RoomKind
from signalling.cluster import RoomLeases, alive_key, owner_key, state_key
from signalling.room_state import (
    ROOMS_PER_WRITE,
    RoomStates,
    SavedSession,
    Snapshot,
    decode_lobby,
    encode_lobby,
    outbox_key,
    resume_key,
)

pytestmark = pytest.mark.multinode

ROOM = Room("r1", "t1", "dr-ada", "Dr Ada", RoomKind.USER, owner_id="s1")
NOW = datetime(2026, 11, 21, 9, 30, tzinfo=UTC)


class Node:
    """A node's leases and copies; ``rooms`` is what its copies are to hold."""

    def __init__(self, url: str, name: str, prefix: str) -> None:
        self.rooms: dict[str, Snapshot] = {}
        self.handed: list[str] = []
        self.public = f"http://{name}.test:8080"
        self.leases = RoomLeases(
            url,
            name,
            self.public,
            lambda: set(self.rooms),
            grace=0.0,
            prefix=prefix,
            on_handed=self.handed.extend,
            on_reclaimed=lambda room_id: self.states.changed(room_id),
        )
        self.states = RoomStates(
            url,
            self.leases.value,
            window=30.0,
            outbox_limit=3,
            snapshot=lambda room_id: self.rooms.get(room_id, Snapshot({})),
            in_use=lambda: set(self.rooms),
            prefix=prefix,
        )

    async def start(self) -> None:
        await self.leases.start()
        await self.states.start()

    async def stop(self) -> None:
        await self.states.stop()
        await self.leases.stop()


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
    await a.start()
    await b.start()
    yield a, b
    await a.stop()
    await b.stop()


def _session(pid: str, digest: str, *, joined: bool = True) -> SavedSession:
    return SavedSession(
        "s-" + pid, digest, pid, Role.GUEST, "Ann", "t1", "m1", None, "c1", "", joined
    )


def _lobby_with(*guests: str) -> lobby.LobbyState:
    state = lobby.LobbyState.empty(ROOM)
    for pid in guests:
        person = lobby.Person(pid, Role.GUEST, "Ann", "m1")
        state = lobby.apply(state, lobby.Arrive(person), NOW).state
    return state


def _snapshot(state: lobby.LobbyState, *sessions: SavedSession) -> Snapshot:
    fields = {"lobby": encode_lobby(state)}
    fields.update({f"s:{s.participant}": s.encode() for s in sessions})
    return Snapshot(fields, [s.digest for s in sessions])


def test_a_lobby_comes_back_as_it_was() -> None:
    state = _lobby_with("g1", "g2", "g3")
    state = lobby.apply(state, lobby.Leave("g1"), NOW).state
    state = lobby.apply(state, lobby.Arrive(lobby.Person("h1", Role.HOST, "Dr")), NOW).state
    state = lobby.apply(state, lobby.Say("h1", "five minutes"), NOW).state
    state = lobby.apply(state, lobby.Admit("h1", "g3"), NOW).state
    walk_in = lobby.Person("w1", Role.GUEST, "Pat", walk_in=True)
    state = lobby.apply(state, lobby.Arrive(walk_in), NOW).state
    back = decode_lobby(ROOM, encode_lobby(state))
    assert back == state
    assert back.position("g2") == 1 and back.seats["g3"].ticket == 2
    saved = _session("g2", "d2", joined=False)
    assert SavedSession.decode(saved.encode()) == saved


async def test_the_owner_writes_the_copy_and_a_taker_loads_it_with_its_outbox(
    pair: tuple[Node, Node], redis_client: aioredis.Redis, prefix: str
) -> None:
    a, b = pair
    assert await a.leases.claim("r1") is None
    a.rooms["r1"] = _snapshot(_lobby_with("g1", "g2"), _session("g1", "d1"), _session("g2", "d2"))
    a.states.changed("r1")
    for n in range(5):
        a.states.queued("g2", {"type": "waiting", "position": n})
    a.states.queued("g1", {"type": "admitted"})
    a.states.delivered("g1")
    await a.states.flush()
    assert await redis_client.get(resume_key("d2", prefix)) == "r1"
    assert await redis_client.llen(outbox_key("g2", prefix)) == 3
    assert await redis_client.exists(outbox_key("g1", prefix)) == 0
    ttl = await redis_client.pttl(state_key("r1", prefix))
    assert 30_000 < ttl <= 60_000  # two resume windows

    await redis_client.delete(alive_key("a", prefix))  # a dies
    assert await b.leases.claim("r1") is None
    assert await b.states.room_of("d2") == "r1"
    saved = await b.states.load("r1")
    assert saved is not None
    assert sorted(s.participant for s in saved.sessions) == ["g1", "g2"]
    assert saved.lobby is not None
    assert decode_lobby(ROOM, saved.lobby).waiting == ("g1", "g2")
    # bounded: the newest three; delivered: gone
    assert saved.outboxes == {"g2": [{"type": "waiting", "position": n} for n in (2, 3, 4)]}
    assert await b.states.holds("r1", "g2") and not await b.states.holds("r1", "g9")


async def test_a_node_that_lost_the_room_cannot_overwrite_the_new_owners_copy(
    pair: tuple[Node, Node], redis_client: aioredis.Redis, prefix: str
) -> None:
    a, b = pair
    assert await a.leases.claim("r1") is None
    a.rooms["r1"] = _snapshot(_lobby_with("g1"), _session("g1", "d1"))
    a.states.changed("r1")
    await a.states.flush()
    await redis_client.delete(alive_key("a", prefix))  # a stalls past its liveness
    assert await b.leases.claim("r1") is None
    b.rooms["r1"] = _snapshot(_lobby_with("g1", "g2"), _session("g1", "d1"), _session("g2", "d2"))
    b.states.changed("r1")
    await b.states.flush()

    a.rooms["r1"] = Snapshot({})  # a wakes up, thinks the room emptied, writes
    a.states.changed("r1")
    await a.states.flush()
    assert await b.states.holds("r1", "g2")


async def test_an_emptied_room_takes_its_copy_with_its_lease(
    pair: tuple[Node, Node], redis_client: aioredis.Redis, prefix: str
) -> None:
    a, _ = pair
    assert await a.leases.claim("r1") is None
    a.rooms["r1"] = _snapshot(_lobby_with("g1"), _session("g1", "d1"))
    a.states.changed("r1")
    await a.states.flush()
    assert await redis_client.exists(state_key("r1", prefix)) == 1
    del a.rooms["r1"]
    await a.leases.tend()
    assert await redis_client.exists(owner_key("r1", prefix), state_key("r1", prefix)) == 0


async def test_a_draining_node_hands_its_rooms_to_a_live_one(
    pair: tuple[Node, Node], redis_client: aioredis.Redis, prefix: str
) -> None:
    a, b = pair
    assert await a.leases.claim("r1") is None
    assert await a.leases.claim("r2") is None
    assert await a.leases.live_nodes() == [b.leases.value]
    # r2 was lost meanwhile: only a lease still its own is handed over
    await redis_client.set(owner_key("r2", prefix), b.leases.value)
    handed = await a.leases.hand_over({"r1": b.leases.value, "r2": b.leases.value})
    assert handed == ["r1"]
    assert "r1" not in a.leases.held
    assert await redis_client.get(owner_key("r1", prefix)) == b.leases.value
    await b.leases.take_handed()
    assert b.handed == ["r1"]
    await b.leases.take_handed()
    assert b.handed == ["r1"]  # taken once
    await a.leases.release_all()  # a stops: the handed lease is not its to delete
    assert await redis_client.get(owner_key("r1", prefix)) == b.leases.value
    assert await b.leases.claim("r1") is None
    assert await b.leases.live_nodes() == []


async def test_a_copy_redis_lost_is_written_again_with_the_lease(
    pair: tuple[Node, Node], redis_client: aioredis.Redis, prefix: str
) -> None:
    a, _ = pair
    assert await a.leases.claim("r1") is None
    a.rooms["r1"] = _snapshot(_lobby_with("g1"), _session("g1", "d1"))
    a.states.changed("r1")
    await a.states.flush()
    # Redis restarted without persistence: every key is gone
    await redis_client.delete(
        owner_key("r1", prefix), state_key("r1", prefix), resume_key("d1", prefix)
    )
    a.leases.held["r1"] = 0.0  # due for renewal
    await a.leases.tend()
    await a.states.flush()
    assert await redis_client.get(owner_key("r1", prefix)) == a.leases.value
    assert await a.states.holds("r1", "g1")
    assert await a.states.room_of("d1") == "r1"


async def _calls(client: aioredis.Redis, command: str) -> int:
    stats = await client.info("commandstats")
    found = stats.get(f"cmdstat_{command}")
    return int(found["calls"]) if found else 0


async def test_many_rooms_are_written_in_few_calls_fenced_and_after_a_script_flush(
    pair: tuple[Node, Node], redis_client: aioredis.Redis, prefix: str
) -> None:
    """More rooms than one script call takes, their resume keys and queued
    messages: all written, a room another node holds left alone, and no SCRIPT
    EXISTS round trip, also after Redis forgot the script."""
    a, b = pair
    rooms = [f"r{n:03d}" for n in range(ROOMS_PER_WRITE * 2 + 5)]
    for room_id in rooms:
        assert await a.leases.claim(room_id) is None
        a.rooms[room_id] = _snapshot(_lobby_with("g1"), _session(f"g-{room_id}", f"d-{room_id}"))
        a.states.changed(room_id)
    await redis_client.set(owner_key("r000", prefix), b.leases.value)  # lost meanwhile
    a.states.queued("g-r001", {"type": "waiting", "position": 1})
    a.states.queued("g-r002", {"type": "waiting", "position": 2})
    a.states.delivered("g-r002")
    await redis_client.script_flush()
    exists_before = await _calls(redis_client, "script|exists")
    await a.states.flush()
    assert await _calls(redis_client, "script|exists") == exists_before
    assert await redis_client.exists(state_key("r000", prefix)) == 0
    for room_id in rooms[1:]:
        assert await a.states.holds(room_id, f"g-{room_id}"), room_id
        assert await redis_client.get(resume_key(f"d-{room_id}", prefix)) == room_id
    queued = await redis_client.lrange(outbox_key("g-r001", prefix), 0, -1)
    assert [json.loads(body) for body in queued] == [{"type": "waiting", "position": 1}]
    assert await redis_client.exists(outbox_key("g-r002", prefix)) == 0
    # emptied rooms lose their copies in the same way
    for room_id in rooms[1:]:
        a.rooms[room_id] = Snapshot({})
        a.states.changed(room_id)
    await a.states.flush()
    assert await redis_client.exists(*(state_key(r, prefix) for r in rooms)) == 0
