"""The edges of the websocket endpoint layer, on both endpoints: the Origin rule
for the session cookie, frames far over the limit, a field of the wrong JSON or
msgpack type in every client message, a handler that fails, and a manager's
dashboard while viewing as a client team."""

from __future__ import annotations

import asyncio
from typing import Any

import msgpack
import orjson
import pytest
from aiohttp import ClientWebSocketResponse, WSMsgType

from signalling import protocol as p
from signalling.keys import CLOCK, SETTINGS, STORE
from signalling.staff_auth import COOKIE, issue_session
from tests.service.conftest import ADA, WAIT, Peer, World
from tests.service.ws_support import MANAGER, assert_served, close_frame, expect_error, refused

FOREIGN = "https://evil.example"


async def _cookie(world: World, staff_id: str, acting_as: str | None = None) -> dict[str, str]:
    account = await world.app[STORE].get_staff(staff_id)
    settings = world.app[SETTINGS]
    token = issue_session(settings, account, world.app[CLOCK].now(), acting_as=acting_as)
    return {"Cookie": f"{COOKIE}={token}"}


def _own_origin(world: World) -> str:
    server = world.client.server
    return f"http://{server.host}:{server.port}"


async def _next(ws: ClientWebSocketResponse) -> dict[str, Any]:
    """The next message that is not a heartbeat ping."""
    while True:
        msg = await asyncio.wait_for(ws.receive(), WAIT)
        assert msg.type is WSMsgType.TEXT, (msg.type, msg.data, msg.extra)
        body: dict[str, Any] = orjson.loads(msg.data)
        if body["type"] != "ping":
            return body


# -- the Origin rule --------------------------------------------------------------


async def test_a_foreign_page_gets_no_welcome_with_a_clinicians_cookie(world: World) -> None:
    headers = {**await _cookie(world, ADA), "Origin": FOREIGN}
    peer = await world.connect({"room": world.room_of(ADA)}, headers=headers)
    await refused(peer, "token_invalid")
    await assert_served(world)


@pytest.mark.parametrize("origin", ["own", "none"])
async def test_the_servers_own_pages_and_non_browsers_use_the_cookie(
    world: World, origin: str
) -> None:
    headers = await _cookie(world, ADA)
    if origin == "own":
        headers["Origin"] = _own_origin(world)
    peer = await world.enter({"room": world.room_of(ADA)}, headers=headers)
    assert peer.welcome["role"] == "host"


async def test_an_allow_listed_origin_uses_the_cookie(make_world: Any) -> None:
    world = await make_world(allowed_origins=("https://portal.clinic.example",))
    headers = {**await _cookie(world, ADA), "Origin": "https://portal.clinic.example"}
    peer = await world.enter({"room": world.room_of(ADA)}, headers=headers)
    assert peer.welcome["role"] == "host"


async def test_a_foreign_page_gets_no_dashboard_snapshot_with_a_cookie(world: World) -> None:
    headers = {**await _cookie(world, ADA), "Origin": FOREIGN}
    ws = await world.client.ws_connect("/ws/dashboard", headers=headers)
    await ws.send_json({"type": "subscribe", "scope": "everyone"})
    body = await _next(ws)
    assert (body["type"], body["code"]) == ("error", "unauthorized"), body
    assert (await asyncio.wait_for(ws.receive(), WAIT)).type is WSMsgType.CLOSE
    # the same cookie from the server's own page is a dashboard
    own = {**await _cookie(world, ADA), "Origin": _own_origin(world)}
    ws = await world.client.ws_connect("/ws/dashboard", headers=own)
    await ws.send_json({"type": "subscribe", "scope": "everyone"})
    assert (await _next(ws))["type"] == "snapshot"


async def test_a_foreign_origin_may_still_use_explicit_credentials(world: World) -> None:
    """An integrator's own page (its own origin) with a link token is not CSRF."""
    peer = await world.enter({"token": world.meeting(0)["token"]}, headers={"Origin": FOREIGN})
    assert peer.welcome["role"] == "guest"


# -- frames too large, whatever their size ------------------------------------------


