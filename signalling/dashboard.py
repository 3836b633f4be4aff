"""The live meetings dashboard (``/ws/dashboard``, docs/protocol.md).

Staff only: the session cookie on the upgrade, or ``{"type":"hello","jwt":J}``
first. A ``subscribe`` answers a ``snapshot`` and then streams the team's log
entries that fall in the viewer's scope, each with its ``seq``: ordered, with
no gap and no duplicate, a slow reader cut off (signalling/feed.py says how).
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Coroutine
from datetime import timedelta
from typing import Any

import structlog
from aiohttp import WSMsgType, web

from rooms.access import visible_meetings_scope
from rooms.errors import (
    BadMessage,
    NotFound,
    RateLimited,
    TokenInvalid,
    TooLarge,
    Unauthorized,
    VestibuleError,
)
from signalling import protocol as p
from signalling.app import BUS, CLOCK, METRICS, PRESENCE, SETTINGS, STORE
from signalling.bus import Bus
from signalling.clock import Clock
from signalling.connection import CloseCode, CloseReason, Connection, TokenBucket
from signalling.feed import HELD_FACTOR, Subscriber, TeamFeed, writable_transport
from signalling.metrics import Metrics
from signalling.presence import PresenceLog
from signalling.settings import Settings
from signalling.staff_auth import COOKIE, StaffPrincipal, from_jwt, from_session_cookie
from signalling.store.base import Store
from signalling.views import meeting_view

log = structlog.get_logger("vestibule.dashboard")

ENDPOINT = "dashboard"
#: snapshot history: a dashboard shows today's and upcoming meetings; four
#: weeks back covers "what happened last week" without sending years of them.
SNAPSHOT_PAST = timedelta(days=28)
#: consecutive rate-limited messages after which a connection is abusive (as /ws)
FLOOD_CLOSE_AFTER = 100


class Dashboard:
    """The ``/ws/dashboard`` endpoint: its connections, team feeds and tasks."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        bus: Bus,
        clock: Clock,
        metrics: Metrics,
        presence: PresenceLog,
    ) -> None:
        self.settings = settings
        self.store = store
        self.bus = bus
        self.clock = clock
        self.metrics = metrics
        self.presence = presence
        self.feeds: dict[str, TeamFeed] = {}
        self.connections: dict[Connection, Subscriber | None] = {}
        #: each connection's socket transport, for the fan-out's direct writes
        self.transports: dict[Connection, asyncio.WriteTransport | None] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    # -- tasks and shutdown ----------------------------------------------------------

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run a coroutine owned by the dashboard (cancelled at shutdown)."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def shutdown(self) -> None:
        goaway = {"type": "goaway", "reason": "shutdown", "reconnect_after": 1}
        conns = list(self.connections)
        for conn in conns:
            await conn.send(goaway)
        await asyncio.gather(
            *(c.close(CloseCode.GOING_AWAY, CloseReason.SHUTDOWN) for c in conns),
            return_exceptions=True,
        )
        for feed in self.feeds.values():
            feed.close()
        self.feeds.clear()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def slow(self, sub: Subscriber) -> None:
        """Cut off a subscriber that fell too far behind (it resumes with since)."""
        self.metrics.slow_consumers.labels(ENDPOINT).inc()
        self.unsubscribe(sub.conn)
        sub.conn.close_soon(CloseCode.TRY_AGAIN_LATER, CloseReason.SLOW_CONSUMER)

    async def idle(self) -> None:
        """Wait until every team feed has handed out what it received (tests)."""
        for feed in list(self.feeds.values()):
            await feed.idle.wait()

    # -- snapshots ---------------------------------------------------------------------

    async def snapshot(self, feed: TeamFeed, hosts: frozenset[str]) -> list[dict[str, Any]]:
        """The meetings in scope, newest start first (still-planning ones first)."""
        now = self.clock.now()
        team = feed.team_id
        rooms = {r.id: r for r in await self.store.list_rooms(team)}
        types = {t.id: t for t in await self.store.list_meeting_types(team)}
        meetings = [
            m
            for m in await self.store.list_meetings(team, host_ids=hosts)
            if m.start is None or m.start >= now - SNAPSHOT_PAST
        ]
        # still-planning meetings first, then by start, most recent first
        meetings.sort(key=lambda m: (m.start is None, m.start or m.created_at, m.id), reverse=True)
        views = []
        for meeting in meetings:
            feed.remember(meeting)
            status, indicator = await self.presence.describe(meeting, now)
            views.append(
                meeting_view(
                    meeting, status=str(status), indicator=str(indicator), rooms=rooms, types=types
                )
            )
        return views

    async def view_of(self, meeting_id: str) -> dict[str, Any] | None:
        try:
            meeting = await self.store.get_meeting(meeting_id)
        except NotFound:
            return None
        rooms = {r.id: r for r in await self.store.list_rooms(meeting.team_id)}
        types = {t.id: t for t in await self.store.list_meeting_types(meeting.team_id)}
        status, indicator = await self.presence.describe(meeting, self.clock.now())
        return meeting_view(
            meeting, status=str(status), indicator=str(indicator), rooms=rooms, types=types
        )

    # -- the endpoint ------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(
            max_msg_size=self.settings.max_message,
            compress=False,
            heartbeat=self.settings.heartbeat,
            decode_text=False,
        )
        await ws.prepare(request)
        conn = Connection(
            ws,
            "d" + secrets.token_hex(6),
            self.metrics,
            endpoint=ENDPOINT,
            max_buffer=self.settings.send_queue * 4096,
            transport=request.transport,
            spawn=self.spawn,
        )
        self.connections[conn] = None
        self.transports[conn] = writable_transport(request.transport, conn.max_buffer)
        self.metrics.connections.labels(ENDPOINT).inc()
        try:
            staff = await self._authenticate(request, conn)
            if staff is not None:
                conn.bound.update(team=staff.account.team_id, staff=staff.account.id)
                await self._serve(conn, staff)
        finally:
            self.unsubscribe(conn)
            self.connections.pop(conn, None)
            self.transports.pop(conn, None)
            self.metrics.connections.labels(ENDPOINT).dec()
            if not ws.closed:
                await conn.close(CloseCode.NORMAL, conn.close_reason or "closed")
        return ws

    async def _authenticate(self, request: web.Request, conn: Connection) -> StaffPrincipal | None:
        """The cookie on the upgrade, or a hello with a JWT first; None after closing."""
        now = self.clock.now()
        cookie = request.cookies.get(COOKIE)
        try:
            if cookie:
                return await from_session_cookie(self.store, self.settings, cookie, now)
            try:
                msg = await conn.ws.receive(timeout=self.settings.hello_timeout)
            except TimeoutError:
                raise Unauthorized("no hello in time") from None
            if msg.type is WSMsgType.ERROR:
                raise TooLarge()
            if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                return None
            conn.binary = msg.type is WSMsgType.BINARY
            hello = p.parse(msg.data, binary=conn.binary)
            if not isinstance(hello, p.Hello) or hello.jwt is None:
                raise Unauthorized("dashboards need staff credentials")
            return await from_jwt(self.store, self.settings, hello.jwt, now)
        except VestibuleError as err:
            if isinstance(err, TokenInvalid | Unauthorized):
                log.info("credential refused", code=err.code, **conn.bound)
            await conn.send_error(err)
            await conn.close(CloseCode(err.close_code or CloseCode.POLICY), err.code)
            return None

    async def _serve(self, conn: Connection, staff: StaffPrincipal) -> None:
        bucket = TokenBucket(self.settings.rate, self.settings.burst)
        rejected = 0
        while not conn.closed:
            msg = await conn.ws.receive()
            if msg.type is WSMsgType.ERROR:
                await conn.send_error(TooLarge())
                await conn.close(CloseCode.TOO_LARGE, CloseReason.TOO_LARGE)
                return
            if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                return
            binary = msg.type is WSMsgType.BINARY
            wait = bucket.take()
            if wait:
                rejected += 1
                await conn.send_error(RateLimited(retry_after=round(wait, 3)))
                if rejected > FLOOD_CLOSE_AFTER:
                    await conn.close(CloseCode.POLICY, CloseReason.FLOOD)
                    return
                continue
            rejected = 0
            try:
                message = p.parse(msg.data, binary=binary)
                self.metrics.messages_in.labels(_kind(message)).inc()
                staff = await self._on_message(conn, staff, message)
            except VestibuleError as err:
                await conn.send_error(err, p.ref_of(msg.data, binary=binary))
                if err.close_code is not None:
                    await conn.close(CloseCode(err.close_code), err.code)
                    return

    async def _on_message(
        self, conn: Connection, staff: StaffPrincipal, message: p.ClientMessage
    ) -> StaffPrincipal:
        if isinstance(message, p.Subscribe):
            await self._subscribe(conn, staff, message)
        elif isinstance(message, p.Ping):
            body: dict[str, Any] = {"type": "pong", "server_time": self.clock.now().timestamp()}
            if message.ref is not None:
                body["ref"] = message.ref
            await conn.send(body)
        elif isinstance(message, p.Hello):
            # a JWT hello after a cookie upgrade: the JWT's account takes over
            if message.jwt is not None:
                staff = await from_jwt(self.store, self.settings, message.jwt, self.clock.now())
        elif not isinstance(message, p.Pong):
            raise BadMessage("not a dashboard message")
        return staff

    async def _subscribe(self, conn: Connection, staff: StaffPrincipal, msg: p.Subscribe) -> None:
        account = staff.account
        groups = await self.store.list_groups(account.team_id) if account.team_id else []
        hosts = visible_meetings_scope(account, groups, msg.scope)  # Forbidden for managers
        assert account.team_id is not None
        self.unsubscribe(conn)
        feed = self.feeds.get(account.team_id)
        if feed is None:
            feed = self.feeds[account.team_id] = TeamFeed(self, account.team_id)
        held = self.settings.send_queue * HELD_FACTOR
        sub = Subscriber(conn, self.transports.get(conn), feed, hosts, held)
        # registered before the store is read: live entries are held from now on
        feed.subscribers.add(sub)
        self.connections[conn] = sub
        log.info("dashboard subscribed", scope=msg.scope, since=msg.since, **conn.bound)
        await sub.start(msg.since, msg.ref)

    def unsubscribe(self, conn: Connection) -> None:
        sub = self.connections.get(conn)
        if sub is None:
            return
        self.connections[conn] = None
        sub.active = False
        feed = sub.feed
        feed.subscribers.discard(sub)
        if not feed.subscribers and self.feeds.get(feed.team_id) is feed:
            del self.feeds[feed.team_id]
            feed.close()


def _kind(message: p.ClientMessage) -> str:
    return {p.Subscribe: "subscribe", p.Ping: "ping", p.Pong: "pong", p.Hello: "hello"}.get(
        type(message), "other"
    )


DASHBOARD = web.AppKey("dashboard", Dashboard)


def setup(app: web.Application) -> None:
    """Route ``/ws/dashboard`` and close its connections at shutdown (from create_app)."""
    dashboard = Dashboard(
        app[SETTINGS], app[STORE], app[BUS], app[CLOCK], app[METRICS], app[PRESENCE]
    )
    app[DASHBOARD] = dashboard
    app.router.add_get("/ws/dashboard", dashboard.handle)

    async def on_shutdown(app: web.Application) -> None:
        await dashboard.shutdown()

    app.on_shutdown.append(on_shutdown)
