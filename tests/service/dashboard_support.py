"""Fixtures and helpers of the dashboard, scheduler and webhook tests.

A real app (create_app) on a real SQLite file with a FixedClock, served by
aiohttp_client; a clinic team with three members (Ada and Sam share a group,
Cy is in none), another team, and meetings with real guest credentials.
Presence is driven through the real ``/ws`` hub: a guest with a link token, a
host with a JWT (settings.jwt_secret).
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from aiohttp import ClientWebSocketResponse, WSMsgType, web
from aiohttp.test_utils import TestClient

from rooms.accounts import Group, Organisation, Plan, StaffAccount, StaffRole, Team
from rooms.meeting import Guest, Meeting, MeetingType
from rooms.room import Room, RoomKind
from rooms.tokens import issue_credential
from signalling.bootstrap import create_app
from signalling.clock import FixedClock
from signalling.settings import Settings
from signalling.store.sqlite import SQLiteStore

#: a Monday morning; meetings are placed relative to it
T0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
JWT_SECRET = "test-jwt-secret-for-dashboards-0123456789"
#: every wait in these tests is on a message, bounded by this
WAIT = 10.0

AppFactory = Callable[..., Awaitable[web.Application]]
ClientFactory = Callable[[web.Application], Awaitable[TestClient[Any, Any]]]


def new_id() -> str:
    return secrets.token_hex(6)


@dataclass
class World:
    """The seeded records; ``tokens`` maps meeting id -> its link token."""

    team: Team
    other_team: Team
    ada: StaffAccount
    sam: StaffAccount
    cy: StaffAccount
    zed: StaffAccount
    rooms: dict[str, Room]
    mtype: MeetingType
    meetings: dict[str, Meeting] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)


def staff(staff_id: str, team: Team, groups: frozenset[str] = frozenset()) -> StaffAccount:
    return StaffAccount(
        staff_id,
        team.org_id,
        team.id,
        StaffRole.MEMBER,
        f"{staff_id}@clinic.test",
        f"Dr {staff_id}",
        "!",
        groups=groups,
    )


async def seed(store: SQLiteStore, settings: Settings) -> World:
    org = Organisation("org", "Harbour", T0 - timedelta(days=30))
    team = Team("team", org.id, "Harbour", "H1", Plan.CLINIC, "h@clinic.test", "", org.created_at)
    other = Team("team2", org.id, "Quay", "Q1", Plan.CLINIC, "q@clinic.test", "", org.created_at)
    await store.add_organisation(org)
    await store.add_team(team)
    await store.add_team(other)
    ada = staff("ada", team, frozenset({"g1"}))
    sam = staff("sam", team, frozenset({"g1"}))
    cy = staff("cy", team)
    zed = staff("zed", other)
    rooms: dict[str, Room] = {}
    for account in (ada, sam, cy, zed):
        await store.add_staff(account)
        assert account.team_id is not None
        room = Room(
            "r-" + account.id, account.team_id, account.id, account.id, RoomKind.USER, account.id
        )
        await store.add_room(room)
        rooms[account.id] = room
    await store.add_group(Group("g1", team.id, "Clinicians", frozenset({"ada", "sam"})))
    mtype = MeetingType("mt", team.id, "Consultation", timedelta(minutes=30), colour="#123456")
    await store.add_meeting_type(mtype)
    world = World(team, other, ada, sam, cy, zed, rooms, mtype)
    for host, offset in ((ada, 10), (sam, 12), (cy, 14), (zed, 10)):
        await add_meeting(store, settings, world, host, T0 + timedelta(minutes=offset))
    return world


async def add_meeting(
    store: SQLiteStore, settings: Settings, world: World, host: StaffAccount, start: datetime
) -> Meeting:
    assert host.team_id is not None
    meeting = Meeting(
        "m-" + host.id + "-" + new_id(),
        host.team_id,
        host.id,
        world.rooms[host.id].id,
        world.mtype.id if host.team_id == world.team.id else None,
        Guest(f"Patient of {host.id}", f"patient.{host.id}@example.org"),
        timedelta(minutes=30),
        T0 - timedelta(days=1),
        start=start,
    )
    issued = issue_credential(
        meeting, T0, new_id=new_id, before=settings.link_before, grace=settings.link_grace
    )
    await store.add_meetings([meeting], [issued.credential])
    world.meetings[meeting.id] = meeting
    world.tokens[meeting.id] = issued.link_token
    return meeting


def meeting_of(world: World, host: StaffAccount) -> Meeting:
    return next(m for m in world.meetings.values() if m.host_id == host.id)


def staff_jwt(staff_id: str, now: datetime) -> str:
    claims = {"sub": staff_id, "exp": int((now + timedelta(hours=1)).timestamp())}
    return jwt.encode(claims, JWT_SECRET, algorithm="HS256")


def make_settings(tmp_path: Any, **extra: Any) -> Settings:
    return Settings(
        db_path=str(tmp_path / "vestibule.sqlite3"),
        jwt_secret=JWT_SECRET,
        secret="cookie-secret-for-tests",
        heartbeat=30.0,
        mediacheck=False,  # no worker processes: these tests are about presence
        **extra,
    )


@dataclass
class Server:
    client: TestClient[Any, Any]
    app: web.Application
    clock: FixedClock
    world: World
    settings: Settings


async def start_server(
    aiohttp_client: ClientFactory,
    tmp_path: Any,
    *,
    clock: FixedClock | None = None,
    world: World | None = None,
    **extra: Any,
) -> Server:
    """A running app on the SQLite file in ``tmp_path`` (seeded on first use)."""
    settings = make_settings(tmp_path, **extra)
    clock = clock or FixedClock(T0)
    store = SQLiteStore(settings.db_path)
    if world is None:
        seed_store = SQLiteStore(settings.db_path)
        await seed_store.open()
        try:
            world = await seed(seed_store, settings)
        finally:
            await seed_store.close()
    app = create_app(settings, store=store, clock=clock)
    client = await aiohttp_client(app)
    return Server(client, app, clock, world, settings)


async def receive(ws: ClientWebSocketResponse, kind: str | None = None) -> dict[str, Any]:
    """The next message (of ``kind``, skipping pings), within WAIT seconds."""
    while True:
        msg = await asyncio.wait_for(ws.receive(), WAIT)
        if msg.type is not WSMsgType.TEXT:
            raise AssertionError(f"expected a text frame, got {msg.type!r} {msg.data!r}")
        body: dict[str, Any] = msg.json()
        if body["type"] == "ping":
            continue
        if kind is None or body["type"] == kind:
            return body
        if kind is not None and body["type"] == "error":
            raise AssertionError(f"error while waiting for {kind}: {body}")


async def dashboard(
    server: Server,
    who: StaffAccount,
    scope: str = "my",
    since: int | None = None,
) -> tuple[ClientWebSocketResponse, dict[str, Any]]:
    """A subscribed dashboard (JWT hello) and its snapshot."""
    ws = await server.client.ws_connect("/ws/dashboard")
    await ws.send_json({"type": "hello", "jwt": staff_jwt(who.id, server.clock.now())})
    sub: dict[str, Any] = {"type": "subscribe", "scope": scope}
    if since is not None:
        sub["since"] = since
    await ws.send_json(sub)
    return ws, await receive(ws, "snapshot")


async def guest_enters(server: Server, meeting: Meeting) -> ClientWebSocketResponse:
    ws = await server.client.ws_connect("/ws")
    await ws.send_json({"type": "hello", "token": server.world.tokens[meeting.id]})
    welcome = await receive(ws, "welcome")
    assert welcome["meeting"] == meeting.id
    return ws


async def host_enters(server: Server, host: StaffAccount) -> ClientWebSocketResponse:
    ws = await server.client.ws_connect("/ws")
    token = staff_jwt(host.id, server.clock.now())
    await ws.send_json({"type": "hello", "jwt": token, "room": server.world.rooms[host.id].slug})
    welcome = await receive(ws, "welcome")
    assert welcome["role"] == "host"
    return ws


class DashboardState:
    """What a dashboard client knows: meeting id -> (status, indicator), and last seq."""

    def __init__(self) -> None:
        self.meetings: dict[str, dict[str, Any]] = {}
        self.last = 0

    def apply(self, body: dict[str, Any]) -> None:
        kind = body["type"]
        if kind == "snapshot":
            if body["fresh"]:
                self.meetings = {
                    m["id"]: {"status": m["status"], "indicator": m["indicator"]}
                    for m in body["meetings"]
                }
            self.last = body["seq"]
            return
        assert body["seq"] > self.last, f"seq went backwards or repeated: {body} after {self.last}"
        self.last = body["seq"]
        if kind == "watermark":  # nothing more in scope up to here
            return
        meeting = self.meetings.get(body["meeting"])
        if kind == "presence":
            if meeting is not None:
                meeting["indicator"] = body["indicator"]
        elif kind == "meeting":
            view = body.get("view")
            if view is not None:
                self.meetings[view["id"]] = {
                    "status": view["status"],
                    "indicator": view["indicator"],
                }
            elif meeting is not None:
                meeting["status"] = body["status"]

    def summary(self) -> dict[str, tuple[str, str]]:
        return {mid: (m["status"], m["indicator"]) for mid, m in self.meetings.items()}


def summary_of(snapshot: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {m["id"]: (m["status"], m["indicator"]) for m in snapshot["meetings"]}


async def leave(ws: ClientWebSocketResponse) -> None:
    """Send ``leave`` and read until the server closes the socket: by then the
    ``left`` is in the log (it is stored before the others are told)."""
    await ws.send_json({"type": "leave"})
    while True:
        msg = await asyncio.wait_for(ws.receive(), WAIT)
        if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.CLOSING):
            return
