"""The dashboard fan-out writes whole frames straight to each socket's transport.

These tests pin what that shortcut must keep: frames a real websocket client
parses in either encoding and at every header size, and, on uvloop (what
``vestibule serve`` runs on, whose transports are not asyncio subclasses), live
delivery and the slow-consumer cut-off.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

import msgpack
import uvloop
from aiohttp import ClientWebSocketResponse, WSMsgType, web
from aiohttp.test_utils import TestClient, TestServer

from loadtest import fanout
from signalling.keys import DASHBOARD, PRESENCE
from signalling.keys import METRICS as METRICS_KEY

from .dashboard_support import (
    WAIT,
    ClientFactory,
    Server,
    dashboard,
    meeting_of,
    receive,
    staff_jwt,
    start_server,
)


async def _binary_dashboard(server: Server) -> ClientWebSocketResponse:
    """Ada's "my" dashboard speaking msgpack (binary frames), past its snapshot."""
    ws = await server.client.ws_connect("/ws/dashboard")
    hello = {"type": "hello", "jwt": staff_jwt(server.world.ada.id, server.clock.now())}
    await ws.send_bytes(msgpack.packb(hello))
    await ws.send_bytes(msgpack.packb({"type": "subscribe", "scope": "my"}))
    assert (await _binary(ws))["type"] == "snapshot"
    return ws


async def _binary(ws: ClientWebSocketResponse) -> dict[str, Any]:
    msg = await asyncio.wait_for(ws.receive(), WAIT)
    assert msg.type is WSMsgType.BINARY, f"expected a binary frame, got {msg.type!r}"
    body: dict[str, Any] = msgpack.unpackb(msg.data)
    return body


async def test_json_and_msgpack_dashboards_get_each_entry_whole_at_every_frame_size(
    aiohttp_client: ClientFactory, tmp_path: Any
) -> None:
    server = await start_server(aiohttp_client, tmp_path)
    world = server.world
    mine = meeting_of(world, world.ada)
    text_ws, _ = await dashboard(server, world.ada, "my")
    binary_ws = await _binary_dashboard(server)
    presence = server.app[PRESENCE]
    # payloads under 126 bytes, under 64 KiB and over: the three header forms (RFC 6455 5.2)
    for seq, pad in enumerate(("", "x" * 1_000, "y" * 70_000), start=1):
        await presence.append(
            world.team.id,
            server.clock.now(),
            "presence",
            "checked",
            mine.id,
            {"detail": {"p": pad}},
        )
        as_text = await receive(text_ws, "presence")
        as_binary = await _binary(binary_ws)
        assert as_text == as_binary
        assert (as_text["seq"], as_text["meeting"], as_text["detail"]) == (seq, mine.id, {"p": pad})
    await text_ws.close()
    await binary_ws.close()


async def _uvloop_scenario(tmp: Path) -> None:
    clients: list[TestClient[Any, Any]] = []

    async def factory(app: web.Application) -> TestClient[Any, Any]:
        client: TestClient[Any, Any] = TestClient(TestServer(app))
        await client.start_server()
        clients.append(client)
        return client

    try:
        assert isinstance(asyncio.get_running_loop(), uvloop.Loop)
        server = await start_server(factory, tmp, send_queue=4)
        world = server.world
        mine = meeting_of(world, world.ada)
        live, _ = await dashboard(server, world.ada, "my")
        stalled, _ = await dashboard(server, world.ada, "my")
        presence, board = server.app[PRESENCE], server.app[DASHBOARD]
        metrics = server.app[METRICS_KEY]
        padding = "x" * 16_000
        sent = 0
        # the live one reads every entry; the stalled one reads nothing until cut off
        while metrics.registry.get_sample_value(
            "vestibule_slow_consumers_total", {"endpoint": "dashboard"}
        ) in (None, 0.0):
            await presence.append(
                world.team.id,
                server.clock.now(),
                "presence",
                "checked",
                mine.id,
                {"detail": {"pad": padding}},
            )
            await board.idle()
            sent += 1
            assert (await receive(live, "presence"))["seq"] == sent
            assert sent < 5_000, "never cut off: the server kept buffering"
        assert len(board.feeds[world.team.id].subscribers) == 1  # the live one stays
        while True:
            msg = await asyncio.wait_for(stalled.receive(), WAIT)
            if msg.type is not WSMsgType.TEXT:
                break
        assert (msg.type, msg.data, msg.extra) == (WSMsgType.CLOSE, 1013, "slow_consumer")
        await presence.append(world.team.id, server.clock.now(), "presence", "left", mine.id, {})
        assert (await receive(live, "presence"))["seq"] == sent + 1
        await live.close()
    finally:
        for client in clients:
            await client.close()


def test_on_uvloop_entries_are_delivered_and_a_stalled_reader_is_cut_off() -> None:
    with (
        tempfile.TemporaryDirectory() as tmp,
        asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner,
    ):
        runner.run(_uvloop_scenario(Path(tmp)))


def test_the_fanout_benchmark_measures_every_delivery_once() -> None:
    """A small run of loadtest.fanout: real server process, real load process."""
    figures = fanout.run(subscribers=12, events=3, workers=2, interval=0.02)
    assert figures["server_loop"] == "uvloop"  # as ``vestibule serve`` runs
    assert (figures["deliveries"], figures["lost"]) == (36, 0)
    assert (figures["duplicates"], figures["gaps"]) == (0, 0)
    assert 0 < figures["p50_ms"] <= figures["p99_ms"] <= figures["max_ms"]
    assert len(figures["event_last_delivery_ms"]) == 3
    assert "| p99 (ms) |" in fanout.table(figures)