@pytest.mark.parametrize("size", [65 * 1024, 1024 * 1024])
@pytest.mark.parametrize("moment", ["before hello", "after hello"])
async def test_any_frame_over_the_limit_gets_too_large_on_ws(
    world: World, size: int, moment: str
) -> None:
    if moment == "after hello":
        peer = await world.host(ADA)
    else:
        peer = await world.connect()
    await peer.ws.send_str(orjson.dumps({"type": "say", "text": "a" * size}).decode())
    await refused(peer, "too_large", close=1009)
    await assert_served(world)


@pytest.mark.parametrize("moment", ["before hello", "after hello"])
async def test_any_frame_over_the_limit_gets_too_large_on_the_dashboard(
    world: World, moment: str
) -> None:
    ws = await world.client.ws_connect("/ws/dashboard")
    if moment == "after hello":
        await ws.send_json({"type": "hello", "jwt": world.jwt(ADA)})
    await ws.send_bytes(msgpack.packb({"type": "subscribe", "scope": "a" * 1024 * 1024}))
    while True:
        msg = await asyncio.wait_for(ws.receive(), WAIT)
        if msg.type is WSMsgType.BINARY or msg.type is WSMsgType.TEXT:
            body = (
                orjson.loads(msg.data) if msg.type is WSMsgType.TEXT else msgpack.unpackb(msg.data)
            )
            if body["type"] == "ping":
                continue
            assert (body["type"], body["code"]) == ("error", "too_large"), body
            continue
        assert msg.type is WSMsgType.CLOSE and msg.data == 1009, (msg.type, msg.data)
        break
    await assert_served(world)


# -- wrong types in every field ------------------------------------------------------

#: values of every JSON type (and msgpack's bytes), and a string past any limit
WRONG: list[Any] = [
    ["offer"],
    {"a": 1},
    12,
    1.5,
    True,
    "x" * 61_000,
    [],
    {},
]
#: a well-formed message of each client type; each field is then replaced by WRONG
GOOD: dict[str, dict[str, Any]] = {
    "hello": {"token": "t", "name": "n", "ref": 1},
    "join": {"ref": 1},
    "leave": {"ref": 1},
    "signal": {"to": "x", "kind": "candidate", "sdp": "s", "candidate": {"candidate": "c"}},
    "call.state": {"state": "connected", "peer": "x"},
    "admit": {"participant": "x"},
    "admit_all": {"ref": 1},
    "deny": {"participant": "x"},
    "put_back": {"participant": "x"},
    "move": {"participant": "x", "room": "r"},
    "say": {"text": "t"},
    "invite": {"member": "m"},
    "watch": {"ref": 1},
    "unwatch": {"ref": 1},
    "pick": {"participant": "x", "room": "r"},
    "mediacheck.offer": {"sdp": "s"},
    "ping": {"ref": 1},
    "pong": {"ref": 1},
    "subscribe": {"scope": "my", "since": 1},
}


def _wrong_frames(binary: bool) -> list[tuple[str, str | bytes]]:
    frames: list[tuple[str, str | bytes]] = []
    for kind, good in GOOD.items():
        for field in [*good, "type"]:
            for value in WRONG:
                if field == "ref" and isinstance(value, int) and not isinstance(value, bool):
                    continue  # an integer ref is valid
                if field == "candidate" and value == {}:
                    continue  # a candidate with no fields is valid (all are optional)
                body = {"type": kind, **good, field: value}
                encoded = msgpack.packb(body) if binary else orjson.dumps(body).decode()
                frames.append((f"{kind}.{field}={str(value)[:12]}", encoded))
    # bytes where a string belongs: msgpack only
    if binary:
        frames.append(("hello.token=bytes", msgpack.packb({"type": "hello", "token": b"t"})))
    return frames


def test_every_client_type_is_fuzzed() -> None:
    assert set(GOOD) == p.CLIENT_TYPES


async def _send(peer: Peer, frame: str | bytes) -> None:
    if isinstance(frame, bytes):
        await peer.ws.send_bytes(frame)
    else:
        await peer.ws.send_str(frame)


