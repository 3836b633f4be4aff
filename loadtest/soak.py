"""Soak: does a hub's memory stay flat under hours of steady joins?

The harness starts a private redis-server and ``--nodes`` hub processes on it
(``--embedded``: one hub on SQLite instead), seeds one room per join as the run
goes (in batches, ahead of the schedule: :func:`cluster`), and runs joins on a
fixed schedule (``--rate`` per second, open loop) for ``--duration``
seconds. A join is a guest with a fresh link: new websocket, ``hello`` with the
token, ``join``, ``waiting``, a wait of ``--hold`` seconds, ``leave``. Every
``--call-every``-th join is a call instead: the room's host says ``hello`` with a
staff JWT and joins first, admits the guest from its lobby, both stay ``--hold``
seconds in the call and leave. Joins go to the nodes in turn; a ``goaway``
``room_elsewhere`` is followed as the pages do.

Every ``--sample`` seconds the harness reads each node's VmRSS
(/proc/<pid>/status). The figures: each node's RSS at the end of the warm-up
(``--warmup``) and at the end, the growth between them in %, the slope of a
least-squares line through the samples after the warm-up (all nodes' RSS against
joins done, in KB per 1,000 joins), join latency (intended start -> ``welcome``)
and the errors. The target (docs/benchmarks.md, "Targets"): growth under 5 % on
every node.

``python -m loadtest soak [--duration S] [--warmup S] [--embedded] [--write PATH]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import secrets
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from loadtest import report
from loadtest.crossnode import redis_server, spawn_node, stop, wait_ready
from loadtest.stats import Latency
from loadtest.targets import SeedRoom, Server, TargetError, hub, hub_env, seed

#: docs/benchmarks.md, "Targets": RSS growth after warm-up, per node
GROWTH_TARGET_PCT = 5.0
#: a step (connect, an answer) that takes longer than this failed
STEP_TIMEOUT = 30.0
#: rooms are seeded in batches of this many seconds of joins ...
SEED_BATCH = 60.0
#: ... each once fewer than this many seconds of joins are left seeded
SEED_LEAD = 30.0
#: after the last scheduled join, what is still in flight gets this long to finish
DRAIN_TIMEOUT = 60.0


@dataclass(frozen=True, slots=True)
class SoakOptions:
    duration: float = 1800.0
    warmup: float = 300.0
    sample: float = 10.0
    #: joins started per second (all nodes together)
    rate: float = 5.0
    nodes: int = 3
    #: seconds a guest waits (or a call lasts) before leaving
    hold: float = 2.0
    #: every Nth join is admitted by its host into a call (0: never)
    call_every: int = 4
    embedded: bool = False

    @property
    def joins(self) -> int:
        return math.floor(self.duration * self.rate)


class StepError(Exception):
    """A join went wrong; ``code`` is the server's error code or what failed."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code


@dataclass(frozen=True, slots=True)
class Sample:
    """One reading: seconds since the start, joins finished by then, VmRSS per node,
    and the machine's 1-minute load average."""

    at: float
    joins: int
    rss: tuple[int, ...]
    load: float = 0.0


@dataclass(slots=True)
class Tally:
    ok: int = 0
    calls: int = 0
    failed: int = 0
    latencies_ns: list[int] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    first_error: str = ""

    @property
    def done(self) -> int:
        return self.ok + self.failed


async def _receive(ws: aiohttp.ClientWebSocketResponse, waiting_for: str) -> dict[str, Any]:
    try:
        body: dict[str, Any] = await ws.receive_json(timeout=STEP_TIMEOUT)
    except TimeoutError:
        raise StepError("timeout", f"no {waiting_for}") from None
    except TypeError:  # a close or error frame, not text
        raise StepError("closed", f"closed while waiting for {waiting_for}") from None
    return body


