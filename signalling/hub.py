"""The websocket hub for people in rooms (``/ws``).

The hub owns this node's connections, sessions and live rooms: the hello
handshake, the read loop, heartbeats, resume and shutdown. Each parsed message
goes to its handler (signalling/handlers.py); the rules live in rooms/ (lobby,
access), the credential checks in admission, the relay in room_runtime. Errors
map to the wire in one place (``_fail``).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Coroutine
from datetime import datetime
from typing import Any, Protocol

import structlog
from aiohttp import WSCloseCode, WSMsgType, web

from rooms import lobby
from rooms.errors import (
    RateLimited,
    TokenInvalid,
    TooLarge,
    Unauthorized,
    VestibuleError,
)
from rooms.presence import PresenceEvent, PresenceKind
from rooms.tokens import digest_secret
from signalling import protocol as p
from signalling.admission import Admission
from signalling.clock import Clock
from signalling.connection import CloseCode, CloseReason, Connection, TokenBucket
from signalling.handlers import HANDLERS, TYPE_NAMES
from signalling.ice import ice_servers
from signalling.metrics import Metrics
from signalling.room_runtime import Recorder, RoomRuntime
from signalling.session import Session, SessionRegistry
from signalling.settings import Settings
from signalling.staff_auth import COOKIE, StaffPrincipal, from_session_cookie
from signalling.store.base import Store

log = structlog.get_logger("vestibule.hub")

#: consecutive rate-limited messages after which a connection counts as abusive
FLOOD_CLOSE_AFTER = 100


class Placement(Protocol):
    """Where rooms live when several nodes share Redis (signalling.cluster)."""

    async def claim(self, room_id: str) -> str | None:
        """None if this node owns (or now took) the room; else the owner's URL."""

    def release_if_empty(self, room_id: str) -> None: ...


class MediaChecks(Protocol):
    """What the hub needs of the media-check integration (signalling.checks)."""

    async def offer(self, session: Session, msg: p.MediaCheckOffer) -> None: ...
    def cancel(self, session: Session) -> None: ...


