"""The basic path through the hub: host in, guest waits, admit, relay, leave."""

from __future__ import annotations

import asyncio

from aiohttp import WSMsgType

from signalling.keys import HEARTBEAT
from tests.service.conftest import ADA, Peer, World


async def test_guest_waits_host_admits_and_they_relay(world: World) -> None:
    host = await world.host(ADA)
    guest = await world.guest(0)
    assert guest.welcome["role"] == "guest"
    assert guest.welcome["rejoin"]
    lobby = await host.expect("lobby", where=lambda m: bool(m["waiting"]))
    assert [w["id"] for w in lobby["waiting"]] == [guest.pid]
    await host.send({"type": "admit", "participant": guest.pid})
    await guest.expect("admitted")
    joined = await guest.expect("joined")
    assert [p["id"] for p in joined["participants"]] == [host.pid]
    came = await host.expect("participant", event="came")
    assert came["id"] == guest.pid

    await host.send({"type": "signal", "to": guest.pid, "kind": "offer", "sdp": "v=0 offer"})
    relayed = await guest.expect("signal")
    assert relayed == {"type": "signal", "from": host.pid, "kind": "offer", "sdp": "v=0 offer"}
    candidate = {
        "candidate": "candidate:1 1 UDP 1 127.0.0.1 5000 typ host",
        "sdpMid": "0",
        "sdpMLineIndex": 0,
    }
    await guest.send(
        {"type": "signal", "to": host.pid, "kind": "candidate", "candidate": candidate}
    )
    assert (await host.expect("signal"))["candidate"] == candidate

    await guest.send({"type": "leave"})
    went = await host.expect("participant", event="went")
    assert went["id"] == guest.pid


async def test_waiting_guest_cannot_signal(world: World) -> None:
    host = await world.host(ADA)
    guest = await world.guest(0)
    await guest.send({"type": "signal", "to": host.pid, "kind": "offer", "sdp": "x", "ref": 3})
    err = await guest.expect("error")
    assert (err["code"], err["ref"]) == ("forbidden", 3)
    # the connection stays usable
    await guest.send({"type": "ping", "ref": 4})
    assert (await guest.expect("pong"))["ref"] == 4


async def test_heartbeat_pings_the_living_and_closes_the_silent(world: World) -> None:
    heartbeat = world.app[HEARTBEAT]
    alive = await world.host(ADA)
    # a client whose websocket never answers pings (autoping off) looks dead
    silent_ws = await world.client.ws_connect("/ws", autoping=False)
    silent = Peer(silent_ws)
    await silent.send({"type": "hello", "token": world.meeting(0)["token"]})
    await silent.expect("welcome")
    await heartbeat.round()
    assert (await alive.expect("ping"))["server_time"] > 0
    ping = await asyncio.wait_for(silent_ws.receive(), 5)
    assert ping.type is WSMsgType.PING
    # the living client's automatic pong reaches the hub before this round trip ends
    await alive.send({"type": "ping", "ref": "r"})
    await alive.expect("pong", ref="r")
    await heartbeat.round()
    code, reason = await silent.closed()
    assert (code, reason) == (1001, "timeout")
    await alive.send({"type": "ping", "ref": "still"})
    await alive.expect("pong", ref="still")
