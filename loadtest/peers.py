"""Side by side: the bare relay, PeerJS server and the hub, the same figures for each.

``python -m loadtest peers`` measures, for each server in turn, in rounds whose order
rotates (bare, PeerJS, hub; then PeerJS, hub, bare; ...), and reports each figure's
median over the rounds with the rounds themselves (measured in the order below, no
connection closed before the round ends: on the hub a closed connection's session
leaves after the resume window, work that would land in a later figure's CPU):

- relay: msgs/s with 1 and with 32 messages in flight per pair (both directions count),
  and the server's CPU seconds per 100,000 messages paced at fixed rates;
- connection set-up: new websocket to ready, ``concurrency`` in flight: on the bare
  relay the upgrade, on PeerJS the ``OPEN`` that registers the id, on the hub a guest's
  ``hello`` with a link token answered by ``welcome`` (stored before it is sent); per
  second, p99, and the server's CPU per set-up;
- idle RSS per connection: the server's VmRSS growth from after a warm-up batch to all
  ``idle`` connections, divided by the connections in between (the hub's have said
  ``hello``).

Every server is started fresh for each round (the hub on a freshly seeded SQLite file),
and once more for the idle connections alone, so no figure inherits another's memory
or connections. PeerJS server is installed with
npm on first use (loadtest/peerjs.py); without Node.js the benchmark says so and
measures the other two. With ``--redis`` the hub's set-ups are measured on Redis too.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import tempfile
import time
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from loadtest import peerjs, report
from loadtest.crossnode import redis_server
from loadtest.driver import WorkerPool, WorkerState, split
from loadtest.joins import guest_hello
from loadtest.loads import PhaseResult, flat_out, paced
from loadtest.pairs import (
    BarePairSpec,
    HubPairSpec,
    PairSpec,
    PeerJsPairSpec,
    open_pairs,
    open_peerjs,
)
from loadtest.relay import RelayOptions, run_phase
from loadtest.stats import Latency, merge
from loadtest.targets import Server, TargetError, bare_relay, hub
from loadtest.wsclient import WsClient, WsError

COMMAND = "peers"
ALL = True
QUICK_ARGS = ("--rounds", "1", "--setups", "500", "--idle", "1000", "--seconds", "2")

#: connection set-ups per second the hub must reach: at least PeerJS server's in the
#: same run (docs/benchmarks.md, "Targets")
SETUP_VS_PEERJS = 1.0
#: the hub's server CPU per join (ms)
CPU_PER_JOIN_TARGET = 0.4
#: the hub's CPU per paced message, as a multiple of the bare relay's
PACED_CPU_TARGET = 1.1
#: the hub's msgs/s with one message in flight per pair, as a multiple of the bare relay's
ONE_IN_FLIGHT_TARGET = 1.0
#: idle KB per connection after hello
IDLE_KB_TARGET = 15.0
SETUP_TIMEOUT = 30.0
#: connections opened before the first RSS reading
IDLE_WARMUP = 200
IDLE_CONCURRENCY = 64
#: how long the server may keep working after a step's clients closed
QUIET_TIMEOUT = 10.0

LABELS = {"bare": "bare", "peerjs": "PeerJS", "hub": "hub (SQLite)", "hub-redis": "hub (Redis)"}


@dataclass(frozen=True, slots=True)
class PeersOptions:
    setups: int = 2000
    concurrency: int = 50
    idle: int = 5000
    pairs: int = 50
    seconds: float = 5.0
    warmup: float = 0.5
    rounds: int = 3
    rates: tuple[int, ...] = (5000, 20000)
    workers: int = 1
    redis: bool = False


# -- load-process calls ------------------------------------------------------------------


@dataclass(slots=True)
class SetupBatch:
    """One load process's set-ups (picklable; latencies as ``array('q')`` bytes)."""

    ok: int
    failed: int
    first_error: str
    latencies: bytes
    first_start_ns: int
    last_end_ns: int


async def connect_ready(kind: str, host: str, port: int, spec: str) -> WsClient:
    """One connection to ``kind``'s server, ready to signal (see the module's docstring)."""
    if kind == "peerjs":
        return await open_peerjs(host, port, spec)
    if kind.startswith("hub"):
        client, _, _ = await guest_hello(host, port, spec)
        return client
    return await WsClient.connect(host, port, spec, wait=SETUP_TIMEOUT)


