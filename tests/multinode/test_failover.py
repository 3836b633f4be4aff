"""A node that dies or stops with people in its rooms (docs/protocol.md,
"Keep-alive and shutdown"; docs/decisions.md, "Failover: a room survives its node").

Three real hub processes on the session's redis-server. In one room a host and
a patient are in a call; in another two patients wait, first and second. The
node holding both rooms is SIGKILLed (or SIGTERMed): everyone resumes with
their resume secret on another node, the call goes on (a signal is relayed
within 3 s of the room being reachable again), the patients keep their places,
and a dashboard on a surviving node counting every seq of the team finds none
missing and no ``left`` for anyone.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis

from tests.multinode.conftest import REDIS_DB, Cluster, Node
from tests.multinode.ledger import dashboard, no_seq_missing
from tests.multinode.wire import WAIT, Peer, connect, hello, ws_url

pytestmark = pytest.mark.multinode

#: relay must work again this soon after the room is reachable on another node
RELAY_WITHIN = 3.0


@pytest.fixture
def trio(cluster: Cluster) -> Iterator[list[Node]]:
    """Three hub processes of the test's own (it kills or stops one)."""
    started = cluster.start(3)
    yield started
    for node in started:
        node.stop()


@pytest.fixture
async def redis_client(cluster: Cluster) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(cluster.redis_url, decode_responses=True)
    await client.config_set("notify-keyspace-events", "KEA")
    yield client
    await client.aclose()


@dataclass
class Person:
    peer: Peer
    pid: str
    resume: str


async def _enter(http: aiohttp.ClientSession, node: Node, body: dict[str, Any]) -> Person:
    peer, welcome, _ = await hello(http, node.ws, body, follow=False)
    assert welcome["type"] == "welcome", welcome
    await peer.send({"type": "join"})
    return Person(peer, str(welcome["participant"]), str(welcome["resume"]))


async def _book(http: aiohttp.ClientSession, cluster: Cluster, node: Node, host: str) -> str:
    """A second meeting in the host's room, joinable now: its link token."""
    start = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()
    body = {
        "host": host,
        "guest": {"name": "Second Patient", "email": "second@example.org"},
        "start": start,
        "duration": 1800,
    }
    headers = {"Authorization": f"Bearer {cluster.mint_jwt(host)}"}
    async with http.post(f"{node.url}/api/meetings", json=body, headers=headers) as reply:
        assert reply.status == 201, await reply.text()
        (meeting,) = (await reply.json())["meetings"]
    return str(meeting["token"])


@dataclass
class Scene:
    """The people of the two rooms, all on one node."""

    host: Person
    patient: Person
    first: Person
    second: Person

    @property
    def everyone(self) -> list[Person]:
        return [self.host, self.patient, self.first, self.second]


async def _scene(
    http: aiohttp.ClientSession, cluster: Cluster, node: Node, seeded: dict[str, Any]
) -> Scene:
    call_room, queue_room = seeded["rooms"]
    host = await _enter(
        http, node, {"jwt": cluster.mint_jwt(call_room["host_id"]), "room": call_room["slug"]}
    )
    await host.peer.expect("joined")
    patient = await _enter(http, node, {"token": call_room["token"], "name": "Ann"})
    await patient.peer.expect("waiting")
    await host.peer.send({"type": "admit", "participant": patient.pid})
    await patient.peer.expect("joined")
    await host.peer.expect("participant", where=lambda m: m["id"] == patient.pid)

    second_token = await _book(http, cluster, node, queue_room["host_id"])
    first = await _enter(http, node, {"token": queue_room["token"], "name": "Bea"})
    assert (await first.peer.expect("waiting"))["position"] == 1
    second = await _enter(http, node, {"token": second_token, "name": "Cy"})
    assert (await second.peer.expect("waiting"))["position"] == 2
    return Scene(host, patient, first, second)


async def _saved(redis: aioredis.Redis, scene: Scene) -> None:
    """Wait until the rooms' copies in Redis hold everyone in their place (the
    copy is written a moment after each change: wait for the writes themselves)."""
    watch = redis.pubsub()
    await watch.psubscribe(f"__keyspace@{REDIS_DB}__:vst:room-state:*")
    want = {p.pid for p in scene.everyone}
    try:
        async with asyncio.timeout(WAIT):
            while True:
                found: set[str] = set()
                async for key in redis.scan_iter("vst:room-state:*"):
                    state = await redis.hgetall(key)
                    lobby = state.get("lobby", "")
                    found |= {pid for pid in want if f"s:{pid}" in state and pid in lobby}
                if found == want:
                    return
                await watch.get_message(ignore_subscribe_messages=True, timeout=WAIT)
    finally:
        await watch.aclose()


