"""The live meetings dashboard (``/ws/dashboard``, docs/protocol.md).

Staff only: the session cookie on the upgrade (from the server's own origin), or
``{"type":"hello","jwt":J}`` first. Members see their team's meetings in the
scope they ask for; a manager viewing as a client team sees all of that team's.
A ``subscribe`` answers a ``snapshot`` and then streams the team's log entries
that fall in the viewer's scope, each with its ``seq``: ordered, with no gap and
no duplicate, a slow reader cut off (signalling/feed.py says how). The receive
loop, limits and heartbeat are the shared endpoint layer's
(signalling/endpoint.py).
"""

from __future__ import annotations

from collections.abc import Coroutine
from datetime import timedelta
from typing import Any

import structlog

from rooms.access import visible_meetings_scope
from rooms.accounts import StaffRole
from rooms.errors import BadMessage, NotFound, Unauthorized
from signalling import protocol as p
from signalling.bus import Bus
from signalling.clock import Clock
from signalling.connection import CloseCode, CloseReason, Connection
from signalling.endpoint import Upgrade
from signalling.feed import HELD_FACTOR, Subscriber, TeamFeed
from signalling.metrics import Metrics
from signalling.presence import PresenceLog
from signalling.sealing import show_guest_keys
from signalling.settings import Settings
from signalling.staff_auth import StaffPrincipal, from_jwt, from_session_cookie
from signalling.staff_sockets import StaffSockets
from signalling.store.base import Store
from signalling.tasks import TaskOwner
from signalling.views import meeting_view

log = structlog.get_logger("vestibule.dashboard")

ENDPOINT = "dashboard"
#: snapshot history: a dashboard shows today's and upcoming meetings; four
#: weeks back covers "what happened last week" without sending years of them.
SNAPSHOT_PAST = timedelta(days=28)


