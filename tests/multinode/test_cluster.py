"""Several hub processes sharing Redis (docs/architecture.md, docs/decisions.md).

Real redis-server, real ``vestibule serve --redis`` processes, real websockets.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis

from tests.multinode.conftest import RESUME_WINDOW, Cluster, Node
from tests.multinode.wire import WAIT, Peer, hello, ws_url

pytestmark = pytest.mark.multinode


async def _host_in_room(
    http: aiohttp.ClientSession, cluster: Cluster, node: Node, room: dict[str, Any]
) -> tuple[Peer, str]:
    """The room's host says hello on ``node`` (not following goaway) and joins."""
    body = {"jwt": cluster.mint_jwt(room["host_id"]), "room": room["slug"]}
    peer, welcome, _ = await hello(http, node.ws, body, follow=False)
    assert welcome["type"] == "welcome", welcome
    assert welcome["role"] == "host"
    await peer.send({"type": "join"})
    await peer.expect("joined")
    return peer, str(welcome["participant"])


async def _dashboard(
    http: aiohttp.ClientSession, cluster: Cluster, node: Node, host_id: str
) -> tuple[Peer, dict[str, Any]]:
    """The host's dashboard on ``node`` (JWT hello, scope "my") and its snapshot."""
    board = await http.ws_connect(node.dashboard)
    await board.send_json({"type": "hello", "jwt": cluster.mint_jwt(host_id)})
    await board.send_json({"type": "subscribe", "scope": "my"})
    dashboard = Peer(board, node.dashboard)
    return dashboard, await dashboard.expect("snapshot")


async def test_a_link_is_redeemed_once_across_nodes(
    nodes: list[Node], seed: dict[str, Any]
) -> None:
    a, b = nodes
    token = seed["rooms"][0]["token"]
    async with aiohttp.ClientSession() as http:
        results = await asyncio.gather(
            hello(http, a.ws, {"token": token, "name": "Ann"}),
            hello(http, b.ws, {"token": token, "name": "Ann"}),
        )
        answers = sorted(first["type"] for _, first, _ in results)
        codes = [first.get("code") for _, first, _ in results if first["type"] == "error"]
        for peer, _, _ in results:
            await peer.close()
    assert answers == ["error", "welcome"], [first for _, first, _ in results]
    assert codes == ["token_invalid"]


async def test_a_guest_is_sent_to_the_node_that_owns_the_room(
    cluster: Cluster, nodes: list[Node], seed: dict[str, Any]
) -> None:
    a, b = nodes
    room = seed["rooms"][1]
    async with aiohttp.ClientSession() as http:
        host, host_id = await _host_in_room(http, cluster, a, room)

        guest_hello = {"token": room["token"], "name": "Ann"}
        elsewhere, goaway, _ = await hello(http, b.ws, guest_hello, follow=False)
        assert goaway == {
            "type": "goaway",
            "reason": "room_elsewhere",
            "url": a.url,
            "reconnect_after": 0,
        }
        await elsewhere.close()

        # The same hello at the owner: the link was not spent on the way.
        guest, welcome, _ = await hello(http, ws_url(goaway["url"]), guest_hello, follow=False)
        assert welcome["type"] == "welcome", welcome
        guest_id = welcome["participant"]
        await guest.send({"type": "join"})
        await guest.expect("waiting")
        await host.expect("lobby", where=lambda m: any(w["id"] == guest_id for w in m["waiting"]))
        await host.send({"type": "admit", "participant": guest_id})
        await guest.expect("admitted")
        await guest.expect("joined")

        await host.send({"type": "signal", "to": guest_id, "kind": "offer", "sdp": "v=0 x"})
        relayed = await guest.expect("signal")
        assert relayed["from"] == host_id
        assert relayed["sdp"] == "v=0 x"
        for peer in (guest, host):
            await peer.close()


async def test_a_dashboard_on_one_node_sees_presence_on_another(
    cluster: Cluster, nodes: list[Node], own_team: dict[str, Any]
) -> None:
    a, b = nodes
    room = own_team["rooms"][0]
    async with aiohttp.ClientSession() as http:
        dashboard, snapshot = await _dashboard(http, cluster, b, room["host_id"])
        start = int(snapshot["seq"])

        guest, welcome, hops = await hello(http, a.ws, {"token": room["token"], "name": "Ann"})
        assert welcome["type"] == "welcome", welcome
        assert hops == []  # nobody was in the room: node A took it
        await guest.send({"type": "join"})
        await guest.expect("waiting")

        events: list[dict[str, Any]] = []
        while not any(e.get("kind") == "waiting" for e in events):
            event = await dashboard.next()
            assert event["type"] in ("presence", "meeting"), event
            events.append(event)
        seqs = [int(e["seq"]) for e in events]
        assert seqs == list(range(start + 1, start + 1 + len(seqs))), seqs
        kinds = [e["kind"] for e in events if e["type"] == "presence"]
        assert kinds[0] == "entered" and kinds[-1] == "waiting", kinds
        assert {e["meeting"] for e in events} == {room["meeting"]}
        await guest.close()
        await dashboard.close()


