"""Failover: how long a room is unusable after its node is killed.

Three hub processes share a private redis-server. Each round puts a host and a
patient in a call in a fresh room on one node (the nodes take turns), waits
until the room's copy in Redis has both in the call, and SIGKILLs that node.
Both clients then do what the pages do: say ``hello`` with their resume secret
at another node, follow ``goaway`` ``room_elsewhere``, and, when the node they
were sent to does not answer, try again at the node they started from after
``RETRY_PAUSE``. The figure is the time from the kill until a signal from the
host reaches the patient through the node that took the room over. A new node
replaces the killed one before the next round.

``python -m loadtest.failover [--kills N] [--json]``, or
``python -m loadtest failover [--kills N] [--write PATH]`` (its docs/benchmarks.md section).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import aiohttp
import redis.asyncio as aioredis

from loadtest import report
from loadtest.crossnode import redis_server, spawn_node, stop, wait_ready
from loadtest.stats import Latency
from loadtest.targets import Seed, Server, TargetError, hub_env, seed

#: a client whose node does not answer tries again this much later (the pages wait
#: about as long before reconnecting)
RETRY_PAUSE = 0.05
#: a round that takes longer than this failed (the resume window is 30 s)
ROUND_TIMEOUT = 30.0


@dataclass(frozen=True, slots=True)
class FailoverOptions:
    kills: int = 20
    nodes: int = 3


@dataclass
class Client:
    ws: aiohttp.ClientWebSocketResponse
    pid: str
    resume: str

    async def expect(self, kind: str) -> dict[str, Any]:
        while True:
            body: dict[str, Any] = await self.ws.receive_json(timeout=ROUND_TIMEOUT)
            if body["type"] == "error":
                raise TargetError(f"error while waiting for {kind}: {body}")
            if body["type"] == kind:
                return body


def _ws(url: str) -> str:
    return url.rstrip("/").replace("http://", "ws://", 1) + "/ws"


async def _hello(http: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> Client:
    ws = await http.ws_connect(_ws(url))
    await ws.send_json({"type": "hello", **body})
    welcome: dict[str, Any] = await ws.receive_json(timeout=ROUND_TIMEOUT)
    if welcome["type"] != "welcome":
        raise TargetError(f"no welcome: {welcome}")
    return Client(ws, str(welcome["participant"]), str(welcome["resume"]))


async def _resume(http: aiohttp.ClientSession, start: str, secret: str) -> Client:
    """Resume as the pages do: at ``start``, following redirects; a node that does
    not answer sends the client back to ``start``."""
    url = start
    while True:
        try:
            ws = await http.ws_connect(_ws(url))
        except aiohttp.ClientConnectionError:
            url = start
            await asyncio.sleep(RETRY_PAUSE)
            continue
        await ws.send_json({"type": "hello", "resume": secret})
        first: dict[str, Any] = await ws.receive_json(timeout=ROUND_TIMEOUT)
        if first["type"] == "welcome":
            return Client(ws, str(first["participant"]), secret)
        await ws.close()
        if first["type"] == "goaway" and first.get("reason") == "room_elsewhere":
            url = str(first["url"])
            continue
        raise TargetError(f"resume refused: {first}")


async def _saved(redis: aioredis.Redis, pids: set[str]) -> None:
    """Until some room's copy has everyone of ``pids`` in its call."""
    while True:
        async for key in redis.scan_iter("vst:room-state:*"):
            lobby = await redis.hget(key, "lobby")
            if lobby and pids <= set(json.loads(lobby)["call"]):
                return
        await asyncio.sleep(0.01)  # polling Redis, which cannot notify us here


async def _round(
    http: aiohttp.ClientSession,
    redis: aioredis.Redis,
    owner: Server,
    others: list[Server],
    room: Any,
) -> float:
    """One kill: seconds from SIGKILL until relay works on the new owner."""
    url = f"http://{owner.host}:{owner.port}"
    host = await _hello(http, url, {"jwt": owner.mint_jwt(room.host_id), "room": room.slug})
    await host.ws.send_json({"type": "join"})
    await host.expect("joined")
    guest = await _hello(http, url, {"token": room.token})
    await guest.ws.send_json({"type": "join"})
    await guest.expect("waiting")
    await host.ws.send_json({"type": "admit", "participant": guest.pid})
    await guest.expect("joined")
    await asyncio.wait_for(_saved(redis, {host.pid, guest.pid}), ROUND_TIMEOUT)

    killed = time.monotonic()
    owner.process.kill()
    await asyncio.to_thread(owner.process.wait)
    for client in (host, guest):
        await client.ws.close()
    starts = [f"http://{s.host}:{s.port}" for s in others]
    host, guest = await asyncio.gather(
        _resume(http, starts[0], host.resume), _resume(http, starts[-1], guest.resume)
    )
    await host.ws.send_json({"type": "signal", "to": guest.pid, "kind": "ice-restart"})
    await guest.expect("signal")
    usable = time.monotonic() - killed
    for client in (host, guest):
        await client.ws.send_json({"type": "leave"})
        await client.ws.close()
    return usable


