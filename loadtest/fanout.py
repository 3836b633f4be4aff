"""Benchmark: one presence event to N connected dashboard subscribers.

Target (DESIGN.md section 4): p99 delivery latency <= 50 ms with 1,000
subscribers. The server (create_app on a throwaway SQLite file) runs in a child
process, so its memory per subscriber is measured alone; the subscribers are
websocket clients in this process. Latency runs from just before the entry is
appended (``PresenceLog.append``, in the server, triggered by an HTTP
request) to each subscriber reading it: the server stamps the entry with its
wall clock and subscribers compare with theirs (same machine).

``python -m loadtest.fanout --subscribers 1000 --events 50``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import socket
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import jwt

from loadtest.stats import percentile

_SECRET = "fanout-benchmark-jwt-secret-0123456789"  # noqa: S105  # a throwaway server


def _rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _serve(port: int, db: str) -> None:
    """Child process: the real app, seeded with one member and one meeting, plus
    ``POST /bench/emit`` which appends one presence entry about that meeting."""
    from aiohttp import web

    from rooms.accounts import Organisation, Plan, StaffAccount, StaffRole, Team
    from rooms.meeting import Guest, Meeting
    from rooms.room import Room, RoomKind
    from signalling.app import PRESENCE, STORE, create_app
    from signalling.settings import Settings

    async def main() -> None:
        settings = Settings(db_path=db, jwt_secret=_SECRET, mediacheck=False, log_level="warning")
        app = create_app(settings)

        async def seed(app: web.Application) -> None:
            store = app[STORE]
            now = datetime.now(UTC)
            await store.add_organisation(Organisation("o", "Bench", now))
            await store.add_team(Team("t", "o", "Bench", "B", Plan.CLINIC, "b@x.test", "", now))
            await store.add_staff(
                StaffAccount("h", "o", "t", StaffRole.MEMBER, "h@x.test", "Host", "!")
            )
            await store.add_room(Room("r", "t", "bench-room", "Room", RoomKind.USER, "h"))
            guest = Guest("Bench Guest", "g@x.test")
            meeting = Meeting("m", "t", "h", "r", None, guest, timedelta(minutes=30), now, now)
            await store.add_meetings([meeting], [])

        async def emit(request: web.Request) -> web.Response:
            detail = {"sent": time.time()}
            entry = await app[PRESENCE].append(
                "t", datetime.now(UTC), "presence", "checked", "m", {"detail": detail}
            )
            return web.json_response({"seq": entry.seq})

        app.on_startup.append(seed)
        app.router.add_post("/bench/emit", emit)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        await asyncio.Event().wait()

    asyncio.run(main())


async def _wait_ready(url: str, session: aiohttp.ClientSession) -> None:
    for _ in range(200):
        try:
            async with session.get(url + "/readyz") as response:
                if response.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.05)  # polling a starting child process, not a test
    raise RuntimeError("the benchmark server did not start")


async def _measure(port: int, subscribers: int, events: int, pid: int) -> dict[str, Any]:
    claims = {"sub": "h", "exp": int((datetime.now(UTC) + timedelta(hours=1)).timestamp())}
    token = jwt.encode(claims, _SECRET, algorithm="HS256")
    url = f"http://127.0.0.1:{port}"
    latencies: list[float] = []
    pending = [0]
    done = asyncio.Event()

    async def reader(ws: aiohttp.ClientWebSocketResponse) -> None:
        async for msg in ws:
            body = json.loads(msg.data)
            if body.get("type") == "presence":
                latencies.append(time.time() - body["detail"]["sent"])
                pending[0] -= 1
                if pending[0] == 0:
                    done.set()

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        await _wait_ready(url, session)
        rss_before = _rss_kb(pid)
        sockets = []
        for _ in range(subscribers):
            ws = await session.ws_connect(url + "/ws/dashboard")
            await ws.send_str(json.dumps({"type": "hello", "jwt": token}))
            await ws.send_str(json.dumps({"type": "subscribe", "scope": "my"}))
            msg = await ws.receive(timeout=30)
            assert json.loads(msg.data)["type"] == "snapshot"
            sockets.append(ws)
        rss_after = _rss_kb(pid)
        readers = [asyncio.create_task(reader(ws)) for ws in sockets]
        for _ in range(events):
            done.clear()
            pending[0] = subscribers
            async with session.post(url + "/bench/emit") as response:
                await response.read()
            await asyncio.wait_for(done.wait(), 30)
        for ws in sockets:
            await ws.close()
        await asyncio.gather(*readers, return_exceptions=True)
    ordered = sorted(int(x * 1_000_000) for x in latencies)  # microseconds
    return {
        "subscribers": subscribers,
        "events": events,
        "deliveries": len(ordered),
        "p50_ms": percentile(ordered, 50) / 1000,
        "p99_ms": percentile(ordered, 99) / 1000,
        "max_ms": (ordered[-1] / 1000) if ordered else 0.0,
        "target_p99_ms": 50.0,
        "server_rss_per_subscriber_kb": round((rss_after - rss_before) / max(1, subscribers), 2),
    }


def run(subscribers: int = 1000, events: int = 50) -> dict[str, Any]:
    """Run the benchmark: the server in a child process, ``subscribers`` dashboards
    here; returns p50/p99/max delivery latency (ms) and server RSS per subscriber."""
    with tempfile.TemporaryDirectory() as tmp:
        port = _free_port()
        ctx = multiprocessing.get_context("spawn")
        child = ctx.Process(target=_serve, args=(port, str(Path(tmp) / "bench.sqlite3")))
        child.start()
        try:
            assert child.pid is not None
            return asyncio.run(_measure(port, subscribers, events, child.pid))
        finally:
            child.terminate()
            child.join(10)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtest.fanout")
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--events", type=int, default=50)
    args = parser.parse_args(argv)
    print(json.dumps(run(args.subscribers, args.events), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