class Peer:
    """One welcomed websocket client of the hub, reading what it is sent in order."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, participant: str) -> None:
        self.ws = ws
        self.pid = participant

    async def expect(self, kind: str) -> dict[str, Any]:
        """The next message of type ``kind`` (others are skipped; an error fails)."""
        while True:
            body = await _receive(self.ws, kind)
            if body["type"] == "error":
                raise StepError(str(body.get("code", "error")), f"while waiting for {kind}")
            if body["type"] == kind:
                return body

    async def leave(self) -> None:
        """``leave`` and close; a connection the server already closed is just closed."""
        with suppress(aiohttp.ClientError, OSError):
            if not self.ws.closed:
                await self.ws.send_json({"type": "leave"})
        await self.ws.close()


def _ws(url: str) -> str:
    return url.rstrip("/").replace("http://", "ws://", 1) + "/ws"


#: ``room_elsewhere`` hops one ``hello`` may take before it counts as failed
MAX_REDIRECTS = 3


async def hello(http: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> Peer:
    """``hello`` at ``url``, following ``goaway`` ``room_elsewhere``; the welcomed peer."""
    for _ in range(MAX_REDIRECTS + 1):
        try:
            ws = await http.ws_connect(_ws(url))
        except (aiohttp.ClientError, OSError) as exc:
            raise StepError("transport", type(exc).__name__) from None
        try:
            await ws.send_json({"type": "hello", **body})
            first = await _receive(ws, "welcome")
            while first["type"] == "ping":  # the server's clock, sent at any time
                first = await _receive(ws, "welcome")
        except BaseException:
            await ws.close()
            raise
        if first["type"] == "welcome":
            return Peer(ws, str(first["participant"]))
        await ws.close()
        if first["type"] == "goaway" and first.get("reason") == "room_elsewhere":
            url = str(first["url"])
            continue
        raise StepError(str(first.get("code", first["type"])), "hello refused")
    raise StepError("redirects", f"room_elsewhere more than {MAX_REDIRECTS} times")


async def visit(
    http: aiohttp.ClientSession, url: str, room: SeedRoom, host_jwt: str, hold: float
) -> int:
    """One join in ``room`` at ``url``: the guest's ``welcome`` time (monotonic ns).

    Without ``host_jwt`` the guest joins, waits ``hold`` seconds in the queue and
    leaves; with it the host joins first and admits the guest, and the call lasts
    ``hold`` seconds."""
    host: Peer | None = None
    guest: Peer | None = None
    try:
        if host_jwt:
            host = await hello(http, url, {"jwt": host_jwt, "room": room.slug})
            await host.ws.send_json({"type": "join"})
            await host.expect("joined")
        guest = await hello(http, url, {"token": room.token})
        welcomed = time.monotonic_ns()
        await guest.ws.send_json({"type": "join"})
        await guest.expect("waiting")
        if host is not None:
            await host.ws.send_json({"type": "admit", "participant": guest.pid})
            await guest.expect("joined")
        await asyncio.sleep(hold)  # the time a person stays: pacing, not synchronisation
        return welcomed
    finally:
        for peer in (guest, host):
            if peer is not None:
                await peer.leave()


@dataclass(slots=True)
class Cluster:
    """The hub processes under test, and how to seed rooms into their store."""

    servers: list[Server]
    env: dict[str, str]
    db: Path
    redis_url: str = ""
    #: rooms seeded before the run (tests); the run seeds the rest as it goes
    rooms: list[SeedRoom] = field(default_factory=list)

    @property
    def urls(self) -> list[str]:
        return [f"http://{s.host}:{s.port}" for s in self.servers]

    def rss(self) -> tuple[int, ...]:
        return tuple(s.rss_bytes() for s in self.servers)

    def seed(self, count: int) -> tuple[SeedRoom, ...]:
        """``count`` more rooms, each with a host and a meeting's guest link."""
        return seed(self.db, count, self.env, self.redis_url).rooms


@contextmanager
def cluster(workdir: Path, opts: SoakOptions) -> Iterator[Cluster]:
    """A private redis-server and ``opts.nodes`` hubs on it, or one embedded hub.

    The rooms are seeded as the run goes (:func:`drive`), not before the hubs start:
    a hub's status scheduler loads the meetings it finds at start-up and refreshes
    each when it starts and ends, and thousands of meetings starting in the same
    minute would be a burst no clinic has."""
    env = hub_env(secrets.token_urlsafe(32))
    if opts.embedded:
        # the hub seeds one room of its own to start on; ``env`` wins over its settings
        with hub(workdir, rooms=1, env_overrides=env) as (server, _):
            server.jwt_secret = env["VESTIBULE_JWT_SECRET"]
            yield Cluster([server], env, workdir / "load.sqlite3")
        return
    with redis_server(workdir) as url:
        servers: list[Server] = []
        try:
            for index in range(opts.nodes):
                servers.append(spawn_node(workdir, url, env, f"node{index}"))
            for server in servers:
                wait_ready(server)
            yield Cluster(servers, env, workdir / "unused.sqlite3", url)
        finally:
            for server in servers:
                stop(server)


