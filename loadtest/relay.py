"""The relay benchmark: messages/s flat out and latency at half load, bare vs hub.

One invocation measures the bare relay and then the hub with the same pairs, the same
window and the same durations, and reports each figure as a ratio to the bare relay
(docs/benchmarks.md, "Targets": msgs/s >= 0.8x the floor, p99 at half load <= 2x the floor's).
Half load is half of the bare relay's measured maximum, for both targets, so their
latencies are measured under the same offered load.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from loadtest import loads, report
from loadtest.driver import Call, WorkerPool, split
from loadtest.loads import PhaseResult
from loadtest.pairs import BarePairSpec, HubPairSpec, PairSpec, open_pairs
from loadtest.stats import Latency, merge, ratio
from loadtest.targets import Server, bare_relay, hub

#: relayed msgs/s must reach this share of the bare relay's (docs/benchmarks.md, "Targets")
THROUGHPUT_TARGET = 0.8
#: p99 at half load may be at most this multiple of the bare relay's (docs/benchmarks.md, "Targets")
LATENCY_TARGET = 2.0
#: lets every worker receive its call and sleep until the common start
START_MARGIN_NS = 500_000_000


@dataclass(frozen=True, slots=True)
class RelayOptions:
    pairs: int = 50
    seconds: float = 5.0
    #: messages in flight per pair, flat out (32 candidates stay far below the hub's
    #: 1 MiB output limit per connection, so the load never trips the cut-off)
    window: int = 32
    #: not counted: connections warm up, the loads reach their steady state
    warmup: float = 0.5
    workers: int = 1


@dataclass(frozen=True, slots=True)
class RelayFigures:
    """What one target did."""

    target: str
    msgs_per_s: float
    #: the server's CPU use while flat out, in cores (1.0: one core busy)
    server_cpu: float
    #: the load processes' CPU use while flat out, in cores (all workers together)
    load_cpu: float
    half_rate: float
    half_achieved: float
    latency: Latency
    lost: int
    errors: int
    first_error: str

    @property
    def per_cpu_second(self) -> float:
        """Messages relayed per second of server CPU: the throughput figure least bent
        by other processes on a shared machine (it measures cost, not share of CPU)."""
        return self.msgs_per_s / self.server_cpu if self.server_cpu > 0 else 0.0


def run_phase(
    pool: WorkerPool, server: Server, fn: Call, opts: RelayOptions, extra: Sequence[object]
) -> tuple[list[PhaseResult], float]:
    """Run one load phase on every worker; their results and the server's CPU in cores."""
    start = time.monotonic_ns() + START_MARGIN_NS
    warm = int(opts.warmup * 1e9)
    pool.submit(fn, [(start, warm, opts.seconds, *extra)] * pool.size)
    count_from = start + warm
    time.sleep(max(0.0, (count_from - time.monotonic_ns()) / 1e9))
    cpu0 = server.cpu_seconds()
    time.sleep(opts.seconds)
    cpu1 = server.cpu_seconds()
    results: list[PhaseResult] = pool.collect(timeout=opts.warmup + opts.seconds + 60)
    server.check_alive()
    return results, (cpu1 - cpu0) / opts.seconds


def measure(
    server: Server, specs: list[PairSpec], opts: RelayOptions, pace: float | None = None
) -> RelayFigures:
    """Open ``specs`` as pairs on ``server`` and run both loads on them.

    The paced phase runs at ``pace`` msgs/s when given (the floor's half maximum,
    so both targets carry the same load: the target's "p99 at half of maximum
    throughput" compares paths, not a faster target's heavier load), else at half
    of this target's own maximum."""
    workers = max(1, min(opts.workers, len(specs)))
    with WorkerPool(workers) as pool:
        parts = split(specs, workers)
        pool.call(
            open_pairs,
            [(server.host, server.port, part) for part in parts],
            timeout=60 + len(specs),
        )
        flat, cpu = run_phase(pool, server, loads.flat_out, opts, (opts.window,))
        msgs_per_s = sum(r.received for r in flat) / opts.seconds
        # each A message is relayed twice (A->B, then B's answer), both count
        half_rate = pace if pace is not None else msgs_per_s / 2
        per_pair = max(1.0, half_rate / 2 / len(specs))
        half, _ = run_phase(pool, server, loads.paced, opts, (per_pair,))
    every = flat + half
    return RelayFigures(
        target=server.name,
        msgs_per_s=msgs_per_s,
        server_cpu=cpu,
        load_cpu=sum(r.cpu_seconds for r in flat) / opts.seconds,
        half_rate=half_rate,
        half_achieved=sum(r.received for r in half) / opts.seconds,
        latency=Latency.of(merge(r.latencies for r in half)),
        lost=sum(r.lost for r in every),
        errors=sum(r.errors for r in every),
        first_error=next((r.first_error for r in every if r.first_error), ""),
    )


