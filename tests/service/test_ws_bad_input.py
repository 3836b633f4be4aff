"""Bad input on /ws: each gets its error code; only protocol abuse closes; and
afterwards an unrelated pair of clients is still served normally."""

from __future__ import annotations

import asyncio
from typing import Any

import msgpack
import orjson
import pytest
from aiohttp import WSMsgType

from tests.service.conftest import ADA, WAIT, Peer, World
from tests.service.ws_support import assert_served, expect_error, refused

CANDIDATE = {
    "candidate": "candidate:1 1 UDP 1 127.0.0.1 5000 typ host",
    "sdpMid": "0",
    "sdpMLineIndex": 0,
}


async def _in_call(world: World) -> tuple[Peer, Peer]:
    """Ada hosting with meeting 0's guest admitted: (host, guest)."""
    host = await world.host(ADA)
    guest = await world.guest(0)
    await host.expect("lobby", where=lambda m: bool(m["waiting"]))
    await host.send({"type": "admit", "participant": guest.pid})
    await guest.expect("joined")
    return host, guest


# (name, frame as sent: str for a text frame, bytes for a binary one)
BAD_FRAMES: list[tuple[str, str | bytes | None]] = [
    ("malformed JSON", '{"type": "ping",'),
    ("malformed msgpack", b"\xc1\x92\x01"),
    ("truncated msgpack", msgpack.packb({"type": "ping"})[:-2]),
    ("JSON array", '[{"type": "ping"}]'),
    ("JSON string", '"ping"'),
    ("missing type", '{"ref": 3}'),
    ("type not a string", '{"type": 5}'),
    ("unknown type", '{"type": "teleport"}'),
    ("to is a number", None),
    ("candidate is a string", None),
    ("unknown signal kind", None),
    ("offer without sdp", None),
    ("ref is an object", '{"type": "ping", "ref": {"a": 1}}'),
    ("call.state unknown state", '{"type": "call.state", "state": "dancing"}'),
    ("hello again", '{"type": "hello", "token": "abc"}'),
    ("subscribe on /ws", '{"type": "subscribe", "scope": "my"}'),
]


def _signal_frame(name: str, host: Peer) -> str:
    body: dict[str, Any] = {
        "type": "signal",
        "to": host.pid,
        "kind": "candidate",
        "candidate": CANDIDATE,
        "ref": "bad",
    }
    if name == "to is a number":
        body["to"] = 5
    elif name == "candidate is a string":
        body["candidate"] = CANDIDATE["candidate"]
    elif name == "unknown signal kind":
        body["kind"] = "telepathy"
    elif name == "offer without sdp":
        body["kind"] = "offer"
    return orjson.dumps(body).decode()


@pytest.mark.parametrize(("name", "frame"), BAD_FRAMES, ids=[n for n, _ in BAD_FRAMES])
async def test_bad_message_is_answered_and_the_connection_stays(
    world: World, name: str, frame: str | bytes | None
) -> None:
    host, guest = await _in_call(world)
    sent = frame if frame is not None else _signal_frame(name, host)
    if isinstance(sent, bytes):
        await guest.ws.send_bytes(sent)
    else:
        await guest.ws.send_str(sent)
    err = await expect_error(guest, "bad_message")
    if name == "missing type":
        assert err["ref"] == 3
    if frame is None:
        assert err["ref"] == "bad"
    # the same connection is still usable, and still in the call
    await guest.send(
        {"type": "signal", "to": host.pid, "kind": "candidate", "candidate": CANDIDATE}
    )
    assert (await host.expect("signal"))["candidate"] == CANDIDATE
    await assert_served(world)


