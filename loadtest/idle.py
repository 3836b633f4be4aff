"""The idle benchmark: how many quiet connections one server process holds, and at what RSS.

The hub's connections have completed ``hello`` (a guest with a link token, in the
room's waiting area would be one step further; entering is what every browser does
first). The baseline is the bare relay: a websocket with nothing behind it. Both are
measured the same way: after a warm-up batch, the server's VmRSS is read, the rest
are opened, VmRSS is read again once every connection is up, and the difference is
divided by the connections opened in between. Then they are held for a while and
counted again, so a server that drops them (or dies) shows.

These machines cap a process at 20,000 open files (docs/benchmarks.md, "Targets" asks for
>= 19,000); the clients are split across processes and every process, the servers
included, raises its soft RLIMIT_NOFILE to the hard limit.
"""

from __future__ import annotations

import asyncio
import math
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from loadtest import report
from loadtest.driver import WorkerPool, WorkerState, split
from loadtest.joins import guest_hello
from loadtest.targets import Server, bare_relay, hub
from loadtest.wsclient import WsClient, WsError

#: connections the hub must hold in one process (docs/benchmarks.md, "Targets")
IDLE_TARGET = 19_000
#: clients per load process: well under the 20,000 open files a process may have
PER_WORKER = 5_000
#: connects in flight per load process; the servers' listen backlog is larger
CONNECT_CONCURRENCY = 64
#: opened before the first RSS reading, so lazily allocated pools are not counted
WARMUP = 200
HOLD_SECONDS = 5.0


@dataclass(slots=True)
class Opened:
    ok: int
    failed: int
    first_error: str


async def open_idle(
    state: WorkerState, host: str, port: int, specs: list[str], hub_tokens: bool
) -> Opened:
    """Worker call: open one connection per spec (a bare path, or a hub link token)."""
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
    errors: list[str] = []

    async def one(spec: str) -> None:
        async with gate:
            try:
                if hub_tokens:
                    client, _, _ = await guest_hello(host, port, spec)
                else:
                    client = await WsClient.connect(host, port, spec, wait=30.0)
            except (WsError, TimeoutError, OSError) as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
                return
            client.on_message = _ignore
            state.clients.append(client)

    before = len(state.clients)
    await asyncio.gather(*(one(spec) for spec in specs))
    return Opened(len(state.clients) - before, len(errors), errors[0] if errors else "")


async def count_open(state: WorkerState, hold_seconds: float) -> int:
    """Worker call: let the loop run (answering pings) for a while; connections still open."""
    await asyncio.sleep(hold_seconds)
    return sum(1 for client in state.clients if not client.closed)


def _ignore(_payload: bytes) -> None:
    return None


@dataclass(frozen=True, slots=True)
class IdleFigures:
    target: str
    asked: int
    opened: int
    held: int
    failed: int
    first_error: str
    rss_before: int
    rss_after: int
    per_connection: float


@contextmanager
def _target(name: str, workdir: Path, count: int) -> Iterator[tuple[Server, list[str]]]:
    if name == "bare":
        with bare_relay(workdir) as server:
            yield server, [f"/ws?room=r{i // 2}&id=p{i}" for i in range(count)]
    else:
        with hub(workdir, rooms=count) as (server, seeded):
            yield server, [room.token for room in seeded.rooms[:count]]


def measure(name: str, count: int, workdir: Path, hold: float = HOLD_SECONDS) -> IdleFigures:
    """Open ``count`` idle connections to target ``name`` and read its RSS."""
    warm = min(WARMUP, count // 10)
    workers = max(1, math.ceil(count / PER_WORKER))
    with _target(name, workdir, count) as (server, specs), WorkerPool(workers) as pool:
        hub_tokens = name == "hub"
        timeout = 120 + count / 50

        def open_all(part: Sequence[str]) -> list[Opened]:
            chunks = split(part, workers)
            return pool.call(
                open_idle,
                [(server.host, server.port, c, hub_tokens) for c in chunks],
                timeout=timeout,
            )

        first = open_all(specs[:warm])
        rss_before = server.rss_bytes()
        rest = open_all(specs[warm:])
        rss_after = server.rss_bytes()
        held = sum(pool.call(count_open, [(hold,)] * workers, timeout=hold + 60))
        server.check_alive()
    every = first + rest
    opened_after_warm = sum(o.ok for o in rest)
    return IdleFigures(
        target=name,
        asked=count,
        opened=sum(o.ok for o in every),
        held=held,
        failed=sum(o.failed for o in every),
        first_error=next((o.first_error for o in every if o.first_error), ""),
        rss_before=rss_before,
        rss_after=rss_after,
        per_connection=(rss_after - rss_before) / opened_after_warm if opened_after_warm else 0,
    )


def run(targets: Sequence[str], count: int, hold: float = HOLD_SECONDS) -> list[IdleFigures]:
    """Measure each named target (``bare``, ``hub``) in order, holding for ``hold`` s."""
    with tempfile.TemporaryDirectory(prefix="vestibule-idle-") as tmp:
        return [measure(name, count, Path(tmp), hold) for name in targets]


def table(figures: Sequence[IdleFigures]) -> str:
    cols = [f.target for f in figures]
    by = {f.target: f for f in figures}
    bare, hub_f = by.get("bare"), by.get("hub")
    kb_ratio = (
        report.fmt(hub_f.per_connection / bare.per_connection)
        if bare and hub_f and bare.per_connection > 0
        else "n/a"
    )
    held_met = report.verdict(hub_f.held >= IDLE_TARGET) if hub_f else "n/a"

    def row(label: str, values: list[str], extra: str = "", target: str = "", met: str = "") -> str:
        return f"| {label} | " + " | ".join(values) + f" | {extra} | {target} | {met} |"

    lines = [
        "| figure | " + " | ".join(cols) + " | hub / bare | target | met |",
        "|---" * (len(cols) + 4) + "|",
        row(
            "connections held",
            [f"{f.held:,}" for f in figures],
            "",
            f">= {IDLE_TARGET:,}",
            held_met,
        ),
        row("failed to open", [str(f.failed) for f in figures]),
        row(
            "RSS per connection (KB)",
            [report.fmt(f.per_connection / 1024, 1) for f in figures],
            kb_ratio,
            "reported",
        ),
        row(
            "server RSS after warm-up (MB)", [report.fmt(f.rss_before / 2**20, 1) for f in figures]
        ),
        row("server RSS holding all (MB)", [report.fmt(f.rss_after / 2**20, 1) for f in figures]),
    ]
    return "\n".join(lines)


def section(figures: Sequence[IdleFigures], argv: list[str] | None) -> str:
    """The "idle" section of docs/benchmarks.md."""
    count = figures[0].asked if figures else 0
    return f"""\
## Idle connections

{report.provenance(argv)}

{count:,} connections per server process, opened {CONNECT_CONCURRENCY} at a time per load
process ({PER_WORKER:,} clients per load process), then held {HOLD_SECONDS:g} s. On the hub
each one completed `hello` with its own guest link token; on the bare relay each is a
plain websocket. RSS per connection is the growth of the server's VmRSS from after the
first {WARMUP} connections to all of them, divided by the connections in between.

{table(figures)}
"""
