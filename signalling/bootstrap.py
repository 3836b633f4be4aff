"""``create_app(settings)``: the one place that builds and wires the server.

Every component is built here, once, with its collaborators passed to its
constructor, in an order that follows the arrows of docs/architecture.md
("The wiring"): store, bus and clock; the presence log; the rooms and their
media checks and placement; admission and the handshake; the two websocket
endpoints on the shared endpoint layer; the dashboards, the status scheduler,
webhooks; the REST API and the pages. Observers subscribe through a method
(``presence.on_status``), never by reaching into another object.

Application state lives in typed ``web.AppKey``s (signalling/keys.py);
background tasks are started and cancelled in cleanup contexts; ``on_shutdown``
sends ``goaway`` to every websocket and closes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import replace
from typing import Any

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis.exceptions import RedisError

from mediacheck.service import MediaCheckService
from rooms.errors import Unavailable, VestibuleError
from signalling import api, api_docs, pages
from signalling.admission import Admission
from signalling.bus import Bus, InProcessBus
from signalling.checks import MediaChecks, service_settings
from signalling.clock import Clock, SystemClock
from signalling.cluster import RoomLeases
from signalling.dashboard import Dashboard
from signalling.drain import drain
from signalling.endpoint import Endpoint, Heartbeat
from signalling.handshake import Handshake
from signalling.hub import Hub
from signalling.keys import (
    BUS,
    CLOCK,
    DASHBOARD,
    HEARTBEAT,
    HUB,
    LOGIN_LIMITER,
    METRICS,
    OUTBOX,
    PATIENT_LINK_LIMITER,
    PRESENCE,
    READINESS,
    ROOM_CHANGES,
    ROOMS,
    SCHEDULER,
    SEALER,
    SETTINGS,
    STAFF_SOCKETS,
    STORE,
    WEBHOOKS,
    Readiness,
)
from signalling.mail import SmtpTransport, parse_smtp_url
from signalling.metrics import Metrics
from signalling.origin import OriginPolicy, rest_guard
from signalling.outage import error_for
from signalling.outbox import Outbox
from signalling.presence import PresenceLog
from signalling.room_changes import RoomChanges
from signalling.room_commands import RoomCommands
from signalling.room_state import RoomStates
from signalling.scheduler import StatusScheduler
from signalling.sealing import new_data_key, sealer_for
from signalling.session import Session
from signalling.settings import Settings
from signalling.staff_sockets import StaffSockets
from signalling.store.base import Store
from signalling.tasks import TaskOwner
from signalling.throttle import WindowLimiter
from signalling.webhooks import WebhookSender

log = structlog.get_logger("vestibule.app")

#: login attempts per client address per minute: a person mistyping a password
#: needs a handful; 10 stops online guessing at 14,400 a day
LOGIN_ATTEMPTS_PER_MINUTE = 10

Context = Callable[[web.Application], AsyncIterator[None]]


def make_store(settings: Settings) -> Store:
    """Redis when nodes share it, else the SQLite file."""
    if settings.redis_url:
        from signalling.store.redis import RedisStore

        return RedisStore(settings.redis_url)
    from signalling.store.sqlite import SQLiteStore

    return SQLiteStore(settings.db_path)


def make_bus(settings: Settings) -> Bus:
    """Redis pub/sub when nodes share Redis (signalling.redis_bus), else in-process."""
    if settings.redis_url:
        from signalling.redis_bus import RedisBus

        return RedisBus(settings.redis_url, settings.node_id)
    return InProcessBus()


def create_app(
    settings: Settings,
    *,
    store: Store | None = None,
    clock: Clock | None = None,
    bus: Bus | None = None,
) -> web.Application:
    """The whole server as an aiohttp application (tests pass their own parts)."""
    settings = settings.with_secret()
    if not settings.data_key:
        settings = replace(settings, data_key=_ephemeral_data_key())
    store = store if store is not None else make_store(settings)
    clock = clock if clock is not None else SystemClock()
    bus = bus if bus is not None else make_bus(settings)
    metrics = Metrics()
    tasks = TaskOwner()
    origins = OriginPolicy(settings)
    presence = PresenceLog(store, bus, clock, metrics, settings)

    # The rooms, their media checks and (with Redis) their placement refer to each
    # other: checks report verdicts to the rooms, leases ask which rooms are in use.
    rooms: RoomCommands

    async def verdict(session: Session, **detail: Any) -> None:
        await rooms.checked(session, **detail)

    checks = None
    if settings.mediacheck:
        service = MediaCheckService(service_settings(settings))
        checks = MediaChecks(service, metrics, tasks.spawn, verdict)
    leases = None
    states = None
    if settings.redis_url:
        leases = RoomLeases(
            settings.redis_url,
            settings.node_id,
            settings.base_url,
            lambda: rooms.in_use(),
            on_lost=lambda room_id, url: tasks.spawn(rooms.relocate(room_id, url)),
            people=lambda: rooms.people(),
            describe=lambda pid: rooms.describe(pid),
            on_orphans=lambda people: tasks.spawn(rooms.orphaned(people)),
            on_handed=lambda room_ids: tasks.spawn(rooms.handed(room_ids)),
            on_reclaimed=lambda room_id: states.changed(room_id) if states else None,
        )
        states = RoomStates(
            settings.redis_url,
            leases.value,
            window=settings.resume_window,
            outbox_limit=settings.send_queue,
            snapshot=lambda room_id: rooms.snapshot(room_id),
            in_use=lambda: rooms.in_use(),
            written=lambda room_ids: rooms.watch.written(room_ids),
        )
    rooms = RoomCommands(
        settings, store, clock, metrics, presence, leases, checks, tasks.spawn, bus, states
    )
    admission = Admission(
        store,
        settings,
        meetings=presence.meetings,
        invited=rooms.is_invited,
        placement=leases,
        on_key_alarm=metrics.guest_key_alarms.inc,
        on_walk_in=lambda outcome: metrics.walk_ins.labels(outcome).inc(),
    )
    room_changes = RoomChanges(store, bus, rooms, admission.rooms.forget, tasks.spawn)
    handshake = Handshake(settings, store, clock, metrics, admission, rooms)
    staff_sockets = StaffSockets(
        store, bus=bus, end_sessions=rooms.end_staff_sessions, spawn=tasks.spawn
    )
    hub = Hub(handshake, rooms, staff_sockets)
    dashboard = Dashboard(settings, store, bus, clock, metrics, presence, tasks, staff_sockets)
    heartbeat = Heartbeat(settings.heartbeat)
    endpoints = [
        Endpoint(channel, settings, metrics, heartbeat, tasks, origins.allows)
        for channel in (hub, dashboard)
    ]
    scheduler = StatusScheduler(presence, store, clock)
    presence.on_status(scheduler.watch)
    sealer = sealer_for(settings.data_key)
    transport = None
    if settings.smtp_url:
        transport = SmtpTransport(parse_smtp_url(settings.smtp_url), timeout=settings.mail_timeout)
    outbox = Outbox(settings, store, clock, sealer, _new_id, transport=transport)
    presence.on_status(lambda meeting, decision: outbox.on_status(meeting, decision, tasks.spawn))
    webhooks = WebhookSender(settings, metrics) if settings.webhook_urls else None
    if webhooks is not None:
        presence.on_entry(webhooks.enqueue)

    app = web.Application(
        client_max_size=1024 * 1024,
        middlewares=[
            _not_websockets(error_middleware),
            _not_websockets(pages.security_headers(origins)),
            rest_guard(origins),
        ],
    )
    app[SETTINGS] = settings
    app[STORE] = store
    app[BUS] = bus
    app[CLOCK] = clock
    app[METRICS] = metrics
    app[PRESENCE] = presence
    app[ROOMS] = rooms
    app[ROOM_CHANGES] = room_changes
    app[HUB] = hub
    app[DASHBOARD] = dashboard
    app[HEARTBEAT] = heartbeat
    app[SCHEDULER] = scheduler
    app[LOGIN_LIMITER] = WindowLimiter(LOGIN_ATTEMPTS_PER_MINUTE, 60.0)
    app[PATIENT_LINK_LIMITER] = WindowLimiter(settings.key_attempts_per_address)
    readiness = app[READINESS] = Readiness()
    app[SEALER] = sealer
    app[OUTBOX] = outbox
    app[STAFF_SOCKETS] = staff_sockets
    if webhooks is not None:
        app[WEBHOOKS] = webhooks

    for path, endpoint in zip(WEBSOCKET_PATHS, endpoints, strict=True):
        app.router.add_get(path, endpoint.handle)
    app.router.add_get("/healthz", _healthz)

    async def readyz(request: web.Request) -> web.Response:
        if any(endpoint.closing for endpoint in endpoints):
            return web.json_response({"status": "shutting down"}, status=503)
        if readiness.pending:
            return web.json_response({"status": "starting"}, status=503)
        try:
            await asyncio.wait_for(store.log_bounds("readyz"), 2.0)
        except Exception:  # any failure to reach the store means not ready
            return web.json_response({"status": "unavailable"}, status=503)
        return web.json_response({"status": "ready"})

    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", _metrics)
    api.setup(app)
    api_docs.setup(app)
    pages.setup(app)

    async def stores(app: web.Application) -> AsyncIterator[None]:
        await store.open()
        await bus.start()
        if settings.demo:
            from signalling.demo import ensure_demo

            await ensure_demo(store, settings, clock.now())
        yield
        await bus.stop()
        await store.close()

    async def placement(app: web.Application) -> AsyncIterator[None]:
        if leases is None:
            yield
            return
        await leases.start()
        if states is not None:
            await states.start()
        log.info("scale-out", node=settings.node_id, url=settings.base_url)
        async with contextlib.AsyncExitStack() as stack:
            await stack.enter_async_context(_running(leases.run(), "room-leases"))
            if states is not None:
                await stack.enter_async_context(_running(states.run(), "room-states"))
            yield
        # on_shutdown has closed every websocket by now: nobody is left in any room.
        try:
            await leases.release_all()
        except RedisError as err:  # they expire after the TTL anyway
            log.warning("room leases not released", error=str(err))
        await leases.stop()
        if states is not None:
            await states.stop()

    async def media_checks(app: web.Application) -> AsyncIterator[None]:
        if checks is not None:
            await checks.start()
        try:
            yield
        finally:
            if checks is not None:
                await checks.stop()

    async def background(app: web.Application) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            await stack.enter_async_context(_running(presence.run(), "presence-writer"))
            await stack.enter_async_context(_running(heartbeat.run(), "heartbeat"))
            await stack.enter_async_context(_running(scheduler.run(), "status-scheduler"))
            await stack.enter_async_context(_running(staff_sockets.run(), "staff-sockets"))
            if outbox.transport is not None:
                await stack.enter_async_context(_running(outbox.run(), "outbox-sender"))
            if webhooks is not None:
                await stack.enter_async_context(_running(webhooks.run(), "webhooks"))
            yield

    async def shutdown(app: web.Application) -> None:
        await presence.flush()
        urls = None
        if leases is not None and states is not None:
            endpoints[0].closing = True  # no new hello while the rooms are handed over
            urls = await drain(leases, states, rooms)
        await endpoints[0].shutdown(urls)
        for endpoint in endpoints[1:]:
            await endpoint.shutdown()
        dashboard.close()
        await tasks.close()

    for context in (stores, background, media_checks, placement):
        app.cleanup_ctx.append(context)
    app.on_shutdown.append(shutdown)
    return app


def _ephemeral_data_key() -> str:
    """A data key for this process only, when the settings give none (tests and
    embedding; ``vestibule serve`` refuses to start without one unless it runs
    the demo): links sealed with it cannot be shown again after a restart."""
    log.warning("no data key: guest links and keys are readable again only until restart")
    return new_data_key()


def _new_id() -> str:
    return secrets.token_hex(8)


@contextlib.asynccontextmanager
async def _running(coro: Coroutine[Any, Any, None], name: str) -> AsyncIterator[None]:
    """Run ``coro`` as a task for the duration of the block, then cancel it."""
    task = asyncio.create_task(coro, name=name)
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


WEBSOCKET_PATHS = ("/ws", "/ws/dashboard")
"""The routes of the two endpoints, in the order of ``endpoints``."""


def _not_websockets(middleware: Middleware) -> Middleware:
    """``middleware`` for every route but the websockets'.

    Neither the REST error body nor the security headers apply to a websocket
    (its upgrade is answered by ``prepare``; an endpoint answers its own errors on
    the socket), and a coroutine middleware's frame would live as long as the
    connection: with two of them, about 0.4 KB of every idle one. This is a plain
    function, so on a websocket route nothing of it stays behind."""

    @web.middleware
    def only_rest(request: web.Request, handler: Handler) -> Awaitable[web.StreamResponse]:
        if request.path in WEBSOCKET_PATHS:
            return handler(request)
        return middleware(request, handler)

    return only_rest


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """REST errors as ``{"error": {"code", "message"}}`` with the class's HTTP status;
    an outage is ``503 unavailable`` with ``Retry-After``, a fault of ours ``500 internal``."""
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except Exception as exc:
        if isinstance(exc, VestibuleError):
            err = exc
        else:
            err = error_for(exc)
            if isinstance(err, Unavailable):
                log.warning("store unavailable", error=type(exc).__name__, path=request.path)
            else:
                log.error("request not handled", exc_info=exc, path=request.path)
        request.app[METRICS].errors.labels(err.code).inc()
        body: dict[str, object] = {"code": err.code, "message": err.message}
        retry = getattr(err, "retry_after", None)
        headers = {"Retry-After": str(int(retry) + 1)} if retry is not None else None
        return web.json_response({"error": body}, status=err.http_status, headers=headers)


async def _healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[METRICS].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