async def _measure(
    workdir: Path, redis_url: str, env: dict[str, str], seeded: Seed, opts: FailoverOptions
) -> list[float]:
    nodes = [spawn_node(workdir, redis_url, env, f"node{i}") for i in range(opts.nodes)]
    times: list[float] = []
    redis = aioredis.Redis.from_url(redis_url, decode_responses=True)
    try:
        for node in nodes:
            await asyncio.to_thread(wait_ready, node)
        async with aiohttp.ClientSession() as http:
            for index in range(opts.kills):
                owner = nodes[index % len(nodes)]
                others = [n for n in nodes if n is not owner]
                times.append(await _round(http, redis, owner, others, seeded.rooms[index]))
                fresh = spawn_node(workdir, redis_url, env, f"node{len(nodes) + index}")
                nodes[nodes.index(owner)] = fresh
                await asyncio.to_thread(wait_ready, fresh)
    finally:
        await redis.aclose()
        for node in nodes:
            stop(node)
    return times


def run(opts: FailoverOptions | None = None) -> dict[str, Any]:
    opts = opts or FailoverOptions()
    with (
        tempfile.TemporaryDirectory(prefix="vestibule-failover-") as tmp,
        redis_server(Path(tmp)) as url,
    ):
        env = hub_env(secrets.token_urlsafe(32))
        seeded = seed(Path(tmp) / "unused.sqlite3", opts.kills, env, url)
        times = asyncio.run(_measure(Path(tmp), url, env, seeded, opts))
    latency = Latency.of(int(t * 1e9) for t in times)
    return {
        "options": asdict(opts),
        "kills": len(times),
        "p50_s": round(latency.p50 / 1000, 3),
        "p99_s": round(latency.p99 / 1000, 3),
        "max_s": round(latency.max / 1000, 3),
        "seconds": [round(t, 3) for t in times],
    }


def table(result: dict[str, Any]) -> str:
    return "\n".join(
        [
            "| kills | p50 (s) | p99 (s) | max (s) |",
            "|---|---|---|---|",
            f"| {result['kills']} | {result['p50_s']:.3f} | {result['p99_s']:.3f} "
            f"| {result['max_s']:.3f} |",
        ]
    )


def section(result: dict[str, Any], argv: list[str] | None) -> str:
    """The "failover" section of docs/benchmarks.md."""
    o = result["options"]
    return f"""\
## Failover

{report.provenance(argv)}

{o["nodes"]} hub processes sharing a private redis-server; {o["kills"]} rounds, each with a
host and a patient in a call in a room of their own on one node (the nodes take turns),
that node SIGKILLed once the room's copy in Redis has both in the call. Both clients then
resume as the pages do (at another node, following `room_elsewhere`, back to where they
started when the node they were sent to does not answer, {RETRY_PAUSE * 1000:.0f} ms
apart). Measured: from the kill until a signal from the host reaches the patient on the
node that took the room over. A new node replaces the killed one before the next round.

{table(result)}

Most of it is the dead node's liveness key running out (`ALIVE_TTL` 2 s after its last
beat, and it beats every 0.5 s: 1.5 to 2 s after the kill, signalling/cluster.py): until
then the room's lease still names the dead node, and a `hello` for it is sent there.
"""


COMMAND = "failover"
#: kills nodes and takes minutes: not part of ``python -m loadtest all``
ALL = False


def _arguments(parser: argparse.ArgumentParser) -> None:
    d = FailoverOptions()
    parser.add_argument("--kills", type=int, default=d.kills, help=f"default {d.kills}")
    parser.add_argument("--json", action="store_true", help="print the result as JSON only")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``failover`` to ``python -m loadtest``."""
    p = sub.add_parser(COMMAND, help="time until a killed node's room is usable elsewhere")
    _arguments(p)
    p.add_argument("--write", metavar="PATH", help="update this markdown file's section")
    p.set_defaults(run=_run)


def _run(args: argparse.Namespace, argv: list[str] | None) -> int:
    result = run(FailoverOptions(kills=args.kills))
    print(json.dumps(result, indent=None if args.json else 2))
    if not args.json:
        print(table(result))
    if args.write:
        report.write_section(args.write, COMMAND, section(result, argv))
        print(f"wrote the {COMMAND} section of {args.write}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtest.failover", description=__doc__)
    _arguments(parser)
    args = parser.parse_args(argv)
    args.write = None
    return _run(args, argv)


if __name__ == "__main__":
    sys.exit(main())
