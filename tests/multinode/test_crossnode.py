"""What reaches every node at once (docs/operations.md, "Scale-out"): a room's
changed settings reach its live room on the node that serves it, and a
disabled account's websockets and sessions end on every node.

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