async def test_relay_to_someone_outside_the_call_is_forbidden(world: World) -> None:
    host, guest = await _in_call(world)
    await guest.send({"type": "signal", "to": "g-nobody", "kind": "ice-restart", "ref": 1})
    await expect_error(guest, "forbidden", ref=1)
    await host.send({"type": "signal", "to": host.pid + "x", "kind": "ice-restart", "ref": 2})
    await expect_error(host, "forbidden", ref=2)
    await guest.send({"type": "signal", "to": host.pid, "kind": "ice-restart"})
    assert (await host.expect("signal")) == {
        "type": "signal",
        "from": guest.pid,
        "kind": "ice-restart",
    }
    await assert_served(world)


async def test_an_oversized_frame_gets_too_large_and_closes_1009(world: World) -> None:
    host, guest = await _in_call(world)
    huge = {
        "type": "signal",
        "to": host.pid,
        "kind": "offer",
        "sdp": "a" * (world.settings.max_message + 1),
    }
    await guest.send(huge)
    await refused(guest, "too_large", close=1009)
    await assert_served(world)


async def test_a_frame_far_over_the_limit_gets_too_large_too(world: World) -> None:
    """Past what the server reads at all, the client still learns why it is closed."""
    host, guest = await _in_call(world)
    await guest.send(
        {
            "type": "signal",
            "to": host.pid,
            "kind": "offer",
            "sdp": "a" * (2 * world.settings.max_message + 1),
        }
    )
    await refused(guest, "too_large", close=1009)
    await assert_served(world)


async def test_an_oversized_hello_gets_too_large_and_closes_1009(world: World) -> None:
    peer = await world.connect({"token": "t" * (world.settings.max_message + 1)})
    await refused(peer, "too_large", close=1009)
    await assert_served(world)


async def test_a_flood_is_rate_limited_then_closed(make_world: Any) -> None:
    world = await make_world(rate=5.0, burst=5)
    flooder = await world.enter({"jwt": world.jwt(ADA), "room": world.room_of(ADA)})
    # far more than the burst plus the 100 refusals in a row that count as abuse, so
    # a token refilled mid-flood (5 a second) cannot save the connection
    for n in range(400):
        await flooder.send({"type": "ping", "ref": n})
    pongs: list[int] = []
    limited: list[dict[str, Any]] = []
    while True:
        msg = await asyncio.wait_for(flooder.ws.receive(), WAIT)
        if msg.type is not WSMsgType.TEXT:
            break
        body = orjson.loads(msg.data)
        if body["type"] == "pong":
            pongs.append(body["ref"])
        else:
            assert (body["type"], body["code"]) == ("error", "rate_limited"), body
            limited.append(body)
    # the burst is served, then messages are refused with a retry hint ...
    assert pongs[:5] == [0, 1, 2, 3, 4]
    assert limited[0]["ref"] == 5
    assert len(limited) > 100
    assert all(e["retry_after"] > 0 for e in limited)
    # ... and sustained abuse ends the connection with a policy close
    assert (msg.type, msg.data) == (WSMsgType.CLOSE, 1008)
    await assert_served(world)


async def test_a_message_before_hello_is_unauthorized(world: World) -> None:
    peer = await world.connect()
    await peer.send({"type": "join", "ref": 1})
    body = await refused(peer, "unauthorized")
    assert body["ref"] == 1
    await assert_served(world)


async def test_no_hello_in_time_is_unauthorized(make_world: Any) -> None:
    world = await make_world(hello_timeout=0.3)
    silent = await world.connect()
    await refused(silent, "unauthorized")
    await assert_served(world)


async def test_two_credentials_in_one_hello(world: World) -> None:
    peer = await world.connect(
        {"token": world.meeting(0)["token"], "jwt": world.jwt(ADA), "room": world.room_of(ADA)}
    )
    await refused(peer, "bad_message")
    # nothing was consumed: the link still works
    await world.guest(0)
    await assert_served(world)


async def test_a_malformed_hello_closes(world: World) -> None:
    peer = await world.connect()
    await peer.ws.send_str('{"type": "hello", "token": 12345}')
    await refused(peer, "bad_message")
    await assert_served(world)