async def _node_id(redis: aioredis.Redis, node: Node) -> str:
    async for key in redis.scan_iter("vst:node-alive:*"):
        if str(await redis.get(key)).endswith(f"|{node.url}"):
            return str(key).removeprefix("vst:node-alive:")
    raise AssertionError(f"{node.name} has no liveness key")


async def _resume(
    http: aiohttp.ClientSession, url: str, person: Person
) -> tuple[Person, str, list[str]]:
    """Resume at ``url``, following ``room_elsewhere``; (person, final URL, hops)."""
    peer, welcome, hops = await hello(http, url, {"resume": person.resume})
    assert welcome["type"] == "welcome", welcome
    assert welcome["resumed"] is True and welcome["participant"] == person.pid, welcome
    final = ws_url(hops[-1]) if hops else url
    return Person(peer, person.pid, person.resume), final, hops


async def _taken_over(http: aiohttp.ClientSession, url: str) -> float:
    """The node's ``vestibule_rooms_taken_over_total``."""
    async with http.get(f"{url}/metrics") as reply:
        text = await reply.text()
    for line in text.splitlines():
        if line.startswith("vestibule_rooms_taken_over_total "):
            return float(line.split()[1])
    raise AssertionError("vestibule_rooms_taken_over_total is not exported")


async def _call_goes_on(host: Person, patient: Person) -> None:
    await host.peer.send({"type": "signal", "to": patient.pid, "kind": "ice-restart"})
    got = await patient.peer.expect("signal")
    assert got["from"] == host.pid
    await patient.peer.send({"type": "signal", "to": host.pid, "kind": "ice-restart"})
    back = await host.peer.expect("signal")
    assert back["from"] == patient.pid


async def test_a_killed_owners_rooms_resume_on_another_node_in_their_place(
    cluster: Cluster, trio: list[Node], redis_client: aioredis.Redis
) -> None:
    a, b, c = trio
    seeded = cluster.seed(2)
    async with aiohttp.ClientSession() as http:
        ledgers = [await dashboard(http, cluster, b, room["host_id"]) for room in seeded["rooms"]]
        counting = [asyncio.create_task(ledger.run()) for ledger in ledgers]
        scene = await _scene(http, cluster, a, seeded)
        await _saved(redis_client, scene)
        dead = await _node_id(redis_client, a)

        expired = redis_client.pubsub()
        await expired.subscribe(f"__keyevent@{REDIS_DB}__:expired")
        a.process.kill()
        a.process.wait(10)
        for person in scene.everyone:
            await person.peer.close()
        # the room is reachable elsewhere once the dead node's liveness lapses
        async with asyncio.timeout(WAIT):
            while True:
                event = await expired.get_message(ignore_subscribe_messages=True, timeout=WAIT)
                if event is not None and event["data"] == f"vst:node-alive:{dead}":
                    break
        await expired.aclose()
        reachable = time.monotonic()

        # host and patient resume at two different nodes at once: the two race to
        # take the room over, exactly one wins, and both meet on the winner
        (host, host_at, host_hops), (patient, patient_at, patient_hops) = await asyncio.gather(
            _resume(http, b.ws, scene.host), _resume(http, c.ws, scene.patient)
        )
        assert host_at == patient_at, (host_hops, patient_hops)
        await _call_goes_on(host, patient)
        assert time.monotonic() - reachable < RELAY_WITHIN
        winner = host_at.replace("ws://", "http://", 1).removesuffix("/ws")
        assert await _taken_over(http, winner) >= 1

        first, _, first_hops = await _resume(http, c.ws, scene.first)
        assert (await first.peer.expect("waiting"))["position"] == 1
        second, _, second_hops = await _resume(http, b.ws, scene.second)
        assert (await second.peer.expect("waiting"))["position"] == 2
        for hops in (host_hops, patient_hops, first_hops, second_hops):
            assert a.url not in hops

        # the queue goes on on the new node: the first patient leaves, the second
        # moves up
        await first.peer.send({"type": "leave"})
        assert (await second.peer.expect("waiting"))["position"] == 1
        await ledgers[1].until("left", first.pid)
        left = [e for ledger in ledgers for e in ledger.left({p.pid for p in scene.everyone})]
        assert [e["participant"] for e in left] == [first.pid], left
        await no_seq_missing(ledgers, counting, cluster.redis_url, seeded["team"])
        for person in (host, patient, second):
            await person.peer.close()
        for ledger in ledgers:
            await ledger.peer.close()