def bare_specs(pairs: int) -> list[PairSpec]:
    return [BarePairSpec(room=f"r{i}", a_id=f"a{i}", b_id=f"b{i}") for i in range(pairs)]


def run_bare(workdir: Path, opts: RelayOptions, pace: float | None = None) -> RelayFigures:
    with bare_relay(workdir) as server:
        return measure(server, bare_specs(opts.pairs), opts, pace)


def run_hub(workdir: Path, opts: RelayOptions, pace: float | None = None) -> RelayFigures:
    with hub(workdir, rooms=opts.pairs) as (server, seeded):
        specs: list[PairSpec] = [
            HubPairSpec(
                slug=room.slug, host_jwt=server.mint_jwt(room.host_id), guest_token=room.token
            )
            for room in seeded.rooms[: opts.pairs]
        ]
        return measure(server, specs, opts, pace)


def run(targets: Sequence[str], opts: RelayOptions) -> list[RelayFigures]:
    """Measure each named target (``bare``, ``hub``) in order, in one temporary directory."""
    runners = {"bare": run_bare, "hub": run_hub}
    figures: list[RelayFigures] = []
    pace: float | None = None
    with tempfile.TemporaryDirectory(prefix="vestibule-load-") as tmp:
        for name in targets:
            figures.append(runners[name](Path(tmp), opts, pace))
            if name == "bare":
                pace = figures[-1].half_rate  # later targets carry the floor's half load
    return figures


def table(figures: Sequence[RelayFigures]) -> str:
    """The markdown table: one column per target, ratios to the bare relay."""
    by_name = {f.target: f for f in figures}
    cols = list(by_name)
    base = by_name.get("bare")
    hub_figs = by_name.get("hub")
    head = "| figure | " + " | ".join(cols) + " | hub / bare | target | met |"
    rule = "|---" * (len(cols) + 4) + "|"

    def row(
        label: str, values: list[str], ratio_text: str = "", target: str = "", met: str = ""
    ) -> str:
        return f"| {label} | " + " | ".join(values) + f" | {ratio_text} | {target} | {met} |"

    def ratio_of(pick: str) -> float:
        if base is None or hub_figs is None:
            return float("nan")
        return ratio(getattr(hub_figs, pick), getattr(base, pick))

    def ratio_p99() -> float:
        if base is None or hub_figs is None:
            return float("nan")
        return ratio(hub_figs.latency.p99, base.latency.p99)

    tput = ratio_of("msgs_per_s")
    p99 = ratio_p99()
    tput_met = None if tput != tput else tput >= THROUGHPUT_TARGET
    p99_met = None if p99 != p99 else p99 <= LATENCY_TARGET
    lines = [
        head,
        rule,
        row(
            "relayed msgs/s, flat out",
            [report.fmt(f.msgs_per_s) for f in figures],
            report.fmt(tput),
            f">= {THROUGHPUT_TARGET}",
            report.verdict(tput_met),
        ),
        row("server CPU while flat out (cores)", [report.fmt(f.server_cpu) for f in figures]),
        row(
            "msgs per server CPU-second, flat out",
            [report.fmt(f.per_cpu_second) for f in figures],
            report.fmt(ratio_of("per_cpu_second")),
            "(less noisy)",
        ),
        row("load CPU while flat out (cores)", [report.fmt(f.load_cpu) for f in figures]),
        row("half load offered (msgs/s)", [report.fmt(f.half_rate) for f in figures]),
        row("half load relayed (msgs/s)", [report.fmt(f.half_achieved) for f in figures]),
        row(
            "p50 at half load (ms)",
            [report.fmt(f.latency.p50, 3) for f in figures],
            report.fmt(ratio(hub_figs.latency.p50, base.latency.p50)) if base and hub_figs else "",
        ),
        row(
            "p99 at half load (ms)",
            [report.fmt(f.latency.p99, 3) for f in figures],
            report.fmt(p99),
            f"<= {LATENCY_TARGET}",
            report.verdict(p99_met),
        ),
        row("latency samples", [str(f.latency.count) for f in figures]),
        row("lost / error messages", [f"{f.lost} / {f.errors}" for f in figures]),
    ]
    return "\n".join(lines)


def section(figures: Sequence[RelayFigures], opts: RelayOptions, argv: list[str] | None) -> str:
    """The "relay" section of docs/benchmarks.md."""
    return f"""\
## Relay

{report.provenance(argv)}

{opts.pairs} pairs (1:1 rooms), {opts.seconds:g} s per phase after {opts.warmup:g} s of
warm-up, {opts.workers} load process(es). Flat out: each pair keeps {opts.window} trickled
ICE candidates in flight and every delivered message counts (both directions). Half
load: both targets are paced at half of the bare relay's flat-out maximum (the same
offered load, so the latencies compare the two paths); latency is send to
delivery, both directions, every message of the phase. CPU is in cores (1.00: one core
busy the whole time); a server well under 1.00 while flat out was sharing the machine,
which is what "msgs per server CPU-second" (the cost of a message) corrects for.

{table(figures)}
"""