@pytest.mark.parametrize("binary", [False, True], ids=["json", "msgpack"])
async def test_a_wrong_type_in_any_field_after_hello_is_bad_message(
    make_world: Any, binary: bool
) -> None:
    world = await make_world(rate=100_000.0, burst=100_000)
    peer = await world.host(ADA, join=False)
    peer.binary = binary
    for n, (name, frame) in enumerate(_wrong_frames(binary)):
        await _send(peer, frame)
        body = await expect_error(peer, "bad_message")
        assert body["message"], name
        # the connection is still usable: a ping is answered
        await peer.send({"type": "ping", "ref": n})
        assert (await peer.expect("pong"))["ref"] == n, name


@pytest.mark.parametrize("binary", [False, True], ids=["json", "msgpack"])
async def test_a_wrong_type_in_any_field_before_hello_is_bad_message(
    world: World, binary: bool
) -> None:
    """Nothing is usable before hello: the error, then a close; the server goes on."""
    for name, frame in _wrong_frames(binary)[::7]:
        peer = await world.connect()
        await _send(peer, frame)
        body = await expect_error(peer, "bad_message")
        assert body["message"], name
        code, _ = await close_frame(peer)
        assert code == 1008, name
    await assert_served(world)


# -- a failure that is not the client's doing -----------------------------------------


async def test_a_failing_handler_answers_internal_and_keeps_serving(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = world.app[STORE]
    host = await world.host(ADA)

    async def broken(slug: str) -> Any:
        raise OSError("disk unplugged")

    monkeypatch.setattr(store, "find_room_by_slug", broken)
    guest = await world.guest(0)
    await host.expect("lobby", where=lambda m: bool(m["waiting"]))
    await host.send({"type": "move", "participant": guest.pid, "room": "anywhere", "ref": 9})
    body = await expect_error(host, "internal", ref=9)
    assert "disk" not in body["message"]
    monkeypatch.undo()
    await host.send({"type": "ping", "ref": 10})
    assert (await host.expect("pong"))["ref"] == 10
    await assert_served(world)


# -- a manager viewing as a client team ------------------------------------------------


async def test_a_manager_viewing_as_a_team_gets_its_whole_dashboard(world: World) -> None:
    team = (await world.app[STORE].get_staff(ADA)).team_id
    assert team is not None
    cookie = await _cookie(world, MANAGER, acting_as=team)
    ws = await world.client.ws_connect("/ws/dashboard", headers=cookie)
    for scope in ("my", "everyone"):
        await ws.send_json({"type": "subscribe", "scope": scope})
        snapshot = await _next(ws)
        assert snapshot["type"] == "snapshot", snapshot
        ids = {m["id"] for m in snapshot["meetings"]}
        assert ids == {m["id"] for m in world.demo.meetings}, scope
    assert len({m["host"] for m in world.demo.meetings}) > 1  # not one member's meetings


async def test_a_manager_viewing_as_no_one_gets_no_dashboard(world: World) -> None:
    ws = await world.client.ws_connect("/ws/dashboard", headers=await _cookie(world, MANAGER))
    await ws.send_json({"type": "subscribe", "scope": "everyone"})
    body = await _next(ws)
    assert (body["type"], body["code"]) == ("error", "forbidden"), body


async def test_a_store_outage_answers_unavailable_and_refuses_hello_1013(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unreachable store is not the client's doing and may pass: ``unavailable``
    with a retry hint (the hello is refused 1013, "try again later")."""
    store = world.app[STORE]
    host = await world.host(ADA)

    async def unreachable(*args: Any, **kwargs: Any) -> Any:
        raise ConnectionError("connection refused")

    monkeypatch.setattr(store, "redeem_link_entry", unreachable)
    peer = await world.connect({"token": world.meeting(0)["token"]})
    body = await expect_error(peer, "unavailable")
    assert body["retry_after"] > 0
    assert (await close_frame(peer))[0] == 1013
    # REST says the same, as JSON with Retry-After
    monkeypatch.setattr(store, "get_team", unreachable)
    response = await world.client.get(
        "/api/me", headers={"Authorization": f"Bearer {world.jwt(ADA)}"}
    )
    assert response.status == 503
    assert (await response.json())["error"]["code"] == "unavailable"
    assert int(response.headers["Retry-After"]) >= 1
    monkeypatch.undo()
    # the host's connection was never touched
    await host.send({"type": "ping", "ref": 1})
    assert (await host.expect("pong"))["ref"] == 1