class Dashboard:
    """The ``/ws/dashboard`` channel: its subscribers and team feeds."""

    name = ENDPOINT
    app_ping = False

    def __init__(
        self,
        settings: Settings,
        store: Store,
        bus: Bus,
        clock: Clock,
        metrics: Metrics,
        presence: PresenceLog,
        tasks: TaskOwner,
        staff_sockets: StaffSockets | None = None,
    ) -> None:
        self.settings = settings
        #: where staff connections are registered, so disabling an account ends them
        self.staff_sockets = staff_sockets
        self.store = store
        self.bus = bus
        self.clock = clock
        self.metrics = metrics
        self.presence = presence
        self.tasks = tasks
        self.feeds: dict[str, TeamFeed] = {}
        self.subscribers: dict[Connection, Subscriber] = {}
        bus.on_reconnect(self._bus_back)

    def _bus_back(self) -> None:
        """The bus lost entries while it was away: every feed catches up on them."""
        for feed in list(self.feeds.values()):
            self.spawn(feed.resync())

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run a coroutine owned by the dashboard (cancelled at shutdown)."""
        self.tasks.spawn(coro)

    def close(self) -> None:
        """Stop every team feed (shutdown, after the connections closed)."""
        for feed in self.feeds.values():
            feed.close()
        self.feeds.clear()

    def slow(self, sub: Subscriber) -> None:
        """Cut off a subscriber that fell too far behind (it resumes with since)."""
        self.metrics.slow_consumers.labels(ENDPOINT).inc()
        self.unsubscribe(sub.conn)
        sub.conn.close_soon(CloseCode.TRY_AGAIN_LATER, CloseReason.SLOW_CONSUMER)

    async def idle(self) -> None:
        """Wait until every team feed has handed out what it received (tests)."""
        for feed in list(self.feeds.values()):
            await feed.idle.wait()

    # -- the channel -------------------------------------------------------------------

    async def open(self, conn: Connection, upgrade: Upgrade) -> DashboardConversation:
        """A dashboard connection: authenticated by the cookie now, or by a JWT hello."""
        staff = None
        if upgrade.cookie:
            staff = await from_session_cookie(
                self.store, self.settings, upgrade.cookie, self.clock.now()
            )
        return DashboardConversation(self, conn, staff)

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
        return await show_guest_keys(self.store, self.settings.data_key, views)

    async def view_of(self, meeting_id: str) -> dict[str, Any] | None:
        try:
            meeting = await self.store.get_meeting(meeting_id)
        except NotFound:
            return None
        rooms = {r.id: r for r in await self.store.list_rooms(meeting.team_id)}
        types = {t.id: t for t in await self.store.list_meeting_types(meeting.team_id)}
        status, indicator = await self.presence.describe(meeting, self.clock.now())
        view = meeting_view(
            meeting, status=str(status), indicator=str(indicator), rooms=rooms, types=types
        )
        return (await show_guest_keys(self.store, self.settings.data_key, [view]))[0]

    async def subscribe(self, conn: Connection, staff: StaffPrincipal, msg: p.Subscribe) -> None:
        hosts, team_id = await self._scope(staff, msg.scope)
        self.unsubscribe(conn)
        feed = self.feeds.get(team_id)
        if feed is None:
            feed = self.feeds[team_id] = TeamFeed(self, team_id)
        held = self.settings.send_queue * HELD_FACTOR
        sub = Subscriber(conn, feed, hosts, held)
        # registered before the store is read: live entries are held from now on
        feed.subscribers.add(sub)
        self.subscribers[conn] = sub
        log.info("dashboard subscribed", scope=msg.scope, since=msg.since, **conn.bound)
        await sub.start(msg.since, msg.ref)

    async def _scope(self, staff: StaffPrincipal, scope: str) -> tuple[frozenset[str], str]:
        """The hosts whose meetings ``staff`` sees in ``scope``, and the team.

        A manager viewing as a client team sees every meeting of that team, in
        either scope; Forbidden for a manager viewing as no one (rooms.access)."""
        account = staff.account
        if account.role is not StaffRole.MEMBER and staff.acting_as is not None:
            members = await self.store.list_staff(staff.acting_as)
            return frozenset(m.id for m in members), staff.acting_as
        groups = await self.store.list_groups(account.team_id) if account.team_id else []
        hosts = visible_meetings_scope(account, groups, scope)  # Forbidden for managers
        assert account.team_id is not None
        return hosts, account.team_id

    def unsubscribe(self, conn: Connection) -> None:
        sub = self.subscribers.pop(conn, None)
        if sub is None:
            return
        sub.active = False
        feed = sub.feed
        feed.subscribers.discard(sub)
        if not feed.subscribers and self.feeds.get(feed.team_id) is feed:
            del self.feeds[feed.team_id]
            feed.close()


class DashboardConversation:
    """One ``/ws/dashboard`` connection."""

    __slots__ = ("board", "conn", "staff")

    def __init__(self, board: Dashboard, conn: Connection, staff: StaffPrincipal | None) -> None:
        self.board = board
        self.conn = conn
        self.staff = staff
        if staff is not None:
            self._bind(staff)

    @property
    def ready(self) -> bool:
        return self.staff is not None

    def _bind(self, staff: StaffPrincipal) -> None:
        self.conn.bound.update(team=staff.team_id, staff=staff.account.id)
        sockets = self.board.staff_sockets
        if sockets is not None:
            if self.staff is not None and self.staff is not staff:
                sockets.discard(self.staff.account.id, self.conn)
            sockets.add(staff.account.id, self.conn)

    async def on_message(self, message: p.ClientMessage) -> None:
        board = self.board
        match message:
            case p.Hello(jwt=str(token)):
                # first, or after a cookie upgrade: the JWT's account takes over
                staff = await from_jwt(board.store, board.settings, token, board.clock.now())
                self._bind(staff)
                self.staff = staff
            case _ if self.staff is None:
                raise Unauthorized("dashboards need staff credentials")
            case p.Subscribe():
                await board.subscribe(self.conn, self.staff, message)
            case p.Ping():
                body: dict[str, Any] = {
                    "type": "pong",
                    "server_time": board.clock.now().timestamp(),
                }
                if message.ref is not None:
                    body["ref"] = message.ref
                await self.conn.send(body)
            case p.Pong() | p.Hello():
                return
            case _:
                raise BadMessage("not a dashboard message")

    def on_close(self) -> None:
        self.board.unsubscribe(self.conn)
        sockets = self.board.staff_sockets
        if self.staff is not None and sockets is not None:
            sockets.discard(self.staff.account.id, self.conn)