async def test_a_stopping_node_hands_its_rooms_over_and_nobody_loses_their_place(
    cluster: Cluster, trio: list[Node], redis_client: aioredis.Redis
) -> None:
    a, b, c = trio
    seeded = cluster.seed(2)
    async with aiohttp.ClientSession() as http:
        ledgers = [await dashboard(http, cluster, b, room["host_id"]) for room in seeded["rooms"]]
        counting = [asyncio.create_task(ledger.run()) for ledger in ledgers]
        scene = await _scene(http, cluster, a, seeded)

        stopping = asyncio.create_task(asyncio.to_thread(a.stop))
        urls: dict[str, str] = {}
        for person in scene.everyone:
            bye = await person.peer.expect("goaway")
            assert bye["reason"] == "shutdown", bye
            assert bye["url"] in (b.url, c.url), bye
            assert bye["reconnect_after"] == 0
            urls[person.pid] = bye["url"]
            await person.peer.close()
        assert await stopping == 0, a.log_tail()
        handed = time.monotonic()

        # each resumes at the URL it was given, and is welcomed there: no hop
        resumed: dict[str, Person] = {}
        for person in scene.everyone:
            peer, welcome, hops = await hello(
                http, ws_url(urls[person.pid]), {"resume": person.resume}, follow=False
            )
            assert welcome["type"] == "welcome" and welcome["resumed"] is True, welcome
            assert hops == []
            resumed[person.pid] = Person(peer, person.pid, person.resume)
        host, patient = resumed[scene.host.pid], resumed[scene.patient.pid]
        await _call_goes_on(host, patient)
        assert time.monotonic() - handed < RELAY_WITHIN
        first, second = resumed[scene.first.pid], resumed[scene.second.pid]
        assert (await first.peer.expect("waiting"))["position"] == 1
        assert (await second.peer.expect("waiting"))["position"] == 2

        # the host still hosts there: puts the patient back, and admits them again
        await host.peer.send({"type": "put_back", "participant": patient.pid})
        assert (await patient.peer.expect("waiting"))["on_hold"] is True
        await host.peer.send({"type": "admit", "participant": patient.pid})
        await patient.peer.expect("joined")

        await ledgers[0].until("admitted", patient.pid)
        assert [e for ledger in ledgers for e in ledger.left({p.pid for p in scene.everyone})] == []
        await no_seq_missing(ledgers, counting, cluster.redis_url, seeded["team"])
        for person in resumed.values():
            await person.peer.close()
        for ledger in ledgers:
            await ledger.peer.close()


async def test_a_resume_secret_nobody_saved_is_refused_everywhere(trio: list[Node]) -> None:
    async with aiohttp.ClientSession() as http:
        for node in trio:
            peer = await connect(http, node.ws)
            await peer.send({"type": "hello", "resume": "not-a-secret-anyone-issued"})
            refused = await peer.expect("error")
            assert refused["code"] == "token_invalid"
            await peer.close()


async def test_a_stopping_node_without_a_live_peer_stops_as_before(
    cluster: Cluster, fresh_node: Node
) -> None:
    seeded = cluster.seed(1)
    room = seeded["rooms"][0]
    async with aiohttp.ClientSession() as http:
        host = await _enter(
            http, fresh_node, {"jwt": cluster.mint_jwt(room["host_id"]), "room": room["slug"]}
        )
        await host.peer.expect("joined")
        stopping = asyncio.create_task(asyncio.to_thread(fresh_node.stop))
        bye = await host.peer.expect("goaway")
        assert bye == {"type": "goaway", "reason": "shutdown", "reconnect_after": 1}
        assert await stopping == 0, fresh_node.log_tail()
        await host.peer.close()