async def set_up(
    state: WorkerState,
    kind: str,
    host: str,
    port: int,
    specs: list[str],
    concurrency: int,
    start_ns: int,
) -> SetupBatch:
    """Worker call: open one ready connection per spec, ``concurrency`` at a time."""
    latencies: array[int] = array("q")
    errors: list[str] = []
    pending = iter(specs)
    delay = (start_ns - time.monotonic_ns()) / 1e9
    if delay > 0:
        await asyncio.sleep(delay)
    first = time.monotonic_ns()
    last = first

    async def lane() -> None:
        nonlocal last
        for spec in pending:
            t0 = time.monotonic_ns()
            try:
                client = await connect_ready(kind, host, port, spec)
            except (WsError, TimeoutError, OSError) as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
                continue
            now = time.monotonic_ns()
            client.on_message = _ignore
            state.clients.append(client)
            latencies.append(now - t0)
            last = max(last, now)

    await asyncio.gather(*(lane() for _ in range(max(1, concurrency))))
    return SetupBatch(
        len(latencies), len(errors), errors[0] if errors else "", latencies.tobytes(), first, last
    )


def _ignore(_payload: bytes) -> None:
    return None


# -- one server, one round ---------------------------------------------------------------


@dataclass(slots=True)
class Round:
    """What one server did in one round (NaN where a figure was not measured)."""

    target: str
    setups_per_s: float = float("nan")
    setup_p99_ms: float = float("nan")
    cpu_per_setup_ms: float = float("nan")
    relay_1: float = float("nan")
    relay_32: float = float("nan")
    #: server CPU seconds per 100,000 messages, by paced rate
    cpu_per_100k: dict[int, float] = field(default_factory=dict)
    idle_kb: float = float("nan")
    failed: int = 0
    first_error: str = ""

    def note(self, failed: int, first_error: str) -> None:
        self.failed += failed
        self.first_error = self.first_error or first_error


@dataclass(frozen=True, slots=True)
class Specs:
    """What the load connects with on one server: idle, set-up and pair specs."""

    idle: list[str]
    setups: list[str]
    pairs: list[PairSpec]


def wait_quiet(server: Server, timeout: float = QUIET_TIMEOUT) -> None:
    """Return once the server used under 5 ms of CPU in 100 ms (closes handled)."""
    deadline = time.monotonic() + timeout
    before = server.cpu_seconds()
    while time.monotonic() < deadline:
        time.sleep(0.1)  # sampling another process's CPU: there is nothing to wait on
        now = server.cpu_seconds()
        if now - before < 0.005:
            return
        before = now


