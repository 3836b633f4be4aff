"""The joins benchmark: guests saying hello with a link token, answered by welcome.

Every join is a new websocket (TCP connect and upgrade), ``hello`` with one of the
tokens ``loadseed`` issued, and the ``welcome`` that redeems it. Joins run with a fixed
number in flight across the load processes; the rate counts whole joins (connect to
welcome) over the wall time from the first connect to the last welcome, and the
latencies are reported both for hello -> welcome (the hub's work: token digest,
atomic consumption, session) and for connect -> welcome (what a browser waits).
Connections stay open until the end, so disconnect handling does not overlap the run.
docs/benchmarks.md, "Targets": >= 2,000 joins/s on SQLite and >= 1,500/s on Redis
(PeerJS server's connection set-up rate on these machines), p99 reported, and at
most 0.4 ms of the hub's CPU per join.
"""

from __future__ import annotations

import asyncio
import math
import tempfile
import time
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from loadtest import report
from loadtest.driver import WorkerPool, WorkerState, split
from loadtest.stats import Latency, merge
from loadtest.targets import hub
from loadtest.wsclient import WsClient, WsError

#: joins/s the hub must sustain, by store (docs/benchmarks.md, "Targets")
JOINS_TARGET = {"SQLite": 2000.0, "Redis": 1500.0}
#: the hub's CPU per join, ms (docs/benchmarks.md, "Targets")
CPU_PER_JOIN_TARGET = 0.4
#: how long one join may take before it counts as failed
JOIN_TIMEOUT = 30.0


@dataclass(slots=True)
class JoinBatch:
    """One worker's joins (picklable; latencies as ``array('q')`` bytes)."""

    ok: int
    failed: int
    first_error: str
    hello_ns: bytes
    total_ns: bytes
    first_start_ns: int
    last_end_ns: int


async def guest_hello(host: str, port: int, token: str) -> tuple[WsClient, int, int]:
    """Connect and redeem ``token``; the client, hello->welcome and connect->welcome ns."""
    t0 = time.monotonic_ns()
    client = await WsClient.connect(host, port, "/ws", wait=JOIN_TIMEOUT)
    t1 = time.monotonic_ns()
    client.send_json({"type": "hello", "token": token})
    try:
        await client.expect("welcome", wait=JOIN_TIMEOUT)
    except BaseException:
        client.close()
        raise
    t2 = time.monotonic_ns()
    return client, t2 - t1, t2 - t0


async def join_guests(
    state: WorkerState, host: str, port: int, tokens: list[str], concurrency: int, start_ns: int
) -> JoinBatch:
    """Worker call: redeem every token, ``concurrency`` at a time; clients stay open."""
    hello_ns: array[int] = array("q")
    total_ns: array[int] = array("q")
    errors: list[str] = []
    pending = iter(tokens)
    delay = (start_ns - time.monotonic_ns()) / 1e9
    if delay > 0:
        await asyncio.sleep(delay)
    first = time.monotonic_ns()
    last = first

    async def lane() -> None:
        nonlocal last
        for token in pending:
            try:
                client, hello, total = await guest_hello(host, port, token)
            except (WsError, TimeoutError, OSError) as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
                continue
            # the welcome's queue is no longer read: pings and the like are dropped
            client.on_message = _ignore
            state.clients.append(client)
            hello_ns.append(hello)
            total_ns.append(total)
            last = max(last, time.monotonic_ns())

    await asyncio.gather(*(lane() for _ in range(concurrency)))
    return JoinBatch(
        ok=len(hello_ns),
        failed=len(errors),
        first_error=errors[0] if errors else "",
        hello_ns=hello_ns.tobytes(),
        total_ns=total_ns.tobytes(),
        first_start_ns=first,
        last_end_ns=last,
    )


def _ignore(_payload: bytes) -> None:
    return None


@dataclass(frozen=True, slots=True)
class JoinFigures:
    store: str
    count: int
    ok: int
    failed: int
    first_error: str
    concurrency: int
    seconds: float
    joins_per_s: float
    hello: Latency
    total: Latency
    #: the hub process's CPU seconds over the run (the seed and start-up excluded)
    server_cpu: float = 0.0


