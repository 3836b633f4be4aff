"""``create_app(settings)``: wires store, bus, presence log, hub and routes.

Application state lives in typed ``web.AppKey``s; background tasks are started
and cancelled in cleanup contexts; ``on_shutdown`` sends ``goaway`` to every
websocket and closes it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import structlog
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from rooms.errors import VestibuleError
from signalling.admission import Admission
from signalling.bus import Bus, InProcessBus
from signalling.clock import Clock, SystemClock
from signalling.hub import Hub
from signalling.metrics import Metrics
from signalling.presence import PresenceLog
from signalling.settings import Settings
from signalling.store.base import Store

log = structlog.get_logger("vestibule.app")

SETTINGS = web.AppKey("settings", Settings)
STORE = web.AppKey("store", Store)
BUS = web.AppKey("bus", Bus)
CLOCK = web.AppKey("clock", Clock)
METRICS = web.AppKey("metrics", Metrics)
PRESENCE = web.AppKey("presence", PresenceLog)
HUB = web.AppKey("hub", Hub)

WEB_ROOT = Path(__file__).resolve().parent.parent / "web"

Extension = Callable[[web.Application], None]


def make_store(settings: Settings) -> Store:
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
    app = web.Application(client_max_size=1024 * 1024, middlewares=[error_middleware])
    store = store if store is not None else make_store(settings)
    clock = clock if clock is not None else SystemClock()
    bus = bus if bus is not None else make_bus(settings)
    metrics = Metrics()
    presence = PresenceLog(store, bus, clock, metrics, settings)
    admission = Admission(store, settings)
    admission.meetings = presence.meetings  # the ENTERED that follows a hello reads it too
    hub = Hub(settings, store, clock, metrics, presence, admission)
    app[SETTINGS] = settings
    app[STORE] = store
    app[BUS] = bus
    app[CLOCK] = clock
    app[METRICS] = metrics
    app[PRESENCE] = presence
    app[HUB] = hub

    app.cleanup_ctx.append(_store_ctx)
    app.cleanup_ctx.append(_background_ctx)
    app.on_shutdown.append(_on_shutdown)

    app.router.add_get("/ws", hub.handle)
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/readyz", _readyz)
    app.router.add_get("/metrics", _metrics)
    for extension in _extensions():
        extension(app)
    return app


def _extensions() -> list[Extension]:
    """The parts that wire their own routes and contexts, in order. Imported here,
    not at the top: each of them imports this module's app keys."""
    from signalling import api, checks, cluster, dashboard, pages, scheduler, webhooks

    return [
        api.setup,
        dashboard.setup,
        checks.setup,
        pages.setup,
        scheduler.setup,
        webhooks.setup,
        cluster.setup,
    ]


async def _store_ctx(app: web.Application) -> AsyncIterator[None]:
    await app[STORE].open()
    await app[BUS].start()
    if app[SETTINGS].demo:
        from signalling.demo import ensure_demo

        await ensure_demo(app[STORE], app[SETTINGS], app[CLOCK].now())
    yield
    await app[BUS].stop()
    await app[STORE].close()


async def _background_ctx(app: web.Application) -> AsyncIterator[None]:
    tasks = [
        asyncio.create_task(app[PRESENCE].run(), name="presence-writer"),
        asyncio.create_task(app[HUB].ping_forever(), name="app-ping"),
    ]
    yield
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _on_shutdown(app: web.Application) -> None:
    await app[PRESENCE].flush()
    await app[HUB].shutdown()


@web.middleware
async def error_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """REST errors as ``{"error": {"code", "message"}}`` with the class's HTTP status."""
    try:
        return await handler(request)
    except VestibuleError as err:
        request.app[METRICS].errors.labels(err.code).inc()
        body: dict[str, object] = {"code": err.code, "message": err.message}
        retry = getattr(err, "retry_after", None)
        headers = {"Retry-After": str(int(retry) + 1)} if retry is not None else None
        return web.json_response({"error": body}, status=err.http_status, headers=headers)


async def _healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _readyz(request: web.Request) -> web.Response:
    try:
        await asyncio.wait_for(request.app[STORE].log_bounds("readyz"), 2.0)
    except Exception:  # any failure to reach the store means not ready
        return web.json_response({"status": "unavailable"}, status=503)
    if request.app[HUB].closing:
        return web.json_response({"status": "shutting down"}, status=503)
    return web.json_response({"status": "ready"})


async def _metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[METRICS].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