async def test_a_node_that_stops_hands_its_rooms_to_a_live_node(
    cluster: Cluster, fresh_node: Node, nodes: list[Node], seed: dict[str, Any]
) -> None:
    a, b = fresh_node, nodes[1]
    room = seed["rooms"][3]
    staff = {"jwt": cluster.mint_jwt(room["host_id"]), "room": room["slug"]}
    async with aiohttp.ClientSession() as http:
        host, _ = await _host_in_room(http, cluster, a, room)
        refused, goaway, _ = await hello(http, b.ws, staff, follow=False)
        assert goaway["reason"] == "room_elsewhere" and goaway["url"] == a.url
        await refused.close()

        # SIGTERM: node A hands the lease to a live node, says goaway (with that
        # node's URL) to its host, and closes.
        assert await asyncio.to_thread(a.stop) == 0, a.log_tail()
        bye = await host.expect("goaway")
        assert bye["reason"] == "shutdown"
        assert bye["url"] in [node.url for node in nodes], bye
        await host.close()

        leases = aioredis.Redis.from_url(cluster.redis_url, decode_responses=True)
        try:
            keys = [key async for key in leases.scan_iter("vst:room-owner:*")]
            owners = [str(await leases.get(key)) for key in keys]
        finally:
            await leases.aclose()
        assert not [o for o in owners if o.endswith(f"|{a.url}")]

        # Well inside the lease's TTL, the room is usable, and never at node A.
        host_b, welcome, hops = await hello(http, b.ws, staff)
        assert welcome["type"] == "welcome", welcome
        assert hops in ([], [bye["url"]])
        await host_b.close()


async def test_a_killed_owners_room_is_taken_over_before_its_lease_expires(
    cluster: Cluster, fresh_node: Node, nodes: list[Node], own_team: dict[str, Any]
) -> None:
    """SIGKILL leaves the lease in Redis for its whole TTL; the owner's liveness
    key lapses within seconds, and the next hello anywhere takes the room over
    instead of being sent to the dead node until the lease expires."""
    a, b = fresh_node, nodes[0]
    room = own_team["rooms"][0]
    staff = {"jwt": cluster.mint_jwt(room["host_id"]), "room": room["slug"]}
    leases = aioredis.Redis.from_url(cluster.redis_url, decode_responses=True)
    try:
        async with aiohttp.ClientSession() as http:
            host, _ = await _host_in_room(http, cluster, a, room)
            owned = [
                k async for k in leases.scan_iter("vst:room-owner:*")
                if str(await leases.get(k)).endswith(f"|{a.url}")
            ]  # fmt: skip
            assert len(owned) == 1, owned
            key = owned[0]
            a.process.kill()
            a.process.wait(10)
            expires = asyncio.get_running_loop().time() + (await leases.pttl(key)) / 1000
            await host.close()
            attempts = 0
            while True:
                attempts += 1
                assert asyncio.get_running_loop().time() < expires, (
                    f"still sent to the dead node after {attempts} hellos"
                )
                peer, first, _ = await hello(http, b.ws, staff, follow=False)
                await peer.close()
                if first["type"] == "welcome":
                    break
                assert (first["type"], first.get("url")) == ("goaway", a.url), first
            assert str(await leases.get(key)).endswith(f"|{b.url}")
    finally:
        await leases.aclose()


async def test_a_meeting_cancelled_on_another_node_ends_its_patients_visit(
    cluster: Cluster, nodes: list[Node], own_team: dict[str, Any]
) -> None:
    a, b = nodes
    room = own_team["rooms"][0]
    async with aiohttp.ClientSession() as http:
        host, _ = await _host_in_room(http, cluster, a, room)
        guest, welcome, _ = await hello(http, a.ws, {"token": room["token"]}, follow=False)
        assert welcome["type"] == "welcome", welcome
        await guest.send({"type": "join"})
        await guest.expect("waiting")
        # the clinic cancels through node B; the room and the patient are on node A
        headers = {"Authorization": f"Bearer {cluster.mint_jwt(room['host_id'])}"}
        url = f"{b.url}/api/meetings/{room['meeting']}/cancel"
        async with http.post(url, headers=headers) as reply:
            assert reply.status == 200, await reply.text()
        goaway = await guest.expect("goaway")
        assert (goaway["reason"], goaway["reconnect_after"]) == ("cancelled", None)
        await guest.close()
        await host.close()