def run(count: int, concurrency: int, workers: int, *, redis_url: str = "") -> JoinFigures:
    """Seed ``count`` rooms, start the hub, and redeem every room's guest link."""
    workers = max(1, min(workers, count))
    lanes = max(1, math.ceil(concurrency / workers))
    with (
        tempfile.TemporaryDirectory(prefix="vestibule-joins-") as tmp,
        hub(Path(tmp), rooms=count, redis_url=redis_url) as (server, seeded),
        WorkerPool(workers) as pool,
    ):
        tokens = [room.token for room in seeded.rooms[:count]]
        start = time.monotonic_ns() + 500_000_000
        cpu_before = server.cpu_seconds()
        batches: list[JoinBatch] = pool.call(
            join_guests,
            [(server.host, server.port, part, lanes, start) for part in split(tokens, workers)],
            timeout=60 + count * JOIN_TIMEOUT / max(1, concurrency),
        )
        server.check_alive()
        server_cpu = server.cpu_seconds() - cpu_before
    ok = sum(b.ok for b in batches)
    seconds = (max(b.last_end_ns for b in batches) - min(b.first_start_ns for b in batches)) / 1e9
    return JoinFigures(
        store="Redis" if redis_url else "SQLite",
        count=count,
        ok=ok,
        failed=sum(b.failed for b in batches),
        first_error=next((b.first_error for b in batches if b.first_error), ""),
        concurrency=lanes * workers,
        seconds=seconds,
        joins_per_s=ok / seconds if seconds > 0 else 0.0,
        hello=Latency.of(merge(b.hello_ns for b in batches)),
        total=Latency.of(merge(b.total_ns for b in batches)),
        server_cpu=server_cpu,
    )


def table(f: JoinFigures) -> str:
    target = JOINS_TARGET[f.store]
    met = report.verdict(f.joins_per_s >= target and f.failed == 0)
    cpu_ms = f.server_cpu / f.ok * 1000 if f.ok else float("nan")
    cpu_met = report.verdict(cpu_ms <= CPU_PER_JOIN_TARGET) if f.ok else ""
    rows: Sequence[tuple[str, str, str, str]] = [
        ("joins/s (connect -> welcome)", report.fmt(f.joins_per_s), f">= {target:,.0f}", met),
        ("hello -> welcome p50 (ms)", report.fmt(f.hello.p50, 3), "", ""),
        ("hello -> welcome p99 (ms)", report.fmt(f.hello.p99, 3), "reported", ""),
        ("connect -> welcome p50 (ms)", report.fmt(f.total.p50, 3), "", ""),
        ("connect -> welcome p99 (ms)", report.fmt(f.total.p99, 3), "reported", ""),
        (
            "server CPU during the run (cores)",
            report.fmt(f.server_cpu / f.seconds if f.seconds else 0.0, 2),
            "",
            "",
        ),
        (
            "server CPU per join (ms)",
            report.fmt(cpu_ms if f.ok else 0.0, 3),
            f"<= {CPU_PER_JOIN_TARGET}",
            cpu_met,
        ),
        ("joins ok / failed", f"{f.ok} / {f.failed}", "0 failed", ""),
        ("wall time (s)", report.fmt(f.seconds), "", ""),
    ]
    lines = [f"| figure | hub ({f.store}) | target | met |", "|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    return "\n".join(lines)


def section_name(redis_url: str) -> str:
    """Joins on SQLite and on Redis are separate sections of docs/benchmarks.md."""
    return "joins-redis" if redis_url else "joins"


def section(f: JoinFigures, workers: int, argv: list[str] | None) -> str:
    """The "joins" (or "joins-redis") section of docs/benchmarks.md."""
    return f"""\
## Joins ({f.store})

{report.provenance(argv)}

{f.count} guests, each with its own meeting's link token (seeded by `loadseed`), join
the hub on {f.store}: new websocket, `hello` with the token, `welcome`.
{f.concurrency} joins in flight across {workers} load process(es).

{table(f)}
"""
