"""The basic path through the hub: host in, guest waits, admit, relay, leave."""

from __future__ import annotations

from tests.service.conftest import ADA, World


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
    candidate = {"candidate": "candidate:1 1 UDP 1 127.0.0.1 5000 typ host", "sdpMid": "0",
                 "sdpMLineIndex": 0}
    await guest.send({"type": "signal", "to": host.pid, "kind": "candidate",
                      "candidate": candidate})
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
