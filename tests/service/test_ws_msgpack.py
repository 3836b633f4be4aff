"""A client speaking only msgpack (binary frames) gets binary replies of the same shapes."""

from __future__ import annotations

import asyncio
from typing import Any

import msgpack
from aiohttp import WSMsgType

from tests.service.conftest import ADA, WAIT, Peer, World
from tests.service.ws_support import close_frame, expect_error


class BinaryPeer(Peer):
    """A peer that refuses any text frame from the server."""

    async def recv(self, timeout: float = WAIT) -> dict[str, Any]:
        msg = await asyncio.wait_for(self.ws.receive(), timeout)
        if msg.type is not WSMsgType.BINARY:
            raise AssertionError(f"a binary client got a {msg.type.name} frame: {msg.data!r}")
        body: dict[str, Any] = msgpack.unpackb(msg.data)
        self.seen.append(body)
        return body


async def _binary(world: World, hello: dict[str, Any]) -> BinaryPeer:
    peer = BinaryPeer(await world.client.ws_connect("/ws"), binary=True)
    world.peers.append(peer)
    await peer.send({"type": "hello", **hello})
    peer.welcome = await peer.expect("welcome")
    return peer


async def test_a_binary_client_gets_binary_replies(world: World) -> None:
    host = await _binary(world, {"jwt": world.jwt(ADA), "room": world.room_of(ADA), "ref": 1})
    assert host.welcome["ref"] == 1 and host.welcome["role"] == "host"
    assert isinstance(host.welcome["ice_servers"], list)
    await host.send({"type": "join"})
    assert (await host.expect("joined"))["participants"] == []

    guest = await _binary(world, {"token": world.meeting(0)["token"]})
    await guest.send({"type": "join"})
    assert await guest.expect("waiting") == {
        "type": "waiting",
        "position": 1,
        "message": None,
        "on_hold": False,
    }
    lobby = await host.expect("lobby", where=lambda m: bool(m["waiting"]))
    assert lobby["waiting"][0]["id"] == guest.pid
    assert isinstance(lobby["waiting"][0]["since"], float)

    await host.send({"type": "admit", "participant": guest.pid})
    await guest.expect("admitted")
    await guest.expect("joined")
    await host.send({"type": "signal", "to": guest.pid, "kind": "offer", "sdp": "v=0 bin"})
    assert await guest.expect("signal") == {
        "type": "signal",
        "from": host.pid,
        "kind": "offer",
        "sdp": "v=0 bin",
    }
    await guest.send({"type": "signal", "to": host.pid, "kind": "candidate", "candidate": None})
    assert await host.expect("signal") == {
        "type": "signal",
        "from": guest.pid,
        "kind": "candidate",
        "candidate": None,
    }
    await guest.send({"type": "ping", "ref": "p"})
    assert isinstance((await guest.expect("pong", ref="p"))["server_time"], float)
    await guest.send({"type": "admit", "participant": host.pid, "ref": 2})
    await expect_error(guest, "not_host", ref=2)
    await guest.send({"type": "leave"})
    assert (await host.expect("participant", event="went"))["id"] == guest.pid


async def test_a_binary_client_gets_binary_errors_for_bad_frames(world: World) -> None:
    peer = await _binary(world, {"jwt": world.jwt(ADA), "room": world.room_of(ADA)})
    await peer.ws.send_bytes(b"\xc1")
    await expect_error(peer, "bad_message")
    await peer.ws.send_bytes(msgpack.packb([1, 2]))
    await expect_error(peer, "bad_message")
    await peer.ws.send_bytes(msgpack.packb({"type": "ping", "ref": 3}))
    assert (await peer.expect("pong"))["ref"] == 3


async def test_a_binary_guest_refused_at_hello_gets_a_binary_error(world: World) -> None:
    peer = BinaryPeer(await world.client.ws_connect("/ws"), binary=True)
    await peer.send({"type": "hello", "token": "no-such-token"})
    await expect_error(peer, "token_invalid")
    assert (await close_frame(peer))[0] == 1008