def _measure_idle(
    pool: WorkerPool, server: Server, kind: str, specs: list[str], out: Round
) -> None:
    warm = min(IDLE_WARMUP, len(specs) // 10)

    def open_part(part: Sequence[str]) -> tuple[int, int]:
        batches: list[SetupBatch] = pool.call(
            set_up,
            [
                (kind, server.host, server.port, chunk, IDLE_CONCURRENCY, 0)
                for chunk in split(part, pool.size)
            ],
            timeout=120 + len(part) / 20,
        )
        for b in batches:
            out.note(b.failed, b.first_error)
        return sum(b.ok for b in batches), sum(b.failed for b in batches)

    open_part(specs[:warm])
    wait_quiet(server)
    rss_before = server.rss_bytes()
    opened, _ = open_part(specs[warm:])
    wait_quiet(server)
    rss_after = server.rss_bytes()
    out.idle_kb = (rss_after - rss_before) / opened / 1024 if opened else float("nan")


def _measure_setups(
    pool: WorkerPool, server: Server, kind: str, specs: list[str], opts: PeersOptions, out: Round
) -> None:
    lanes = max(1, opts.concurrency // pool.size)
    start = time.monotonic_ns() + 300_000_000
    cpu0 = server.cpu_seconds()
    batches: list[SetupBatch] = pool.call(
        set_up,
        [(kind, server.host, server.port, part, lanes, start) for part in split(specs, pool.size)],
        timeout=60 + len(specs) * SETUP_TIMEOUT / max(1, opts.concurrency),
    )
    cpu = server.cpu_seconds() - cpu0
    server.check_alive()
    ok = sum(b.ok for b in batches)
    for b in batches:
        out.note(b.failed, b.first_error)
    wall = (max(b.last_end_ns for b in batches) - min(b.first_start_ns for b in batches)) / 1e9
    out.setups_per_s = ok / wall if wall > 0 else float("nan")
    out.setup_p99_ms = Latency.of(merge(b.latencies for b in batches)).p99
    out.cpu_per_setup_ms = cpu / ok * 1000 if ok else float("nan")
    wait_quiet(server)


def _note_phase(results: list[PhaseResult], out: Round) -> None:
    for r in results:
        out.note(r.lost + r.errors, r.first_error or (f"{r.lost} lost" if r.lost else ""))


def _measure_relay(
    pool: WorkerPool, server: Server, specs: list[PairSpec], opts: PeersOptions, out: Round
) -> None:
    ropts = RelayOptions(
        pairs=len(specs), seconds=opts.seconds, warmup=opts.warmup, workers=pool.size
    )
    pool.call(
        open_pairs,
        [(server.host, server.port, part) for part in split(specs, pool.size)],
        timeout=60 + len(specs),
    )
    for window in (1, 32):
        results, _ = run_phase(pool, server, flat_out, ropts, (window,))
        _note_phase(results, out)
        rate = sum(r.received for r in results) / opts.seconds
        if window == 1:
            out.relay_1 = rate
        else:
            out.relay_32 = rate
    for total in opts.rates:
        # each A message is answered by B: both legs count towards the total
        per_pair = total / 2 / len(specs)
        results, cores = run_phase(pool, server, paced, ropts, (per_pair,))
        _note_phase(results, out)
        received = sum(r.received for r in results)
        out.cpu_per_100k[total] = (
            cores * opts.seconds / received * 100_000 if received else float("nan")
        )


def measure(kind: str, server: Server, specs: Specs, opts: PeersOptions, out: Round) -> None:
    """The figures of ``kind`` that ``specs`` asks for on a running ``server``, into
    ``out``: relay, then set-ups, then idle.

    Nothing is closed before the server stops: on the hub a closed connection's
    session waits out the resume window and then leaves, work that would land in a
    later step's CPU."""
    with WorkerPool(max(1, opts.workers)) as pool:
        if specs.pairs:
            _measure_relay(pool, server, specs.pairs, opts, out)
        if specs.setups:
            _measure_setups(pool, server, kind, specs.setups, opts, out)
        if specs.idle:
            _measure_idle(pool, server, kind, specs.idle, out)
    server.check_alive()


@contextlib.contextmanager
def _server(
    kind: str,
    workdir: Path,
    opts: PeersOptions,
    tag: str,
    found: peerjs.Install,
    *,
    idle_only: bool,
) -> Iterator[tuple[Server, Specs]]:
    """``kind``'s server and what to load it with: only idle connections (a process of
    their own, so nothing before them has grown its heap), or the rest. The hub on
    Redis gets a redis-server of its own, empty, as the hub on SQLite gets a new file:
    no round inherits another's rooms, links or presence."""
    idle_n = opts.idle if idle_only else 0
    setup_n = 0 if idle_only else opts.setups
    pair_n = 0 if idle_only else opts.pairs
    if kind == "bare":
        with bare_relay(workdir) as server:
            yield (
                server,
                Specs(
                    idle=[f"/ws?room=i{i // 2}&id=i{i}" for i in range(idle_n)],
                    setups=[f"/ws?room=s{i // 2}&id=s{i}" for i in range(setup_n)],
                    pairs=[
                        BarePairSpec(room=f"r{i}", a_id=f"a{i}", b_id=f"b{i}")
                        for i in range(pair_n)
                    ],
                ),
            )
    elif kind == "peerjs":
        with peerjs.peerjs(workdir, found) as server:
            yield (
                server,
                Specs(
                    idle=[f"i{tag}-{i}" for i in range(idle_n)],
                    setups=[f"s{tag}-{i}" for i in range(setup_n)],
                    pairs=[
                        PeerJsPairSpec(a_id=f"a{tag}-{i}", b_id=f"b{tag}-{i}")
                        for i in range(pair_n)
                    ],
                ),
            )
    else:
        on_redis = kind == "hub-redis"
        idle = 0 if on_redis else idle_n
        pairs = 0 if on_redis else pair_n
        with contextlib.ExitStack() as stack:
            redis_url = ""
            if on_redis:
                (workdir / "redis").mkdir()
                redis_url = stack.enter_context(redis_server(workdir / "redis"))
            server, seeded = stack.enter_context(
                hub(workdir, rooms=idle + setup_n + pairs, redis_url=redis_url)
            )
            tokens = [room.token for room in seeded.rooms]
            yield (
                server,
                Specs(
                    idle=tokens[:idle],
                    setups=tokens[idle : idle + setup_n],
                    pairs=[
                        HubPairSpec(
                            slug=room.slug,
                            host_jwt=server.mint_jwt(room.host_id),
                            guest_token=room.token,
                        )
                        for room in seeded.rooms[idle + setup_n : idle + setup_n + pairs]
                    ],
                ),
            )


def order(targets: Sequence[str], round_index: int) -> list[str]:
    """The targets of round ``round_index``: the list rotated by one more each round."""
    if not targets:
        return []
    shift = round_index % len(targets)
    return [*targets[shift:], *targets[:shift]]


@dataclass(frozen=True, slots=True)
class PeersResult:
    opts: PeersOptions
    rounds: list[Round]
    #: why PeerJS server was not measured ("" when it was)
    peerjs_skipped: str
    targets: tuple[str, ...]


def run(opts: PeersOptions, *, with_peerjs: bool = True) -> PeersResult:
    """Every round, every target: the raw figures (see :func:`table` for medians)."""
    found = peerjs.install() if with_peerjs else peerjs.Install(None, "", "not asked for")
    targets = ["bare", "hub"]
    if found.script is not None:
        targets.insert(1, "peerjs")
    else:
        print(f"peers: PeerJS server not measured: {found.why_not}", file=sys.stderr)
    if opts.redis:
        targets.append("hub-redis")
    rounds: list[Round] = []
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="vestibule-peers-")))
        for index in range(opts.rounds):
            for kind in order(targets, index):
                workdir = tmp / f"{index}-{kind}"
                workdir.mkdir()
                print(f"peers: round {index + 1}/{opts.rounds}: {LABELS[kind]}", flush=True)
                out = Round(kind)
                # on Redis only the set-ups are measured (the relay does not touch the store)
                for idle_only in (False,) if kind == "hub-redis" else (True, False):
                    part = workdir / ("idle" if idle_only else "load")
                    part.mkdir()
                    started = _server(kind, part, opts, str(index), found, idle_only=idle_only)
                    with started as (srv, specs):
                        measure(kind, srv, specs, opts, out)
                rounds.append(out)
    return PeersResult(opts, rounds, found.why_not, tuple(targets))


