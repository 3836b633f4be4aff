"""A participant who stops reading is cut off; the sender and everyone else go on.

Run on uvloop, as `vestibule serve` runs: its transports are not asyncio's
classes, which once switched this protection off in production unnoticed.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

import jwt
import orjson
import uvloop
from aiohttp import WSMsgType
from aiohttp.test_utils import TestClient, TestServer

from signalling.bootstrap import create_app
from signalling.clock import SystemClock
from signalling.demo import ensure_demo
from signalling.keys import METRICS, STORE
from signalling.settings import Settings

SECRET = "slow-consumer-test-secret-0123456789"
WAIT = 10.0


async def _until(ws: Any, kind: str, **match: Any) -> dict[str, Any]:
    while True:
        msg = await asyncio.wait_for(ws.receive(), WAIT)
        assert msg.type is WSMsgType.TEXT, msg
        body: dict[str, Any] = orjson.loads(msg.data)
        if body["type"] == kind and all(body.get(k) == v for k, v in match.items()):
            return body


async def _scenario(tmp: Path) -> None:
    assert isinstance(asyncio.get_running_loop(), uvloop.Loop)
    settings = Settings(
        db_path=str(tmp / "slow.sqlite3"),
        jwt_secret=SECRET,
        mediacheck=False,
        send_queue=4,
        rate=1e6,
        burst=10**6,
    )
    app = create_app(settings)
    client: TestClient[Any, Any] = TestClient(TestServer(app))
    await client.start_server()
    try:
        demo = await ensure_demo(app[STORE], settings, SystemClock().now())
        meeting = demo.meetings[0]
        host = await client.ws_connect("/ws")
        token = jwt.encode({"sub": "demo-ada", "exp": int(time.time()) + 60}, SECRET)
        await host.send_json({"type": "hello", "jwt": token, "room": meeting["room"]})
        await _until(host, "welcome")
        await host.send_json({"type": "join"})
        guest = await client.ws_connect("/ws")
        await guest.send_json({"type": "hello", "token": meeting["token"]})
        guest_id = (await _until(guest, "welcome"))["participant"]
        await guest.send_json({"type": "join"})
        while not (await _until(host, "lobby"))["waiting"]:
            pass
        await host.send_json({"type": "admit", "participant": guest_id})
        await _until(guest, "joined")
        # The guest stops reading. The host keeps sending offers of 50 KB: past the
        # guest's 16 KiB output limit (send_queue 4 x 4 KiB) the server cuts the guest off.
        offer = {"type": "signal", "to": guest_id, "kind": "offer", "sdp": "v=0 " + "a" * 50_000}
        metrics = app[METRICS]
        for sent in range(1, 2_001):
            await host.send_json({**offer, "ref": sent})
            await host.send_json({"type": "ping", "ref": sent})
            await _until(host, "pong", ref=sent)  # the host is served all along
            cut = metrics.registry.get_sample_value(
                "vestibule_slow_consumers_total", {"endpoint": "ws"}
            )
            if cut:
                break
        else:
            raise AssertionError("the guest was never cut off: the server kept buffering")
        # the guest's socket was closed with the reason, and the host is still served
        await host.send_json({"type": "ping", "ref": "after"})
        assert (await _until(host, "pong", ref="after"))["ref"] == "after"
        close = None
        while close is None:
            msg = await asyncio.wait_for(guest.receive(), WAIT)
            if msg.type is WSMsgType.CLOSE:
                close = (msg.data, msg.extra)
            elif msg.type in (WSMsgType.CLOSED, WSMsgType.ERROR):
                close = (guest.close_code, "")
        assert close[0] == 1013, close
    finally:
        await client.close()


def test_a_stalled_reader_is_cut_off_on_uvloop() -> None:
    with (
        tempfile.TemporaryDirectory() as tmp,
        asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner,
    ):
        runner.run(_scenario(Path(tmp)))
