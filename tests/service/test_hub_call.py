"""A two-party call set up through the hub with real aiortc peers on both ends."""

from __future__ import annotations

import asyncio
from typing import Any

from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from tests.service.conftest import ADA, World

# No ICE servers at all: the peers find each other on loopback host candidates, and
# nothing contacts a public STUN server (aiortc's default when none are given).
NO_ICE = RTCConfiguration(iceServers=[])


async def _connected(pc: RTCPeerConnection) -> asyncio.Future[str]:
    done: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    @pc.on("connectionstatechange")
    def _changed() -> None:
        if pc.connectionState in ("connected", "failed") and not done.done():
            done.set_result(pc.connectionState)

    return done


async def test_two_aiortc_peers_connect_through_the_hub(world: World) -> None:
    host = await world.host(ADA)
    guest = await world.guest(0)
    await host.expect("lobby", where=lambda m: bool(m["waiting"]))
    await host.send({"type": "admit", "participant": guest.pid})
    await guest.expect("joined")
    await host.expect("participant", event="came")

    caller, callee = RTCPeerConnection(NO_ICE), RTCPeerConnection(NO_ICE)
    try:
        caller_done, callee_done = await _connected(caller), await _connected(callee)
        caller.createDataChannel("chat")
        await caller.setLocalDescription(await caller.createOffer())
        await host.send(
            {"type": "signal", "to": guest.pid, "kind": "offer", "sdp": caller.localDescription.sdp}
        )
        offer: dict[str, Any] = await guest.expect("signal", kind="offer")
        assert offer["from"] == host.pid
        await callee.setRemoteDescription(RTCSessionDescription(offer["sdp"], "offer"))
        await callee.setLocalDescription(await callee.createAnswer())
        await guest.send(
            {"type": "signal", "to": host.pid, "kind": "answer", "sdp": callee.localDescription.sdp}
        )
        answer = await host.expect("signal", kind="answer")
        await caller.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
        states = await asyncio.wait_for(asyncio.gather(caller_done, callee_done), 20)
        assert states == ["connected", "connected"]
        await host.send({"type": "call.state", "state": "connected", "peer": guest.pid})
        await guest.send({"type": "call.state", "state": "connected", "peer": host.pid})
        await host.send({"type": "ping", "ref": "sync"})
        await host.expect("pong", ref="sync")
    finally:
        await caller.close()
        await callee.close()