# -- the report --------------------------------------------------------------------------


def _median(values: Sequence[float]) -> float:
    real = [v for v in values if v == v]
    return statistics.median(real) if real else float("nan")


@dataclass(frozen=True, slots=True)
class Row:
    label: str
    pick: str
    digits: int = 2
    #: "higher" or "lower" is better
    better: str = "higher"


def rows(opts: PeersOptions) -> list[Row]:
    out = [
        Row("connection set-ups/s", "setups_per_s", 0),
        Row("set-up p99 (ms)", "setup_p99_ms", 2, "lower"),
        Row("server CPU per set-up (ms)", "cpu_per_setup_ms", 3, "lower"),
        Row("relayed msgs/s, 1 in flight per pair", "relay_1", 0),
        Row("relayed msgs/s, 32 in flight per pair", "relay_32", 0),
    ]
    out += [
        Row(f"server CPU s per 100k msgs paced at {rate:,}/s", f"cpu:{rate}", 3, "lower")
        for rate in opts.rates
    ]
    out.append(Row("idle RSS per connection (KB)", "idle_kb", 1, "lower"))
    return out


def value(r: Round, pick: str) -> float:
    if pick.startswith("cpu:"):
        return r.cpu_per_100k.get(int(pick[4:]), float("nan"))
    got: float = getattr(r, pick)
    return got


