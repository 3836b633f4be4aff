"""A frame written straight to a dashboard's socket (the fan-out) never overtakes
frames the connection still holds for the current loop iteration (a snapshot,
catch-up entries), or a dashboard could see seq 9 before its snapshot."""

from __future__ import annotations

from typing import Any

import orjson

from signalling.frames import ws_frame
from signalling.keys import DASHBOARD

from .dashboard_support import dashboard, receive, start_server


async def test_a_direct_frame_waits_behind_queued_ones(aiohttp_client: Any, tmp_path: Any) -> None:
    server = await start_server(aiohttp_client, tmp_path)
    ws, _ = await dashboard(server, server.world.ada)
    conn = next(iter(server.app[DASHBOARD].subscribers))
    # in one loop iteration: two queued messages, then a frame written directly
    assert conn.write(orjson.dumps({"type": "first"}), "first")
    assert conn.write(orjson.dumps({"type": "second"}), "second")
    conn.write_frame(ws_frame(orjson.dumps({"type": "third"}), binary=False))
    got = [(await receive(ws))["type"] for _ in range(3)]
    assert got == ["first", "second", "third"]
    # with nothing queued, a direct frame goes out at once
    conn.write_frame(ws_frame(orjson.dumps({"type": "alone"}), binary=False))
    assert (await receive(ws))["type"] == "alone"
