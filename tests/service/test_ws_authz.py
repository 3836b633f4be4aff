"""The authorisation matrix of /ws: every role against every action.

Actions happen in Dr Ada's consulting room (a user room) where the scene is:
Ada hosting, one guest admitted into the call (``in_call``), one guest waiting
(``waiting``). A role that may enter acts from where it stands after ``join``
(a guest waits, the owner is in the call). A role refused at hello sends the
action right behind its hello: it gets only the hello's error and a close
1008, and nobody in the scene hears anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from signalling.staff_auth import COOKIE
from tests.service.conftest import ADA, SAM, Peer, World
from tests.service.ws_support import (
    MANAGER,
    Invite,
    add_meeting,
    add_outsider,
    close_frame,
    expect_error,
    forged_jwt,
    probe,
    quiet,
    refused,
)

OK = "ok"
ACTIONS = (
    "hello_user_room",
    "hello_shared_room",
    "join",
    "signal_in_call",
    "signal_not_in_call",
    "call_state",
    "admit",
    "admit_all",
    "deny",
    "put_back",
    "move",
    "say",
    "mediacheck",
    "ping",
)
#: the codes of a role refused at hello, in a user room and in a shared room; a room
#: of another team is answered exactly as a room that does not exist
REFUSED: dict[str, tuple[str, str]] = {
    "member_not_owner": ("forbidden", OK),
    "other_team_member": ("not_found", "not_found"),
    "manager": ("not_found", "not_found"),
    "anonymous": ("token_invalid", "token_invalid"),
    "bogus_jwt": ("token_invalid", "token_invalid"),
}
GUEST = {
    "hello_user_room": OK,
    "hello_shared_room": OK,
    "join": OK,
    "signal_in_call": "forbidden",
    "signal_not_in_call": "forbidden",
    "call_state": "forbidden",
    "admit": "not_host",
    "admit_all": "not_host",
    "deny": "not_host",
    "put_back": "not_host",
    "move": "not_host",
    "say": "not_host",
    "mediacheck": "busy",
    "ping": OK,
}
OWNER = {
    **{action: OK for action in ACTIONS},
    "signal_not_in_call": "forbidden",
    "mediacheck": "busy",  # media checks are disabled in these settings
}


def _refused_row(role: str) -> dict[str, str]:
    in_user, in_shared = REFUSED[role]
    row = {action: in_user for action in ACTIONS}
    row["hello_shared_room"] = in_shared
    return row


MATRIX: dict[str, dict[str, str]] = {
    "guest_link": GUEST,
    "guest_key": GUEST,
    "room_owner": OWNER,
    **{role: _refused_row(role) for role in REFUSED},
}
ROWS = [(role, action, MATRIX[role][action]) for role in MATRIX for action in ACTIONS]


@dataclass
class Scene:
    host: Peer
    in_call: Peer
    waiting: Peer


async def _hello_for(world: World, role: str, shared: bool) -> dict[str, Any]:
    room = world.shared("reception") if shared else world.room_of(ADA)
    meeting = world.meeting(2 if shared else 0)
    match role:
        case "guest_link":
            return {"token": meeting["token"]}
        case "guest_key":
            return {"guest_key": meeting["guest_key"], "room": room}
        case "room_owner":
            return {"jwt": world.jwt(ADA), "room": room}
        case "member_not_owner":
            return {"jwt": world.jwt(SAM), "room": room}
        case "other_team_member":
            outsider = await add_outsider(world)
            return {"jwt": world.jwt(outsider.staff_id), "room": room}
        case "manager":
            return {"jwt": world.jwt(MANAGER), "room": room}
        case "anonymous":
            return {"room": room}
        case "bogus_jwt":
            return {"jwt": forged_jwt(ADA), "room": room}
    raise AssertionError(role)


async def _enter_with_token(world: World, invite: Invite) -> Peer:
    peer = await world.enter({"token": invite.token, "name": invite.guest})
    await peer.send({"type": "join"})
    await peer.expect("waiting")
    return peer


async def _scene(world: World) -> Scene:
    """Ada hosting her room, one guest in the call, one waiting; all drained."""
    host = await world.host(ADA)
    ada_room = world.room_of(ADA)
    in_call = await _enter_with_token(world, await add_meeting(world, ADA, ada_room, "Ines Call"))
    waiting = await _enter_with_token(world, await add_meeting(world, ADA, ada_room, "Wren Wait"))
    await host.send({"type": "admit", "participant": in_call.pid})
    await in_call.expect("joined")
    await quiet(host, in_call, waiting)
    return Scene(host, in_call, waiting)


def _action(action: str, scene: Scene, world: World) -> dict[str, Any]:
    """The message for ``action`` aimed at the scene (ref 7 on every one)."""
    body: dict[str, Any]
    match action:
        case "join":
            body = {"type": "join"}
        case "signal_in_call":
            body = {"type": "signal", "to": scene.in_call.pid, "kind": "offer", "sdp": "v=0 x"}
        case "signal_not_in_call":
            body = {"type": "signal", "to": scene.waiting.pid, "kind": "offer", "sdp": "v=0 x"}
        case "call_state":
            body = {"type": "call.state", "state": "connected", "peer": scene.in_call.pid}
        case "admit" | "deny":
            body = {"type": action, "participant": scene.waiting.pid}
        case "admit_all":
            body = {"type": "admit_all"}
        case "put_back":
            body = {"type": "put_back", "participant": scene.in_call.pid}
        case "move":
            body = {
                "type": "move",
                "participant": scene.waiting.pid,
                "room": world.shared("reception"),
            }
        case "say":
            body = {"type": "say", "text": "Running 5 minutes late"}
        case "mediacheck":
            body = {"type": "mediacheck.offer", "sdp": "v=0 check"}
        case "ping":
            body = {"type": "ping"}
        case _:
            raise AssertionError(action)
    return {**body, "ref": 7}


async def _nobody_heard(scene: Scene) -> None:
    for peer in (scene.host, scene.in_call, scene.waiting):
        assert await probe(peer) == [], "a refused action reached the scene"


async def _check_allowed_effect(action: str, actor: Peer, scene: Scene, world: World) -> None:
    """What an allowed action does to the scene, checked on the people it touches."""
    match action:
        case "signal_in_call":
            got = await scene.in_call.expect("signal")
            assert got == {"type": "signal", "from": actor.pid, "kind": "offer", "sdp": "v=0 x"}
        case "call_state":
            assert await probe(actor) == []
        case "admit" | "admit_all":
            await scene.waiting.expect("admitted")
            joined = await scene.waiting.expect("joined")
            assert {p["id"] for p in joined["participants"]} == {actor.pid, scene.in_call.pid}
        case "deny":
            await scene.waiting.expect("denied")
            assert (await close_frame(scene.waiting))[0] == 1000
        case "put_back":
            back = await scene.in_call.expect("waiting")
            assert back["on_hold"] is True
        case "move":
            await scene.waiting.expect("moved", room=world.shared("reception"))
            await scene.waiting.expect("waiting", position=1)
        case "say":
            told = await scene.waiting.expect("waiting")
            assert told["message"] == "Running 5 minutes late"
        case "ping":
            pong = await actor.expect("pong")
            assert pong["ref"] == 7 and isinstance(pong["server_time"], float)
        case _:
            raise AssertionError(action)


@pytest.mark.parametrize(("role", "action", "expected"), ROWS, ids=[f"{r}-{a}" for r, a, _ in ROWS])
async def test_authorisation(world: World, role: str, action: str, expected: str) -> None:
    if action.startswith("hello_"):
        shared = action == "hello_shared_room"
        peer = await world.connect(await _hello_for(world, role, shared))
        if expected == OK:
            welcome = await peer.expect("welcome")
            assert welcome["room"] == (world.shared("reception") if shared else world.room_of(ADA))
            assert welcome["role"] == ("guest" if role.startswith("guest") else "host")
        else:
            await refused(peer, expected)
        return

    if role in REFUSED:
        scene = await _scene(world)
        peer = await world.connect(await _hello_for(world, role, shared=False))
        await peer.send(_action(action, scene, world))
        await refused(peer, expected)
        assert [m["type"] for m in peer.seen] == ["error"]
        await _nobody_heard(scene)
        return

    if action == "join":
        # before anyone else is there: a guest waits, the owner goes into the call
        actor = await world.enter(await _hello_for(world, role, shared=False))
        await actor.send({"type": "join", "ref": 7})
        if role == "room_owner":
            assert (await actor.expect("joined"))["participants"] == []
            await actor.expect("lobby", waiting=[])
        else:
            assert (await actor.expect("waiting"))["position"] == 1
        return

    scene = await _scene(world)
    if role == "room_owner":
        actor = scene.host
    else:
        actor = await world.enter(await _hello_for(world, role, shared=False))
        await actor.send({"type": "join"})
        await actor.expect("waiting", position=2)
        await quiet(scene.host)
    await actor.send(_action(action, scene, world))
    if expected == OK:
        await _check_allowed_effect(action, actor, scene, world)
    else:
        await expect_error(actor, expected, ref=7)
        if action == "mediacheck":
            assert (actor.seen[-1]).get("retry_after") is not None
        # nothing reached anyone, and the actor's connection is still usable
        for peer in (scene.in_call, scene.waiting):
            assert await probe(peer) == []
        await actor.send({"type": "ping", "ref": "after"})
        await actor.expect("pong", ref="after")


async def test_a_logged_in_browser_needs_no_credential_in_hello(world: World) -> None:
    """The session cookie on the upgrade request is the staff credential."""
    staff = next(s for s in world.demo.staff if s["email"].startswith("ada."))
    login = await world.client.post(
        "/api/login", json={"email": staff["email"], "password": staff["password"]}
    )
    assert login.status == 200
    cookie = login.cookies[COOKIE].value
    world.client.session.cookie_jar.clear()  # only what each connection sends below
    headers = {"Cookie": f"{COOKIE}={cookie}"}
    ada = await world.enter({"room": world.room_of(ADA)}, headers=headers)
    assert ada.welcome["role"] == "host"
    # the cookie is Ada's, so it opens no one else's consulting room
    elsewhere = await world.connect({"room": world.room_of(SAM)}, headers=headers)
    await refused(elsewhere, "forbidden")
    # and a forged cookie is no credential at all
    forged = {"Cookie": f"{COOKIE}={forged_jwt(ADA)}"}
    anonymous = await world.connect({"room": world.room_of(ADA)}, headers=forged)
    await refused(anonymous, "token_invalid")