async def test_a_killed_nodes_patient_who_never_comes_back_is_shown_as_left(
    cluster: Cluster, fresh_node: Node, nodes: list[Node], own_team: dict[str, Any]
) -> None:
    """A node SIGKILLed with a patient waiting records nothing more; another node
    takes the dead node's people once its liveness lapses, with their room, and
    holds the patient's place for the resume window; the patient never resumes,
    so the ``left`` is logged then and a dashboard anywhere stops showing them."""
    a, b = fresh_node, nodes[0]
    room = own_team["rooms"][0]
    async with aiohttp.ClientSession() as http:
        dashboard, _ = await _dashboard(http, cluster, b, room["host_id"])

        leases = aioredis.Redis.from_url(cluster.redis_url, decode_responses=True)
        try:
            # node A writes who it serves within a beat: wait for that write itself
            # (a keyspace notification), so the kill comes after it
            await leases.config_set("notify-keyspace-events", "Kh")
            node_a = await _node_id(leases, a)
            db = cluster.redis_url.rsplit("/", 1)[1]
            watch = leases.pubsub()
            await watch.subscribe(f"__keyspace@{db}__:vst:node-sessions:{node_a}")
            guest, welcome, _ = await hello(http, a.ws, {"token": room["token"]}, follow=False)
            assert welcome["type"] == "welcome", welcome
            await guest.send({"type": "join"})
            await guest.expect("waiting")
            pid = welcome["participant"]
            async with asyncio.timeout(WAIT):
                while not await leases.hexists(f"vst:node-sessions:{node_a}", pid):
                    await watch.get_message(ignore_subscribe_messages=True, timeout=WAIT)
            await watch.aclose()
        finally:
            await leases.aclose()

        a.process.kill()
        a.process.wait(10)
        async with asyncio.timeout(RESUME_WINDOW + WAIT):
            while True:
                left = await dashboard.next(RESUME_WINDOW + WAIT)
                if left.get("type") == "presence" and left.get("kind") == "left":
                    break
        assert left["participant"] == welcome["participant"]
        await dashboard.close()


async def _node_id(leases: aioredis.Redis, node: Node) -> str:
    """A node's id, from its liveness key (whose value ends with its URL)."""
    async for key in leases.scan_iter("vst:node-alive:*"):
        if str(await leases.get(key)).endswith(f"|{node.url}"):
            return str(key).removeprefix("vst:node-alive:")
    raise AssertionError(f"{node.name} has no liveness key")


async def _calls(client: aioredis.Redis) -> dict[str, int]:
    stats = await client.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(s["calls"]) for name, s in stats.items()}


async def test_a_guests_join_reads_and_claims_once_and_skips_script_checks(
    cluster: Cluster, nodes: list[Node], own_team: dict[str, Any]
) -> None:
    """Up to its welcome, a guest's join on the room's node finds the link's room
    and redeems the link (one HMGET each, inside their scripts), writes its
    presence in one script (no MULTI), never asks SCRIPT EXISTS, and reads
    the credential's hash only in the redemption and no copy of the room (it
    has none).
    Counted on the session's redis-server: the nodes' own background work
    (beats, renewals) uses none of these commands."""
    a, _ = nodes
    room = own_team["rooms"][0]
    client = aioredis.Redis.from_url(cluster.redis_url)
    try:
        async with aiohttp.ClientSession() as http:
            before = await _calls(client)
            guest, welcome, hops = await hello(http, a.ws, {"token": room["token"]})
            after = await _calls(client)
            await guest.close()
    finally:
        await client.aclose()
    assert welcome["type"] == "welcome", welcome
    assert hops == []
    made = {name: after.get(name, 0) - before.get(name, 0) for name in after}
    assert made.get("hmget", 0) == 2
    assert made.get("hgetall", 0) == 1  # the redemption's answer, inside its script
    assert made.get("multi", 0) == 0
    assert made.get("script|exists", 0) == 0
    assert made.get("exists", 0) == 1  # the claim's look for a copy, once