def medians(result: PeersResult) -> dict[str, dict[str, float]]:
    """Per target, per figure: the median over the rounds."""
    out: dict[str, dict[str, float]] = {}
    for target in result.targets:
        mine = [r for r in result.rounds if r.target == target]
        out[target] = {
            row.pick: _median([value(r, row.pick) for r in mine]) for row in rows(result.opts)
        }
    return out


def _ratio(a: float, b: float) -> float:
    return a / b if b == b and a == a and b > 0 else float("nan")


def _cell(result: PeersResult, target: str, row: Row, med: float) -> str:
    text = report.fmt(med, row.digits)
    runs = [value(r, row.pick) for r in result.rounds if r.target == target]
    if len(runs) > 1 and med == med:
        text += " (" + ", ".join(report.fmt(v, row.digits) for v in runs) + ")"
    return text


def targets_met(result: PeersResult) -> dict[str, tuple[str, bool | None]]:
    """Per figure: the target the hub (SQLite) is held to, and whether its median met it
    (None when a figure it depends on was not measured)."""
    m = medians(result)
    nan = float("nan")

    def of(target: str, pick: str) -> float:
        return m.get(target, {}).get(pick, nan)

    def judged(a: float, b: float, ok: bool) -> bool | None:
        return None if a != a or b != b else ok

    hub_setups, peer_setups = of("hub", "setups_per_s"), of("peerjs", "setups_per_s")
    hub_cpu = of("hub", "cpu_per_setup_ms")
    hub_one, bare_one = of("hub", "relay_1"), of("bare", "relay_1")
    hub_idle = of("hub", "idle_kb")
    out: dict[str, tuple[str, bool | None]] = {
        "setups_per_s": (
            ">= PeerJS",
            judged(hub_setups, peer_setups, hub_setups >= SETUP_VS_PEERJS * peer_setups),
        ),
        "cpu_per_setup_ms": (
            f"<= {CPU_PER_JOIN_TARGET} ms",
            judged(hub_cpu, 0.0, hub_cpu <= CPU_PER_JOIN_TARGET),
        ),
        "relay_1": (
            f">= {ONE_IN_FLIGHT_TARGET:g} x bare",
            judged(hub_one, bare_one, hub_one >= ONE_IN_FLIGHT_TARGET * bare_one),
        ),
        "idle_kb": (f"<= {IDLE_KB_TARGET:g} KB", judged(hub_idle, 0.0, hub_idle <= IDLE_KB_TARGET)),
    }
    for rate in result.opts.rates:
        pick = f"cpu:{rate}"
        hub_c, bare_c = of("hub", pick), of("bare", pick)
        out[pick] = (
            f"<= {PACED_CPU_TARGET:g} x bare",
            judged(hub_c, bare_c, hub_c <= PACED_CPU_TARGET * bare_c),
        )
    return out


def table(result: PeersResult) -> str:
    """Medians per target (each round in brackets), ratios of the hub to bare and PeerJS."""
    m = medians(result)
    cols = list(result.targets)
    met = targets_met(result)
    head = (
        "| figure | "
        + " | ".join(LABELS[c] for c in cols)
        + " | hub / bare | hub / PeerJS | target (hub) | met |"
    )
    lines = [head, "|---" * (len(cols) + 5) + "|"]
    for row in rows(result.opts):
        cells = [_cell(result, c, row, m[c][row.pick]) for c in cols]
        hub_v = m.get("hub", {}).get(row.pick, float("nan"))
        vs_bare = _ratio(hub_v, m.get("bare", {}).get(row.pick, float("nan")))
        vs_peer = _ratio(hub_v, m.get("peerjs", {}).get(row.pick, float("nan")))
        target, ok = met.get(row.pick, ("", None))
        lines.append(
            f"| {row.label} | "
            + " | ".join(cells)
            + f" | {report.fmt(vs_bare)} | {report.fmt(vs_peer)} | {target} | "
            + (report.verdict(ok) if target else "")
            + " |"
        )
    failed = {c: sum(r.failed for r in result.rounds if r.target == c) for c in cols}
    lines.append(
        "| failed set-ups, lost or error messages | "
        + " | ".join(str(failed[c]) for c in cols)
        + " |  |  | 0 |  |"
    )
    return "\n".join(lines)