def progress(sample: Sample, tally: Tally) -> None:
    mb = " ".join(f"{r / 2**20:.1f}" for r in sample.rss)
    print(
        f"soak {sample.at:7.0f} s: {sample.joins} joins ({tally.failed} failed), "
        f"RSS MB {mb}, load {sample.load:.2f} {dict(tally.errors) or ''}",
        flush=True,
    )


async def drive(
    target: Cluster, opts: SoakOptions, quiet: bool = False
) -> tuple[Tally, list[Sample]]:
    """Run the joins on their schedule, seeding their rooms ahead of them, and sample
    RSS until every join has ended."""
    tally = Tally()
    samples: list[Sample] = []
    urls = target.urls
    total = opts.joins
    rooms = list(target.rooms)
    seeded = asyncio.Condition()
    feed_error: list[str] = []

    async def feed(count: int) -> None:
        try:
            more = await asyncio.to_thread(target.seed, count)
        except TargetError as exc:
            feed_error.append(str(exc))
            more = ()
        async with seeded:
            rooms.extend(more)
            seeded.notify_all()

    def batch() -> int:
        return min(total - len(rooms), math.ceil(opts.rate * SEED_BATCH))

    if len(rooms) < total:
        await feed(min(total - len(rooms), math.ceil(opts.rate * (SEED_LEAD + SEED_BATCH))))
    began = time.monotonic_ns()

    async def feeder() -> None:
        while len(rooms) < total and not feed_error:
            # the next batch once fewer than SEED_LEAD seconds of joins are left seeded
            due = began + int((len(rooms) / opts.rate - SEED_LEAD) * 1e9)
            delay = (due - time.monotonic_ns()) / 1e9
            if delay > 0:
                await asyncio.sleep(delay)  # pacing the seeding to the schedule
            await feed(batch())

    def take() -> Sample:
        at = (time.monotonic_ns() - began) / 1e9
        taken = Sample(at, tally.done, target.rss(), os.getloadavg()[0])
        samples.append(taken)
        if not quiet:
            progress(taken, tally)
        return taken

    def failed(code: str, detail: str) -> None:
        tally.failed += 1
        tally.errors[code] += 1
        tally.first_error = tally.first_error or f"{code}: {detail}"

    async def one(index: int, due_ns: int, http: aiohttp.ClientSession) -> None:
        async with seeded:
            await seeded.wait_for(lambda: len(rooms) > index or bool(feed_error))
        if len(rooms) <= index:
            failed("unseeded", feed_error[0])
            return
        room = rooms[index]
        calls = opts.call_every > 0 and index % opts.call_every == opts.call_every - 1
        server = target.servers[index % len(urls)]
        jwt = server.mint_jwt(room.host_id) if calls else ""
        try:
            welcomed = await visit(http, urls[index % len(urls)], room, jwt, opts.hold)
        except StepError as exc:
            failed(exc.code, str(exc))
            return
        except (aiohttp.ClientError, OSError) as exc:
            failed("transport", type(exc).__name__)
            return
        tally.ok += 1
        tally.calls += int(calls)
        tally.latencies_ns.append(welcomed - due_ns)

    async def sampler(stop: asyncio.Event) -> None:
        while not stop.is_set():
            take()
            for server in target.servers:
                server.check_alive()
            with suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), opts.sample)

    stop = asyncio.Event()
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:
        sampling = asyncio.create_task(sampler(stop))
        feeding = asyncio.create_task(feeder())
        running: set[asyncio.Task[None]] = set()
        for index in range(total):
            due = began + int(index / opts.rate * 1e9)
            delay = (due - time.monotonic_ns()) / 1e9
            if delay > 0:
                await asyncio.sleep(delay)  # the schedule: joins start at fixed times
            task = asyncio.create_task(one(index, due, http))
            running.add(task)
            task.add_done_callback(running.discard)
        if running:
            await asyncio.wait(running, timeout=opts.hold + DRAIN_TIMEOUT)
        for task in running:
            task.cancel()
        feeding.cancel()
        with suppress(asyncio.CancelledError):
            await feeding
        stop.set()
        await sampling
        take()
    return tally, samples


def slope(points: Sequence[tuple[float, float]]) -> float:
    """The least-squares slope of y over x (0 when x does not vary)."""
    if len({x for x, _ in points}) < 2:
        return 0.0
    xs, ys = zip(*points, strict=True)
    return statistics.linear_regression(xs, ys).slope


