"""Nothing a client was told is lost when the server is killed.

A real ``vestibule demo`` process, on SQLite and on Redis: patients enter,
wait and are admitted, and the server is SIGKILLed the moment the last acknowledgement
arrives (no shutdown, no flush). Every step a client was told about (its
``welcome``, its ``waiting``, its ``admitted``) must then be in the team's log
on disk. Before acknowledgements waited for the log, a kill lost steps that were
still queued in memory.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import pytest
import redis.asyncio as aioredis

from signalling.store.base import Store
from signalling.store.redis import RedisStore
from signalling.store.sqlite import SQLiteStore

ROOT = Path(__file__).resolve().parents[2]
JWT_SECRET = "kill-test-jwt-secret-0123456789abcdef"
START_TIMEOUT = 60.0
WAIT = 20.0
#: kills in a row: each kill is one chance for a queued step to be lost
ROUNDS = 3

pytestmark = pytest.mark.slow


def _start(db: Path, redis_url: str) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    argv = [
        sys.executable,
        *("-m", "signalling.cli", "demo", "--json", "--port", "0", "--db", str(db)),
        *("--log-format", "json"),
        # a restart keeps its node id, as a deployment's would
        *(("--redis-url", redis_url, "--node-id", "kill-test") if redis_url else ()),
    ]
    env = {**os.environ, "VESTIBULE_MEDIACHECK": "0", "VESTIBULE_JWT_SECRET": JWT_SECRET}
    process = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        cwd=ROOT,
        env=env,
    )
    assert process.stdout is not None
    line = process.stdout.readline()  # the startup line, once the demo is seeded
    assert line, "the server did not start"
    return process, json.loads(line)


async def _next(ws: aiohttp.ClientWebSocketResponse, kind: str) -> dict[str, Any]:
    async with asyncio.timeout(WAIT):
        while True:
            message: dict[str, Any] = await ws.receive_json()
            if message["type"] == kind:
                return message
            assert message["type"] != "error", message


async def _visit(url: str, meeting: dict[str, Any]) -> dict[str, str]:
    """Two patients of the host's room enter and wait, the host admits one; the
    server dies with the last acknowledgement. Returns participant -> the last
    step each was told of."""
    told: dict[str, str] = {}
    ws_url = url.replace("http", "ws", 1) + "/ws"
    token = jwt.encode(
        {"sub": meeting["host"], "exp": int(time.time()) + 600}, JWT_SECRET, algorithm="HS256"
    )
    async with aiohttp.ClientSession() as http:
        host = await http.ws_connect(ws_url)
        await host.send_json({"type": "hello", "jwt": token, "room": meeting["room"]})
        await _next(host, "welcome")
        await host.send_json({"type": "join"})
        await _next(host, "joined")
        guest = await http.ws_connect(ws_url)
        await guest.send_json({"type": "hello", "token": meeting["token"]})
        pid = (await _next(guest, "welcome"))["participant"]
        told[pid] = "entered"
        await guest.send_json({"type": "join"})
        await _next(guest, "waiting")
        told[pid] = "waiting"
        await host.send_json({"type": "admit", "participant": pid})
        await _next(guest, "admitted")
        told[pid] = "admitted"
    return told


def _kinds(entries: list[Any], pid: str) -> set[str]:
    return {e.kind for e in entries if e.data.get("participant") == pid}


def _store(kind: str, db: Path, redis_url: str) -> Store:
    return RedisStore(redis_url) if kind == "redis" else SQLiteStore(str(db))


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
async def test_every_acknowledged_step_is_in_the_log_after_a_kill(
    kind: str, tmp_path: Path, redis_server: str
) -> None:
    db = tmp_path / "kill.sqlite3"
    # a database of its own on the session's Redis, emptied first
    redis_url = redis_server.rsplit("/", 1)[0] + "/7" if kind == "redis" else ""
    if redis_url:
        client = aioredis.Redis.from_url(redis_url)
        await client.flushdb()
        await client.aclose()
    for round_ in range(ROUNDS):
        process, info = _start(db, redis_url)
        try:
            # every start seeds today's demo meetings again, with fresh links
            told = await _visit(info["url"], info["meetings"][0])
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait(WAIT)
            assert process.stdout is not None
            process.stdout.close()
        store = _store(kind, db, redis_url)
        await store.open()
        try:
            team = info["staff"][0]["team"]
            entries = await store.log_since(team, 0, 100_000)
        finally:
            await store.close()
        steps = {"entered": {"entered"}, "waiting": {"entered", "waiting"}}
        steps["admitted"] = {"entered", "waiting", "admitted"}
        for pid, last in told.items():
            missing = steps[last] - _kinds(entries, pid)
            assert not missing, f"round {round_}: told {last}, log lacks {sorted(missing)}"