class RoomElsewhere(Exception):
    """The room is owned by another node; the client reconnects to ``url``."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.url = url


class Hub:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        clock: Clock,
        metrics: Metrics,
        recorder: Recorder,
        admission: Admission,
    ) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock
        self.metrics = metrics
        self.recorder = recorder
        self.admission = admission
        admission.invited = self.is_invited
        self.checks: MediaChecks | None = None
        self.placement: Placement | None = None
        self.sessions = SessionRegistry(settings.resume_window, self._expired)
        self.rooms: dict[str, RoomRuntime] = {}
        self.connections: set[Connection] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.closing = False

    # -- task ownership ------------------------------------------------------------

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run a coroutine owned by the hub (cancelled and awaited at shutdown)."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def shutdown(self) -> None:
        """goaway to every client, then close them all; cancel owned tasks."""
        self.closing = True
        goaway = {"type": "goaway", "reason": "shutdown", "reconnect_after": 1}
        conns = list(self.connections)
        for conn in conns:
            await conn.send(goaway)
        await asyncio.gather(
            *(c.close(CloseCode.GOING_AWAY, CloseReason.SHUTDOWN) for c in conns),
            return_exceptions=True,
        )
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def ping_forever(self) -> None:
        """One task keeps every connection alive and finds the dead ones.

        Each heartbeat: a connection that sent nothing (no frame, no pong) since
        the last round is closed; the others get a websocket ping and an
        application ping carrying server time. One task for all connections
        instead of aiohttp's timer per connection, which is also reset on every
        received message (a cost on the relay path).
        """
        while True:
            await asyncio.sleep(self.settings.heartbeat)
            await self.heartbeat_round()

    async def heartbeat_round(self) -> None:
        body = {"type": "ping", "server_time": time.time()}
        for conn in list(self.connections):
            if conn.closed:
                continue
            if not conn.alive:
                log.info("no sign of life for a heartbeat; closing", **conn.bound)
                conn.close_soon(CloseCode.GOING_AWAY, CloseReason.TIMEOUT)
                continue
            conn.alive = False
            try:
                await conn.ws.ping()
            except (ConnectionError, RuntimeError):
                continue
            await conn.send(body)

    # -- the endpoint --------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(
            # aiohttp closes 1009 on its own past max_msg_size, with no error the
            # client could read; it reads up to twice our limit so the hub answers
            # too_large itself first (a frame past even that is just closed).
            max_msg_size=2 * self.settings.max_message,
            compress=False,
            autoping=False,  # pings and pongs are the hub's (heartbeat_round)
            decode_text=False,
        )
        await ws.prepare(request)
        conn = Connection(
            ws,
            "c" + secrets.token_hex(6),
            self.metrics,
            endpoint="ws",
            max_buffer=self.settings.send_queue * 4096,
            transport=request.transport,
            spawn=self.spawn,
        )
        self.connections.add(conn)
        self.metrics.connections.labels("ws").inc()
        session: Session | None = None
        try:
            if self.closing:
                await conn.send({"type": "goaway", "reason": "shutdown", "reconnect_after": 1})
                await conn.close(CloseCode.GOING_AWAY, CloseReason.SHUTDOWN)
                return ws
            session = await self._hello(request, conn)
            if session is not None:
                await self._serve(conn, session)
        finally:
            self.connections.discard(conn)
            self.metrics.connections.labels("ws").dec()
            if session is not None and session.conn is conn and not session.ended:
                self.sessions.detach(session)
            if not ws.closed:
                await conn.close(CloseCode.NORMAL, conn.close_reason or "closed")
        return ws

    async def _hello(self, request: web.Request, conn: Connection) -> Session | None:
        try:
            msg = await conn.ws.receive(timeout=self.settings.hello_timeout)
        except TimeoutError:
            await self._fail(conn, Unauthorized("no hello in time"), None)
            await conn.close(CloseCode.POLICY, CloseReason.UNAUTHORIZED)
            return None
        if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
            if msg.type is WSMsgType.ERROR:
                await self._fail(conn, TooLarge(), None)
                await conn.close(CloseCode.TOO_LARGE, CloseReason.TOO_LARGE)
            return None
        started = time.perf_counter()
        conn.binary = msg.type is WSMsgType.BINARY
        if len(msg.data) > self.settings.max_message:
            await self._fail(conn, TooLarge(), None)
            await conn.close(CloseCode.TOO_LARGE, CloseReason.TOO_LARGE)
            return None
        try:
            hello = p.parse(msg.data, binary=conn.binary)
            if not isinstance(hello, p.Hello):
                raise Unauthorized("send hello first")
            session = await self._admit(request, conn, hello)
        except RoomElsewhere as moved:
            await conn.send(
                {
                    "type": "goaway",
                    "reason": "room_elsewhere",
                    "url": moved.url,
                    "reconnect_after": 0,
                }
            )
            await conn.close(CloseCode.TRY_AGAIN_LATER, "room_elsewhere")
            return None
        except VestibuleError as err:
            # Nothing is usable before a successful hello: every failure closes.
            await self._fail(conn, err, p.ref_of(msg.data, binary=conn.binary))
            await conn.close(CloseCode(err.close_code or CloseCode.POLICY), err.code)
            return None
        self.metrics.join_latency.observe(time.perf_counter() - started)
        return session

    async def _admit(self, request: web.Request, conn: Connection, hello: p.Hello) -> Session:
        now = self.clock.now()
        if hello.resume is not None:
            return await self._resume(conn, hello)
        cookie_staff: StaffPrincipal | None = None
        cookie = request.cookies.get(COOKIE)
        no_credential = all(x is None for x in (hello.token, hello.guest_key, hello.jwt))
        if cookie and no_credential:
            cookie_staff = await from_session_cookie(self.store, self.settings, cookie, now)
        address = request.remote or "?"
        admitted = await self.admission.admit(
            hello, cookie_staff=cookie_staff, address=address, now=now
        )
        who = admitted.who
        if self.placement is not None:
            owner = await self.placement.claim(who.room.id)
            if owner is not None:
                # The room lives on another node: all of a room's people meet on one
                # node, so relay never crosses Redis (docs/decisions.md).
                raise RoomElsewhere(owner)
        resume = secrets.token_urlsafe(24)
        existing = self.sessions.get(who.participant)
        if existing is not None:
            # The same person again (a reload, a second tab, the redeeming device
            # rejoining): the new connection takes over the place.
            old = existing.conn
            self.sessions.remove(existing)
            existing.ended = False
            existing.resume_digest = digest_secret(resume)
            self.sessions.add(existing)
            self.sessions.attach(existing, conn)
            if old is not None:
                await old.send({"type": "goaway", "reason": "replaced", "reconnect_after": None})
                old.close_soon(CloseCode.POLICY, CloseReason.REPLACED)
            session = existing
        else:
            session = Session(
                "s" + secrets.token_hex(8), who, digest_secret(resume), self.settings.send_queue
            )
            self.sessions.add(session)
            self.sessions.attach(session, conn)
            self.metrics.sessions.set(len(self.sessions))
            self.record(session, PresenceKind.ENTERED)
        conn.bound.update(
            team=who.team_id, room=who.room.id, meeting=who.meeting_id, participant=who.participant
        )
        log.info("session entered", role=str(who.role), **conn.bound)
        welcome = self._welcome(session, resume, hello.ref)
        if admitted.rejoin is not None:
            welcome["rejoin"] = admitted.rejoin
        if who.instructions:
            welcome["instructions"] = who.instructions
        await conn.send(welcome)
        if session.joined:
            await self._replay_place(session)
        return session

    def _welcome(self, session: Session, resume: str, ref: p.Ref) -> dict[str, Any]:
        who = session.who
        now = time.time()
        body: dict[str, Any] = {
            "type": "welcome",
            "session": session.id,
            "participant": who.participant,
            "role": str(who.role),
            "room": who.room.slug,
            "meeting": who.meeting_id,
            "ice_servers": ice_servers(self.settings, who.participant, now),
            "resume": resume,
            "heartbeat": self.settings.heartbeat,
            "server_time": now,
            "name": who.name,
        }
        if ref is not None:
            body["ref"] = ref
        return body

    async def _resume(self, conn: Connection, hello: p.Hello) -> Session:
        assert hello.resume is not None
        session = self.sessions.by_resume(hello.resume)
        if session is None or session.ended:
            raise TokenInvalid()
        old = session.conn
        self.sessions.attach(session, conn)
        if old is not None and old is not conn:
            old.close_soon(CloseCode.POLICY, CloseReason.REPLACED)
        who = session.who
        conn.bound.update(
            team=who.team_id, room=who.room.id, meeting=who.meeting_id, participant=who.participant
        )
        log.info("session resumed", queued=len(session.outbox), **conn.bound)
        body = self._welcome(session, hello.resume, hello.ref)
        body["resumed"] = True
        await conn.send(body)
        while session.outbox:
            await conn.send(session.outbox.popleft())
        return session

    async def _replay_place(self, session: Session) -> None:
        """After a takeover, tell the newcomer connection where they stand."""
        runtime = self.rooms.get(session.who.room.id)
        if runtime is None:
            return
        state = runtime.state
        if session.pid in state.waiting:
            seat = state.seats.get(session.pid)
            position = state.position(session.pid) if state.room.show_position else None
            await session.send(
                {
                    "type": "waiting",
                    "position": position,
                    "message": state.host_message,
                    "on_hold": bool(seat and seat.on_hold),
                }
            )
        elif session.pid in state.call:
            await session.send(
                {
                    "type": "joined",
                    "participants": [
                        {
                            "id": pid,
                            "name": state.people[pid].name,
                            "role": str(state.people[pid].role),
                        }
                        for pid in state.call
                        if pid != session.pid
                    ],
                }
            )

    async def _serve(self, conn: Connection, session: Session) -> None:
        bucket = TokenBucket(self.settings.rate, self.settings.burst)
        rejected = 0
        ws = conn.ws
        handlers = HANDLERS
        counts_in = self.metrics.messages_in.counts
        while not conn.closed:
            msg = await ws.receive()
            kind = msg.type
            if kind is WSMsgType.TEXT or kind is WSMsgType.BINARY:
                binary = kind is WSMsgType.BINARY
                if len(msg.data) > self.settings.max_message:
                    await self._fail(conn, TooLarge(), None)
                    await conn.close(CloseCode.TOO_LARGE, CloseReason.TOO_LARGE)
                    return
                wait = bucket.take()
                if wait:
                    rejected += 1
                    if rejected > FLOOD_CLOSE_AFTER:
                        await self._fail(conn, RateLimited("sustained flooding"), None)
                        await conn.close(CloseCode.POLICY, CloseReason.FLOOD)
                        return
                    await self._fail(
                        conn,
                        RateLimited(retry_after=round(wait, 3)),
                        p.ref_of(msg.data, binary=binary),
                    )
                    continue
                rejected = 0
                try:
                    message = p.parse(msg.data, binary=binary)
                    counts_in[TYPE_NAMES[type(message)]] += 1
                    await handlers[type(message)](self, session, message)
                except VestibuleError as err:
                    await self._fail(conn, err, p.ref_of(msg.data, binary=binary))
                    if err.close_code is not None:
                        await conn.close(CloseCode(err.close_code), err.code)
                        return
            elif kind is WSMsgType.PING:
                conn.alive = True
                await ws.pong(msg.data)
            elif kind is WSMsgType.PONG:
                conn.alive = True
            elif kind is WSMsgType.ERROR:
                exc = ws.exception()
                if getattr(exc, "code", None) == WSCloseCode.MESSAGE_TOO_BIG:
                    await self._fail(conn, TooLarge(), None)
                    await conn.close(CloseCode.TOO_LARGE, CloseReason.TOO_LARGE)
                return
            else:  # CLOSE / CLOSING / CLOSED
                return

    async def _fail(self, conn: Connection, err: VestibuleError, ref: p.Ref) -> None:
        """The one place errors go to the wire."""
        if isinstance(err, TokenInvalid | Unauthorized):
            log.info("credential refused", code=err.code, **conn.bound)
        await conn.send_error(err, ref)

    # -- lifecycle helpers -----------------------------------------------------------

    def record(self, session: Session, kind: PresenceKind, **detail: Any) -> None:
        """Record a presence event about this session in its team's log."""
        who = session.who
        self.recorder.record(
            PresenceEvent(
                kind=kind,
                team_id=who.team_id,
                room_id=who.room.id,
                participant_id=who.participant,
                role=who.role,
                at=self.clock.now(),
                meeting_id=who.meeting_id,
                detail=detail,
            )
        )

    def is_invited(self, room_id: str, staff_id: str, now: datetime) -> bool:
        runtime = self.rooms.get(room_id)
        return runtime is not None and runtime.is_invited(staff_id, now)

    def runtime_for(self, session: Session) -> RoomRuntime:
        room = session.who.room
        runtime = self.rooms.get(room.id)
        if runtime is None:
            runtime = RoomRuntime(
                room, self.recorder, self._after_notice, self.metrics.relay_latency
            )
            self.rooms[room.id] = runtime
            self.metrics.rooms.set(len(self.rooms))
        return runtime

    def _after_notice(self, session: Session, payload: lobby.Payload) -> None:
        if isinstance(payload, lobby.Denied):
            self._end(session, CloseReason.DENIED)

    def _end(self, session: Session, reason: str) -> None:
        """The participant is gone for good: forget them, close their socket."""
        self.sessions.remove(session)
        self.metrics.sessions.set(len(self.sessions))
        if self.checks is not None:
            self.checks.cancel(session)
        runtime = self.rooms.get(session.who.room.id)
        if runtime is not None:
            runtime.sessions.pop(session.pid, None)
            if runtime.empty:
                del self.rooms[runtime.room.id]
                self.metrics.rooms.set(len(self.rooms))
                if self.placement is not None:
                    self.placement.release_if_empty(runtime.room.id)
        if session.conn is not None:
            session.conn.close_soon(CloseCode.NORMAL, reason)

    async def leave(self, session: Session) -> None:
        runtime = self.rooms.get(session.who.room.id)
        if session.joined and runtime is not None and session.pid in runtime.state.people:
            await runtime.apply(lobby.Leave(session.pid), self.clock.now())
        else:
            self.record(session, PresenceKind.LEFT)
        self._end(session, CloseReason.LEFT)

    def _expired(self, session: Session) -> None:
        log.info(
            "detached session ended (resume window passed or its queue was full)",
            participant=session.pid,
            room=session.who.room.id,
        )
        self.spawn(self.leave(session))