def figures(
    tally: Tally, samples: Sequence[Sample], opts: SoakOptions, names: Sequence[str]
) -> dict[str, Any]:
    """The result: per node RSS at the end of the warm-up and at the end, growth, fit."""
    if not samples:
        raise TargetError("no RSS sample was taken")
    after = [s for s in samples if s.at >= opts.warmup]
    warm = after[0] if after else samples[-1]
    end = samples[-1]
    measured = [s for s in samples if s.at >= warm.at]
    nodes: list[dict[str, Any]] = []
    growths = [(e - w) / w * 100 if w else 0.0 for w, e in zip(warm.rss, end.rss, strict=True)]
    for i, (name, growth) in enumerate(zip(names, growths, strict=True)):
        nodes.append(
            {
                "name": name,
                "rss_warm_mb": round(warm.rss[i] / 2**20, 2),
                "rss_end_mb": round(end.rss[i] / 2**20, 2),
                "growth_pct": round(growth, 2),
            }
        )
    fit = slope([(s.joins, sum(s.rss)) for s in measured])
    latency = Latency.of(tally.latencies_ns)
    worst = max(growths)
    return {
        "options": asdict(opts),
        "store": "SQLite" if opts.embedded else "Redis",
        "joins": {
            "scheduled": opts.joins,
            "ok": tally.ok,
            "calls": tally.calls,
            "failed": tally.failed,
        },
        "errors": dict(tally.errors),
        "first_error": tally.first_error,
        "join_p50_ms": round(latency.p50, 3),
        "join_p99_ms": round(latency.p99, 3),
        "join_max_ms": round(latency.max, 3),
        "warm_at_s": round(warm.at, 1),
        "end_at_s": round(end.at, 1),
        "joins_after_warmup": end.joins - warm.joins,
        "nodes": nodes,
        "rss_warm_mb": round(sum(warm.rss) / 2**20, 2),
        "rss_end_mb": round(sum(end.rss) / 2**20, 2),
        "growth_pct": round(worst, 2),
        "slope_kb_per_1000_joins": round(fit / 1024 * 1000, 1),
        "load_mean": round(sum(s.load for s in samples) / len(samples), 2),
        "load_max": round(max(s.load for s in samples), 2),
        "target_pct": GROWTH_TARGET_PCT,
        "met": worst < GROWTH_TARGET_PCT and tally.ok > 0,
        "samples": [{"at": round(s.at, 1), "joins": s.joins, "rss": list(s.rss)} for s in samples],
    }


def run(opts: SoakOptions | None = None, quiet: bool = False) -> dict[str, Any]:
    """Start the servers, soak them, stop them; the figures."""
    opts = opts or SoakOptions()
    with (
        tempfile.TemporaryDirectory(prefix="vestibule-soak-") as tmp,
        cluster(Path(tmp), opts) as target,
    ):
        tally, samples = asyncio.run(drive(target, opts, quiet))
        names = [s.name for s in target.servers]
    return figures(tally, samples, opts, names)


def table(result: dict[str, Any]) -> str:
    """Per node: RSS at the end of the warm-up, at the end, growth; then the totals."""
    lines = [
        "| node | RSS after warm-up (MB) | RSS at the end (MB) | growth | target | met |",
        "|---|---|---|---|---|---|",
    ]
    for n in result["nodes"]:
        met = report.verdict(n["growth_pct"] < result["target_pct"])
        lines.append(
            f"| {n['name']} | {n['rss_warm_mb']:.1f} | {n['rss_end_mb']:.1f} "
            f"| {n['growth_pct']:+.2f} % | < {result['target_pct']:g} % | {met} |"
        )
    j = result["joins"]
    lines += [
        "",
        "| figure | value |",
        "|---|---|",
        f"| joins ok / failed (of {j['scheduled']:,} scheduled) | {j['ok']:,} / {j['failed']:,} |",
        f"| of them calls (host admitted the guest) | {j['calls']:,} |",
        f"| joins after the warm-up | {result['joins_after_warmup']:,} |",
        f"| RSS slope after the warm-up, all nodes (KB per 1,000 joins) "
        f"| {result['slope_kb_per_1000_joins']:+.1f} |",
        f"| join p50 / p99 (ms, intended start -> welcome) "
        f"| {result['join_p50_ms']:.1f} / {result['join_p99_ms']:.1f} |",
        f"| errors | {_errors(result['errors'])} |",
        f"| machine load average during the run (1 min, mean / max of the samples) "
        f"| {result['load_mean']:.2f} / {result['load_max']:.2f} |",
    ]
    return "\n".join(lines)


