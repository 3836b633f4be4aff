"""What reaches every node at once (docs/operations.md, "Scale-out"): a room's
changed settings reach its live room on the node that serves it, and a
watch shows a shared queue served by another node, kept up to date.

Real redis-server, real hub processes, real websockets; every wait is on a
message or a close frame.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from tests.multinode.conftest import Cluster, Node
from tests.multinode.wire import Peer, hello

pytestmark = pytest.mark.multinode


def _auth(cluster: Cluster, staff_id: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {cluster.mint_jwt(staff_id)}"}


async def _room_id(
    http: aiohttp.ClientSession, cluster: Cluster, node: Node, room: dict[str, Any]
) -> str:
    async with http.get(f"{node.url}/api/rooms", headers=_auth(cluster, room["host_id"])) as reply:
        assert reply.status == 200, await reply.text()
        rooms = (await reply.json())["rooms"]
    (found,) = [r for r in rooms if r["slug"] == room["slug"]]
    return str(found["id"])


async def _patch_room(
    http: aiohttp.ClientSession,
    cluster: Cluster,
    node: Node,
    room: dict[str, Any],
    room_id: str,
    body: dict[str, Any],
) -> None:
    url = f"{node.url}/api/rooms/{room_id}"
    async with http.patch(url, json=body, headers=_auth(cluster, room["host_id"])) as reply:
        assert reply.status == 200, await reply.text()


async def _waiting_guest(http: aiohttp.ClientSession, node: Node, room: dict[str, Any]) -> Peer:
    guest, welcome, _ = await hello(http, node.ws, {"token": room["token"], "name": "Ann"})
    assert welcome["type"] == "welcome", welcome
    await guest.send({"type": "join"})
    first = await guest.expect("waiting")
    assert first["position"] == 1, first
    return guest


async def test_a_room_changed_on_one_node_changes_its_live_room_on_another(
    cluster: Cluster, nodes: list[Node], seed: dict[str, Any]
) -> None:
    a, b = nodes
    room = seed["rooms"][0]
    async with aiohttp.ClientSession() as http:
        guest = await _waiting_guest(http, b, room)  # the room lives on b now
        room_id = await _room_id(http, cluster, a, room)

        await _patch_room(http, cluster, a, room, room_id, {"show_position": False})
        hidden = await guest.expect("waiting")
        assert hidden["position"] is None, hidden

        await _patch_room(http, cluster, a, room, room_id, {"show_position": True})
        shown = await guest.expect("waiting")
        assert shown["position"] == 1, shown
        await guest.close()


def _queue(queues: dict[str, Any], slug: str) -> list[str]:
    room = next(r for r in queues["rooms"] if r["room"] == slug)
    return [entry["id"] for entry in room["waiting"]]


async def test_a_watch_shows_a_shared_queue_served_by_another_node(
    cluster: Cluster, nodes: list[Node], seed: dict[str, Any]
) -> None:
    a, b = nodes
    room = seed["rooms"][2]
    async with aiohttp.ClientSession() as http:
        create = {"name": "Waiting Area", "kind": "waiting_area"}
        async with http.post(
            f"{a.url}/api/rooms", json=create, headers=_auth(cluster, room["host_id"])
        ) as reply:
            assert reply.status == 201, await reply.text()
            area = (await reply.json())["room"]
        if not area["walk_ins"]:
            await _patch_room(http, cluster, a, room, area["id"], {"walk_ins": True})

        body = {"jwt": cluster.mint_jwt(room["host_id"]), "room": room["slug"]}
        host, welcome, _ = await hello(http, a.ws, body, follow=False)
        assert welcome["type"] == "welcome", welcome
        await host.send({"type": "join"})
        await host.expect("joined")
        await host.send({"type": "watch"})
        first = await host.expect("queues")
        assert _queue(first, area["slug"]) == []

        # A walk-in waits in the area on the other node (the area lives there now)
        walker, entered, _ = await hello(
            http, b.ws, {"room": area["slug"], "name": "Pat Walker"}, follow=False
        )
        assert entered["type"] == "welcome", entered
        await walker.expect("waiting")
        pid = entered["participant"]
        seen = await host.expect("queues", where=lambda m: _queue(m, area["slug"]) == [pid])
        (entry,) = next(r for r in seen["rooms"] if r["room"] == area["slug"])["waiting"]
        assert (entry["name"], entry["walk_in"]) == ("Pat Walker", True)

        await walker.send({"type": "leave"})
        await host.expect("queues", where=lambda m: _queue(m, area["slug"]) == [])
        await walker.close()
        await host.close()