def section(result: PeersResult, argv: list[str] | None) -> str:
    """The "peers" section of docs/benchmarks.md."""
    o = result.opts
    skipped = (
        f"\n\nPeerJS server was not measured in this run: {result.peerjs_skipped}."
        if result.peerjs_skipped
        else ""
    )
    rates = " and ".join(f"{r:,}" for r in o.rates)
    return f"""\
## Side by side: bare relay, PeerJS server {peerjs.VERSION}, hub

{report.provenance(argv)}

{o.rounds} round(s); each round starts every server afresh, in an order rotated by one
each round, and measures on it, in this order and closing no connection before the
server stops: {o.pairs} pairs relaying trickled candidates flat out with 1 and with 32
in flight per pair, and paced at {rates} msgs/s in total ({o.seconds:g} s each after
{o.warmup:g} s of warm-up); {o.setups:,} connection set-ups with {o.concurrency} in
flight (bare: websocket upgrade; PeerJS: `OPEN`; hub: a guest's `hello` with a link
token to `welcome`, connect included). Idle RSS per connection is measured on a
server started for it alone ({o.idle:,} connections, the growth after the first
{IDLE_WARMUP}). The hub on Redis is measured on set-ups only. {o.workers} load
process(es). Each cell is the median over the rounds, the rounds in brackets; the
ratios are of the medians. CPU is the server
process's user + system time (PeerJS: the whole Node.js process).{skipped}

{table(result)}
"""


# -- command line ------------------------------------------------------------------------


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(COMMAND, help="bare relay vs PeerJS server vs hub, the same figures")
    d = PeersOptions()
    p.add_argument("--rounds", type=int, default=d.rounds, help=f"(default {d.rounds})")
    p.add_argument("--setups", type=int, default=d.setups, help=f"(default {d.setups})")
    p.add_argument("--concurrency", type=int, default=d.concurrency, help="set-ups in flight")
    p.add_argument("--idle", type=int, default=d.idle, help=f"idle connections ({d.idle})")
    p.add_argument("--pairs", type=int, default=d.pairs, help=f"(default {d.pairs})")
    p.add_argument("--seconds", type=float, default=d.seconds, help="per relay phase")
    p.add_argument(
        "--rates",
        default=",".join(str(r) for r in d.rates),
        help="paced rates in msgs/s, comma-separated (default 5000,20000)",
    )
    p.add_argument("--redis", action="store_true", help="also the hub's set-ups on Redis")
    p.add_argument("--no-peerjs", action="store_true", help="leave PeerJS server out")
    p.add_argument("--workers", type=int, default=1, help="load processes (default 1)")
    p.add_argument("--write", metavar="PATH", help="update this markdown file's section")
    p.set_defaults(run=_run)


def _run(args: argparse.Namespace, argv: list[str] | None) -> int:
    try:
        rates = tuple(int(r) for r in str(args.rates).split(",") if r.strip())
    except ValueError:
        print(f"peers: --rates takes integers, not {args.rates!r}", file=sys.stderr)
        return 2
    opts = PeersOptions(
        setups=args.setups,
        concurrency=args.concurrency,
        idle=args.idle,
        pairs=args.pairs,
        seconds=args.seconds,
        rounds=args.rounds,
        rates=rates,
        workers=args.workers,
        redis=args.redis,
    )
    try:
        result = run(opts, with_peerjs=not args.no_peerjs)
    except TargetError as exc:
        print(f"peers: {exc}", file=sys.stderr)
        return 2
    print(table(result))
    for r in result.rounds:
        if r.first_error:
            print(f"{r.target}: {r.failed} failed, first: {r.first_error}", file=sys.stderr)
    if args.write:
        report.write_section(args.write, COMMAND, section(result, argv))
        print(f"wrote the {COMMAND} section of {args.write}")
    return 0