def _errors(errors: dict[str, int]) -> str:
    return ", ".join(f"`{code}` {n}" for code, n in sorted(errors.items())) or "none"


def section(result: dict[str, Any], argv: list[str] | None) -> str:
    """The "soak" section of docs/benchmarks.md."""
    o = result["options"]
    where = (
        "one hub process on SQLite (embedded)"
        if o["embedded"]
        else f"{o['nodes']} hub processes sharing a private redis-server"
    )
    calls = (
        f"every {o['call_every']}th join is a call (the room's host joins first and "
        "admits the guest)"
        if o["call_every"]
        else "no calls"
    )
    return f"""\
## Soak

{report.provenance(argv)}

{where}; {o["rate"]:g} joins/s for {o["duration"]:g} s, each a guest with a fresh link
(new websocket, `hello`, `join`, `waiting`, {o["hold"]:g} s, `leave`); {calls}. VmRSS of
every node read every {o["sample"]:g} s; growth from the first sample after the
{o["warmup"]:g} s warm-up ({result["warm_at_s"]:g} s) to the last ({result["end_at_s"]:g} s);
the slope is a least-squares line through the samples after the warm-up, all nodes'
RSS against joins done.

{table(result)}
"""


COMMAND = "soak"
#: half an hour by default: not part of ``python -m loadtest all``
ALL = False


def _arguments(parser: argparse.ArgumentParser) -> None:
    d = SoakOptions()
    add = parser.add_argument
    add("--duration", type=float, default=d.duration, help=f"seconds of joins ({d.duration:g})")
    add(
        "--warmup", type=float, default=d.warmup, help=f"seconds before the baseline ({d.warmup:g})"
    )
    add("--sample", type=float, default=d.sample, help=f"seconds between readings ({d.sample:g})")
    add("--rate", type=float, default=d.rate, help=f"joins per second, all nodes ({d.rate:g})")
    add("--nodes", type=int, default=d.nodes, help=f"hub processes on Redis ({d.nodes})")
    add(
        "--hold",
        type=float,
        default=d.hold,
        help=f"seconds a guest waits or a call lasts ({d.hold:g})",
    )
    add(
        "--call-every",
        type=int,
        default=d.call_every,
        help=f"every Nth join a call, 0: none ({d.call_every})",
    )
    add("--embedded", action="store_true", help="one hub on SQLite instead of nodes on Redis")
    add("--json", action="store_true", help="print the result as JSON only")


def options(args: argparse.Namespace) -> SoakOptions:
    """The options of a parsed command line; refuses sizes that cannot run."""
    opts = SoakOptions(
        duration=args.duration,
        warmup=args.warmup,
        sample=args.sample,
        rate=args.rate,
        nodes=args.nodes,
        hold=args.hold,
        call_every=args.call_every,
        embedded=args.embedded,
    )
    if opts.rate <= 0 or opts.sample <= 0 or opts.hold < 0 or opts.nodes < 1:
        raise TargetError("--rate and --sample must be > 0, --hold >= 0, --nodes >= 1")
    if not 0 <= opts.warmup < opts.duration:
        raise TargetError("--warmup must be at least 0 and shorter than --duration")
    if opts.joins < 1:
        raise TargetError("--duration x --rate schedules no join")
    return opts


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``soak`` to ``python -m loadtest``."""
    p = sub.add_parser(COMMAND, help="RSS growth of the hub nodes under steady joins")
    _arguments(p)
    p.add_argument("--write", metavar="PATH", help="update this markdown file's section")
    p.set_defaults(run=_run)


def _run(args: argparse.Namespace, argv: list[str] | None) -> int:
    result = run(options(args), quiet=args.json)
    if args.json:
        print(json.dumps(result))
    else:
        print(json.dumps({k: v for k, v in result.items() if k != "samples"}, indent=2))
        print(table(result))
    if args.write:
        report.write_section(args.write, COMMAND, section(result, argv))
        print(f"wrote the {COMMAND} section of {args.write}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtest.soak", description=__doc__)
    _arguments(parser)
    args = parser.parse_args(argv)
    args.write = None
    try:
        return _run(args, argv)
    except TargetError as exc:
        print(f"soak: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
