"""Shared steps for the /ws service tests (test_ws_*.py).

Everything here waits on messages (with the conftest's timeout), never on time:
``probe`` proves a peer received nothing unexpected by round-tripping a ping
through the server, which orders it after anything already sent to that peer.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import msgpack
import orjson
from aiohttp import WSMsgType

from rooms.accounts import Organisation, Plan, StaffAccount, StaffRole, Team
from rooms.meeting import Guest
from rooms.plans import default_shared_rooms, user_room_for
from rooms.room import RoomKind
from rooms.schedule import create_meeting
from rooms.tokens import format_key, issue_credential
from signalling.keys import ROOMS, STORE
from tests.service.conftest import SAM, WAIT, Peer, World

MANAGER = "demo-manager"
OUTSIDER = "outside-kim"


def _new_id() -> str:
    return secrets.token_hex(8)


@dataclass(frozen=True)
class Invite:
    """A meeting made for a test, with its guest credential in clear."""

    meeting: str
    room: str
    token: str
    key: str
    guest: str


async def add_meeting(
    world: World,
    host_id: str,
    room_slug: str,
    guest: str,
    *,
    starts_in: timedelta = timedelta(minutes=3),
) -> Invite:
    """A meeting of the demo team in ``room_slug``, hosted by ``host_id``."""
    store = world.app[STORE]
    now = datetime.now(UTC)
    room = await store.find_room_by_slug(room_slug)
    assert room is not None
    team = await store.get_team(room.team_id)
    host = await store.get_staff(host_id)
    mtype = (await store.list_meeting_types(team.id))[0]
    start = now.replace(microsecond=0) + starts_in
    meeting, _ = create_meeting(
        team,
        host,
        room,
        mtype,
        Guest(guest, f"{_new_id()}@example.org"),
        "test meeting",
        start,
        None,
        (),
        now,
        _new_id,
    )
    settings = world.settings
    issued = issue_credential(
        meeting, now, new_id=_new_id, before=settings.link_before, grace=settings.link_grace
    )
    await store.add_meetings([meeting], [issued.credential])
    return Invite(meeting.id, room_slug, issued.link_token, format_key(issued.guest_key), guest)


@dataclass(frozen=True)
class Outsider:
    """A member of another organisation's team, with a consulting room and a reception."""

    staff_id: str
    user_room: str
    reception: str


async def add_outsider(world: World) -> Outsider:
    """Another organisation, team and member, stored beside the demo organisation."""
    store = world.app[STORE]
    now = datetime.now(UTC)
    await store.add_organisation(Organisation("outside-org", "Elsewhere Health", now))
    team = Team(
        "outside-team",
        "outside-org",
        "Elsewhere Clinic",
        "EC-9",
        Plan.CLINIC,
        "clinic@elsewhere.test",
        "",
        now,
    )
    await store.add_team(team)
    taken = {r["slug"] for r in world.demo.rooms}
    shared = default_shared_rooms(team, _new_id, taken_slugs=taken)
    for room in shared:
        await store.add_room(room)
        taken.add(room.slug)
    kim = StaffAccount(
        OUTSIDER,
        "outside-org",
        team.id,
        StaffRole.MEMBER,
        "kim@elsewhere.test",
        "Dr Kim Outside",
        "!",
        created_at=now,
    )
    await store.add_staff(kim)
    own = user_room_for(kim, team, _new_id, taken_slugs=taken)
    await store.add_room(own)
    reception = next(r.slug for r in shared if r.kind is RoomKind.RECEPTION)
    return Outsider(kim.id, own.slug, reception)


def forged_jwt(staff_id: str) -> str:
    """A well-formed staff JWT signed with a secret the server does not know."""
    body = {"sub": staff_id, "exp": int(time.time()) + 600}
    return jwt.encode(body, "not-the-server-secret-0123456789abcdef", algorithm="HS256")


async def probe(peer: Peer, ref: str = "probe") -> list[dict[str, Any]]:
    """Everything ``peer`` received before the pong of a ping sent now.

    The server answers the ping after whatever it already sent this peer, so
    the list is complete up to this moment.
    """
    await peer.send({"type": "ping", "ref": ref})
    before: list[dict[str, Any]] = []
    while True:
        body = await peer.recv()
        if body["type"] == "pong" and body.get("ref") == ref:
            return before
        before.append(body)


async def quiet(*peers: Peer) -> None:
    """Drain every peer up to now (see ``probe``)."""
    for peer in peers:
        await probe(peer)


async def expect_error(peer: Peer, code: str, **fields: Any) -> dict[str, Any]:
    """The next error, which must have ``code`` (and ``fields``)."""
    body = await peer.expect("error")
    assert body["code"] == code, body
    for key, value in fields.items():
        assert body.get(key) == value, body
    return body


async def refused(peer: Peer, code: str, close: int = 1008) -> dict[str, Any]:
    """The error ``code``, then the server closes with ``close``."""
    body = await expect_error(peer, code)
    got, _ = await close_frame(peer)
    assert got == close, (got, body)
    return body


async def assert_served(world: World) -> None:
    """A second, unrelated pair (Dr Sam and meeting 1's guest) is served normally:
    hello, join, admit, relay both ways."""
    host = await world.host(SAM)
    guest = await world.guest(1)
    await host.expect("lobby", where=lambda m: [w["id"] for w in m["waiting"]] == [guest.pid])
    await host.send({"type": "admit", "participant": guest.pid})
    await guest.expect("admitted")
    await guest.expect("joined")
    await host.send({"type": "signal", "to": guest.pid, "kind": "offer", "sdp": "v=0 served"})
    assert (await guest.expect("signal"))["sdp"] == "v=0 served"
    await guest.send({"type": "signal", "to": host.pid, "kind": "answer", "sdp": "v=0 back"})
    assert (await host.expect("signal"))["sdp"] == "v=0 back"


async def until(condition: Callable[[], bool], within: float = WAIT) -> None:
    """Yield to the event loop (sleep(0), never a timed sleep) until ``condition`` holds.

    For server-side state with no message to wait on, such as a dropped socket
    being noticed by the server.
    """
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not reached")
        await asyncio.sleep(0)


def detached(world: World, peer: Peer) -> Callable[[], bool]:
    """Has the server noticed that ``peer``'s socket dropped (its session is held)?"""

    def check() -> bool:
        session = world.app[ROOMS].sessions.get(peer.pid)
        return session is not None and session.conn is None

    return check


async def close_frame(peer: Peer, within: float = WAIT) -> tuple[int, str]:
    """(code, reason) of the close frame the server sent, reading up to it.

    Unlike ``ws.close_code`` this is what the server said, even when it drops
    the TCP connection before our close reply gets through (aiohttp then
    reports 1006 locally).
    """
    deadline = time.monotonic() + within
    while True:
        msg = await asyncio.wait_for(peer.ws.receive(), max(0.01, deadline - time.monotonic()))
        if msg.type is WSMsgType.CLOSE:
            return int(msg.data), str(msg.extra or "")
        if msg.type is WSMsgType.TEXT:
            peer.seen.append(orjson.loads(msg.data))
        elif msg.type is WSMsgType.BINARY:
            peer.seen.append(msgpack.unpackb(msg.data))
        if msg.type in (WSMsgType.CLOSED, WSMsgType.CLOSING, WSMsgType.ERROR):
            raise AssertionError(f"no close frame: {msg.type.name} {msg.data!r}")
