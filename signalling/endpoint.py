"""One websocket endpoint layer, used by ``/ws`` and ``/ws/dashboard``.

Everything two websocket endpoints have in common lives here, once: the
``Origin`` rule for the session cookie, the upgrade, the receive loop, the
frame-size limit (answered ``too_large`` whatever the size), the per-connection
rate limit and flood policy, the hello deadline, typed parse errors, the one
place errors go to the wire, the heartbeat, and shutdown. What a connection
*does* is its endpoint's :class:`Channel`: ``open`` starts a
:class:`Conversation` for a new connection, and the loop hands it each parsed
message.

**Before and after hello.** A conversation is not ``ready`` until its
handshake is done (``/ws``: a ``hello`` answered by ``welcome``; a dashboard:
staff credentials). Until then every error closes the connection (nothing is
usable before a handshake) and the handshake must finish within
``hello_timeout`` of the upgrade; afterwards an error is answered and the
connection stays usable unless the error carries a close code.

**Frames too large.** aiohttp rejects a frame past ``max_msg_size`` from its
header, before buffering it, and then closes the socket itself with 1009.
:class:`Socket` writes the ``too_large`` error in front of that close frame, so
the client always learns why, however large the frame was.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

import structlog
from aiohttp import WSCloseCode, WSMessage, WSMsgType, web

from rooms.errors import (
    RateLimited,
    TokenInvalid,
    TooLarge,
    Unauthorized,
    Unavailable,
    VestibuleError,
)
from signalling import protocol as p
from signalling.connection import CloseCode, CloseReason, Connection, TokenBucket
from signalling.metrics import Metrics
from signalling.outage import error_for
from signalling.settings import Settings
from signalling.staff_auth import COOKIE
from signalling.tasks import TaskOwner

log = structlog.get_logger("vestibule.endpoint")

#: consecutive rate-limited messages after which a connection counts as abusive:
#: a client that keeps sending at a multiple of the rate after being told to wait
#: (100 refusals is at least a second of it at the default rate) is not a page
#: that had a burst
FLOOD_CLOSE_AFTER = 100

GOAWAY_SHUTDOWN = {"type": "goaway", "reason": "shutdown", "reconnect_after": 1}

#: whether an ``Origin`` header (None: absent) is the server's own, given the
#: request's ``Host`` (signalling.origin.OriginPolicy.allows)
OriginCheck = Callable[[str | None, str | None], bool]


@dataclass(frozen=True, slots=True)
class Upgrade:
    """What a channel may know of the upgrade request."""

    #: the staff session cookie, only when the upgrade came from the server's own
    #: origin (a page elsewhere must not ride on a clinician's login)
    cookie: str | None
    #: the client's address (guest-key throttling)
    address: str


def _address(request: web.Request) -> str:
    """The client's address, as ``request.remote`` has it, without caching it in
    the request (the request lives as long as the websocket; its cache would be
    ~0.2 KB of every connection for a value the ``hello`` reads once)."""
    transport = request.transport
    peer = transport.get_extra_info("peername") if transport is not None else None
    if peer is None:
        return "?"
    return str(peer[0]) if isinstance(peer, list | tuple) else str(peer)


class Conversation(Protocol):
    """One connection's exchange, as its endpoint's channel runs it."""

    @property
    def ready(self) -> bool:
        """The handshake is done (see the module docstring)."""

    async def on_message(self, message: p.ClientMessage) -> None:
        """Handle one parsed message; raise a VestibuleError to answer an error."""

    def on_close(self) -> None:
        """The connection is gone (called once, whatever ended it)."""


class Channel(Protocol):
    """What an endpoint does with its connections."""

    #: the endpoint's name: the metrics' ``endpoint`` label and the connection ids' prefix
    name: str
    #: heartbeats also send the application ``ping`` message (docs/protocol.md)
    app_ping: bool

    async def open(self, conn: Connection, upgrade: Upgrade) -> Conversation:
        """A conversation for a new connection (may raise VestibuleError: it closes)."""


class Socket(web.WebSocketResponse):
    """aiohttp's websocket, telling the client ``too_large`` before aiohttp's own
    1009 close (see the module docstring)."""

    def __init__(self, *, max_msg_size: int) -> None:
        super().__init__(
            max_msg_size=max_msg_size,
            compress=False,
            autoping=False,  # pings and pongs are the endpoint's (Heartbeat)
            decode_text=False,
        )
        #: the connection on this socket, told ``too_large`` (set once it exists; a
        #: reference rather than a closure: a closure and its cell are 0.2 KB of
        #: every idle connection)
        self.conn: Connection | None = None

    async def close(
        self, *, code: int = WSCloseCode.OK, message: bytes = b"", drain: bool = True
    ) -> bool:
        if code == WSCloseCode.MESSAGE_TOO_BIG and not self.closed:
            conn = self.conn
            if conn is not None:
                err = TooLarge()
                conn.metrics.errors.labels(err.code).inc()
                conn.send_now(p.ErrorMessage.of(err).wire())
            message = message or CloseReason.TOO_LARGE.encode()
        return await super().close(code=code, message=message, drain=drain)


class Heartbeat:
    """One task keeps every connection of every endpoint alive and finds the dead.

    Each round: a connection that sent nothing (no frame, no pong) since the last
    round is closed; the others get a websocket ping (and, on ``/ws``, the
    application ``ping`` carrying server time). One task for all connections,
    rather than aiohttp's timer per connection, which is also reset on every
    received frame (a cost on the relay path).
    """

    def __init__(self, interval: float) -> None:
        self.interval = interval
        #: each endpoint's own set of open connections (one set per connection, not
        #: two: a set's entry and its share of the table are ~70 bytes each)
        self._sets: list[set[Connection]] = []

    def watch(self, connections: set[Connection]) -> None:
        """Keep the connections of this (live) set alive, from the next round on."""
        self._sets.append(connections)

    async def run(self) -> None:
        """Rounds forever (owned by the app's background context)."""
        while True:
            await asyncio.sleep(self.interval)
            await self.round()

    async def round(self) -> None:
        body = {"type": "ping", "server_time": time.time()}
        for conn in [c for connections in self._sets for c in connections]:
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
            if conn.app_ping:
                await conn.send(body)


class Endpoint:
    """A websocket endpoint: its connections and the loop that serves each."""

    def __init__(
        self,
        channel: Channel,
        settings: Settings,
        metrics: Metrics,
        heartbeat: Heartbeat,
        tasks: TaskOwner,
        origin_allowed: OriginCheck,
    ) -> None:
        self.channel = channel
        self.settings = settings
        self.metrics = metrics
        self.heartbeat = heartbeat
        self.tasks = tasks
        self.origin_allowed = origin_allowed
        self.connections: set[Connection] = set()
        heartbeat.watch(self.connections)
        self.closing = False
        #: the open-connections gauge of this endpoint (labels() costs a lookup per call)
        self._open = metrics.connections.labels(channel.name)
        # made once, not per connection: a bound method is 64 bytes, an int past 256
        # is 32, and every connection would keep its own
        self._spawn = tasks.spawn
        self._max_buffer = settings.send_queue * 4096

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """The aiohttp handler of the endpoint's route: the upgrade, then the
        receive loop until the connection ends.

        The loop is here rather than in a coroutine of its own: this frame lives as
        long as the connection anyway, and a second one would be ~0.4 KB of every
        idle connection. While it waits for a frame it holds nothing of the last one
        (the frame, its parsed message, an error). The rate limit's bucket is made
        at the first message it limits (it starts full either way)."""
        ws = Socket(max_msg_size=self.settings.max_message + 1)
        await ws.prepare(request)
        conn = ws.conn = self._connection(ws, request)
        self.connections.add(conn)
        self._open.inc()
        conversation: Conversation | None = None
        try:
            conversation = await self._open_conversation(conn, request)
            if conversation is None:
                return ws
            settings = self.settings
            limit = settings.max_message
            bucket: TokenBucket | None = None
            rejected = 0
            first = True
            counts_in = self.metrics.messages_in.counts
            loop = asyncio.get_running_loop()
            hello_by = loop.time() + settings.hello_timeout
            msg: WSMessage | None = None
            message: p.ClientMessage | None = None
            err: VestibuleError | None = None
            while not conn.closed:
                ready = conversation.ready
                msg = message = err = None
                try:
                    msg = await ws.receive(None if ready else max(0.0, hello_by - loop.time()))
                except TimeoutError:
                    await self.fail(conn, Unauthorized("no hello in time"), None)
                    await conn.close(CloseCode.POLICY, CloseReason.UNAUTHORIZED)
                    return ws
                kind = msg.type
                if kind is WSMsgType.TEXT or kind is WSMsgType.BINARY:
                    conn.alive = True
                    binary = kind is WSMsgType.BINARY
                    if first:
                        conn.binary = binary  # the first frame's encoding is the connection's
                        first = False
                    if len(msg.data) > limit:  # pragma: no cover - aiohttp rejects it first
                        await self.fail(conn, TooLarge(), None)
                        await conn.close(CloseCode.TOO_LARGE, CloseReason.TOO_LARGE)
                        return ws
                    # Before the handshake a second message cannot come: any error closes.
                    if ready:
                        if bucket is None:
                            bucket = TokenBucket(settings.rate, settings.burst)
                        wait = bucket.take()
                        if wait:
                            rejected += 1
                            if rejected > FLOOD_CLOSE_AFTER:
                                await self.fail(conn, RateLimited("sustained flooding"), None)
                                await conn.close(CloseCode.POLICY, CloseReason.FLOOD)
                                return ws
                            ref = p.ref_of(msg.data, binary=binary)
                            await self.fail(conn, RateLimited(retry_after=round(wait, 3)), ref)
                            continue
                    rejected = 0
                    try:
                        message = p.parse(msg.data, binary=binary)
                        counts_in[p.type_name(message)] += 1
                        await conversation.on_message(message)
                    except Exception as exc:
                        err = self._error_of(exc, conn)
                        await self.fail(conn, err, p.ref_of(msg.data, binary=binary))
                        if err.close_code is not None or not conversation.ready:
                            code = CloseCode(err.close_code or err.refusal_code)
                            await conn.close(code, err.code)
                            return ws
                elif kind is WSMsgType.PING:
                    conn.alive = True
                    await ws.pong(msg.data)
                elif kind is WSMsgType.PONG:
                    conn.alive = True
                else:  # CLOSE / CLOSING / CLOSED, or ERROR (a frame too large: Socket told it)
                    return ws
        finally:
            self.connections.discard(conn)
            self._open.dec()
            if conversation is not None:
                conversation.on_close()
            if not ws.closed:
                await conn.close(CloseCode.NORMAL, conn.close_reason or "closed")
        return ws

    def _connection(self, ws: Socket, request: web.Request) -> Connection:
        name = self.channel.name
        return Connection(
            ws,
            name[0] + secrets.token_hex(6),
            self.metrics,
            endpoint=name,
            max_buffer=self._max_buffer,
            transport=request.transport,
            spawn=self._spawn,
            app_ping=self.channel.app_ping,
        )

    async def _open_conversation(
        self, conn: Connection, request: web.Request
    ) -> Conversation | None:
        """The channel's conversation for a new connection; None when the
        connection was closed instead (shutting down, or refused by the channel)."""
        if self.closing:
            await conn.send(GOAWAY_SHUTDOWN)
            await conn.close(CloseCode.GOING_AWAY, CloseReason.SHUTDOWN)
            return None
        try:
            return await self.channel.open(conn, Upgrade(self._cookie(request), _address(request)))
        except Exception as exc:
            err = self._error_of(exc, conn)
            await self.fail(conn, err, None)
            await conn.close(CloseCode(err.close_code or err.refusal_code), err.code)
            return None

    def _cookie(self, request: web.Request) -> str | None:
        if "Cookie" not in request.headers:
            return None  # parsing none would still keep an empty mapping per connection
        cookie = request.cookies.get(COOKIE)
        if cookie and not self.origin_allowed(request.headers.get("Origin"), request.host):
            log.info(
                "session cookie ignored: upgrade from another origin", endpoint=self.channel.name
            )
            return None
        return cookie

    @staticmethod
    def _error_of(exc: Exception, conn: Connection) -> VestibuleError:
        """The error to answer: ours as it is; an outage or a fault of ours, logged
        (not the client's doing: they are answered, and everyone else is served)."""
        if isinstance(exc, VestibuleError):
            return exc
        err = error_for(exc)
        if isinstance(err, Unavailable):
            log.warning("store unavailable", error=type(exc).__name__, **conn.bound)
        else:
            log.error("message not handled", exc_info=exc, **conn.bound)
        return err

    def _count_error(self, err: VestibuleError) -> None:
        self.metrics.errors.labels(err.code).inc()

    async def fail(self, conn: Connection, err: VestibuleError, ref: p.Ref) -> None:
        """The one place errors go to the wire."""
        if isinstance(err, TokenInvalid | Unauthorized):
            log.info("credential refused", code=err.code, **conn.bound)
        self._count_error(err)
        await conn.send(p.ErrorMessage.of(err, ref).wire())

    async def shutdown(self, urls: Mapping[Connection, str] | None = None) -> None:
        """``goaway`` to every client, then close them all; a client in ``urls``
        is told the node that now has its room (a drain)."""
        self.closing = True
        conns = list(self.connections)
        for conn in conns:
            url = urls.get(conn) if urls else None
            if url is None:
                await conn.send(GOAWAY_SHUTDOWN)
            else:
                await conn.send({**GOAWAY_SHUTDOWN, "url": url, "reconnect_after": 0})
        await asyncio.gather(
            *(c.close(CloseCode.GOING_AWAY, CloseReason.SHUTDOWN) for c in conns),
            return_exceptions=True,
        )
