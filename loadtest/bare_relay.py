"""The framework's floor: a bare aiohttp websocket relay with no auth and no rules.

Clients connect to ``/ws?room=R&id=P``. A text frame ``{"type":"signal","to":Q,...}``
is decoded with orjson, re-encoded as the same object with ``"from": P`` in place of
``"to"`` and sent to Q if Q is in room R; anything else is ignored. It runs on the
same stack as the hub (aiohttp, orjson, uvloop when available, ``send_frame`` of
bytes), so a benchmark's ratio hub/bare isolates the hub's own overhead.

Run it as ``python -m loadtest.bare_relay --port N``; ``GET /readyz`` answers 200.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import resource
import signal
from collections.abc import Callable
from typing import Any

import orjson
from aiohttp import WSMsgType, web

Room = dict[str, web.WebSocketResponse]
ROOMS = web.AppKey("rooms", dict[str, Room])

#: same frame limit as the hub's default (docs/protocol.md, "Limits")
MAX_MESSAGE = 64 * 1024
#: the idle benchmark opens ~19,000 connections at once; the default backlog (128)
#: overflows and costs clients a 1 s SYN retransmit
BACKLOG = 4096


async def relay(request: web.Request) -> web.StreamResponse:
    """One client: register in its room, then relay its signals to their addressee."""
    room_name = request.query.get("room", "")
    me = request.query.get("id", "")
    if not room_name or not me:
        raise web.HTTPBadRequest(text="room and id are required")
    rooms = request.app[ROOMS]
    room = rooms.setdefault(room_name, {})
    ws = web.WebSocketResponse(max_msg_size=MAX_MESSAGE, decode_text=False, compress=False)
    # Registered before the upgrade answer leaves: once a client sees 101 it may be
    # addressed, so its peer's first message can never find the room without it.
    room[me] = ws
    try:
        await ws.prepare(request)
        async for msg in ws:
            if msg.type is not WSMsgType.TEXT:
                continue
            try:
                body = orjson.loads(msg.data)
            except orjson.JSONDecodeError:
                continue
            if type(body) is not dict or body.get("type") != "signal":
                continue
            to = body.pop("to", None)
            peer = room.get(to) if type(to) is str else None
            if peer is None or peer.closed:
                continue
            body["from"] = me
            with contextlib.suppress(ConnectionError, RuntimeError):
                await peer.send_frame(orjson.dumps(body), WSMsgType.TEXT)
    finally:
        if room.get(me) is ws:
            del room[me]
            if not room:
                rooms.pop(room_name, None)
    return ws


async def ready(_request: web.Request) -> web.Response:
    return web.Response(text="ok")


async def _close_all(app: web.Application) -> None:
    sockets = [ws for room in app[ROOMS].values() for ws in room.values()]
    await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)


def create_app() -> web.Application:
    """The relay application (used by the CLI below and by tests)."""
    app = web.Application()
    app[ROOMS] = {}
    app.router.add_get("/ws", relay)
    app.router.add_get("/readyz", ready)
    app.router.add_get("/healthz", ready)
    app.on_shutdown.append(_close_all)
    return app


def raise_open_files_limit() -> int:
    """Raise RLIMIT_NOFILE's soft limit to the hard limit; returns the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop when installed (1.3-2.9x the default loop's relay rate, see
    docs/architecture.md)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        return None
    new_loop: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return new_loop


async def serve(host: str, port: int) -> None:
    """Serve until SIGTERM or SIGINT."""
    runner = web.AppRunner(create_app(), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=BACKLOG)
    await site.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtest.bare_relay", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8099)
    args: Any = parser.parse_args(argv)
    raise_open_files_limit()
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        runner.run(serve(args.host, args.port))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
