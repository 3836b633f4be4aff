"""Signalling latency while media checks run at capacity (target: p99 <= 1.5x without).

One hub process, started with media checks on (one worker process per core, as a
deployment runs it), carries relay pairs opened exactly as the relay benchmark opens
them. The pairs are first run flat out to find the hub's maximum, then paced at half
of it three times, with the same per-pair rate each time:

1. *without*: nothing else running (the baseline);
2. *with checks*: N guests of the seed each say ``hello`` with their link token and run
   media checks back to back through the hub's ``/ws`` (``mediacheck.offer`` from a
   synthetic aiortc client, the answer accepted, ``mediacheck.result`` awaited), N being
   the hub's check capacity (workers x checks per worker), so every slot is busy for
   the whole counted window;
3. *after*: nothing running again, a control for drift on a shared machine.

The figure is the p99 of phase 2 over the p99 of phase 1. The synthetic clients run
in load processes of their own (not the relay's, not this one) and send pre-encoded
VP8 (:class:`mediacheck.synthetic.ReplayVideoTrack`), so they cost little next to the
workers that decode it; still, on a 2-core machine they share the cores with the hub,
which a real deployment's browsers would not.

``python -m loadtest checks-relay [--pairs 50] [--seconds 5] [--checks N] [--write PATH]``
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loadtest import loads, report
from loadtest.driver import Call, WorkerPool, WorkerState, split
from loadtest.loads import PhaseResult
from loadtest.mediacheck_bench import FPS, RESOLUTIONS
from loadtest.pairs import HubPairSpec, PairSpec, open_pairs
from loadtest.stats import Latency, merge, ratio
from loadtest.targets import Server, hub
from loadtest.wsclient import WsClient, WsError
from mediacheck.service import MediaCheckSettings
from mediacheck.synthetic import ReplayVideoTrack, SyntheticClient, ToneAudioTrack

COMMAND = "checks-relay"
#: ``python -m loadtest all`` runs this benchmark
ALL = True
#: what ``all --quick`` adds to the command line
QUICK_ARGS = ("--quick",)

#: relay p99 with checks at capacity over relay p99 without (docs/benchmarks.md, "Targets")
P99_RATIO_TARGET = 1.5
#: lets every load process receive its call and sleep until the common start
START_MARGIN_NS = 500_000_000
#: between the checks' start and the relay phase's start: hello, offer, answer, ICE and
#: DTLS for every check at once take about a second on loopback; the relay phase's own
#: warm-up follows, so counting begins once every check is receiving media
CHECK_LEAD = 2.0
#: checks one guest runs back to back: a check lasts its 4 s window plus set-up, so a
#: lead + warm-up + 5 s phase needs 2-3; the bound keeps a broken run finite
MAX_CHECKS_PER_GUEST = 8
#: hello -> welcome and offer -> answer (the answer waits for a worker's peer)
STEP_TIMEOUT = 30.0
#: offer -> result: the hub caps a check at 15 s (mediacheck.service hard_cap)
RESULT_TIMEOUT = 30.0


def _default_workers() -> int:
    # as loadtest.cli: the server under test keeps one core, the relay load gets the rest
    return max(1, (os.cpu_count() or 2) - 1)


@dataclass(frozen=True, slots=True)
class ChecksRelayOptions:
    """Sizes of a run; the defaults are the relay benchmark's and the hub's capacity."""

    pairs: int = 50
    seconds: float = 5.0
    #: messages in flight per pair while finding the maximum (as the relay benchmark)
    window: int = 32
    warmup: float = 0.5
    #: relay load processes
    workers: int = 1
    #: concurrent checks; 0 = the hub's capacity
    checks: int = 0
    #: the hub's media-check worker processes; 0 = one per core
    media_workers: int = 0
    #: load processes for the synthetic media clients
    check_workers: int = 1
    resolution: str = "480p"
    lead: float = CHECK_LEAD

    @property
    def media_worker_count(self) -> int:
        return self.media_workers or os.cpu_count() or 1

    @property
    def capacity(self) -> int:
        """Checks the hub runs at once: its workers x the service's checks per worker
        (the hub leaves ``per_worker`` at its default: signalling.checks.service_settings)."""
        return MediaCheckSettings(workers=self.media_worker_count).capacity

    @property
    def concurrent_checks(self) -> int:
        return self.checks or self.capacity


#: the sizes of ``--quick``
QUICK = ChecksRelayOptions(pairs=20, seconds=2.0)


# -- in the check load processes ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CheckRecord:
    """One check as a guest saw it (picklable)."""

    verdict: str
    reasons: tuple[str, ...]
    #: offer sent -> result received, seconds
    seconds: float
    #: the hub's own figure for the check (``elapsed`` in the result)
    elapsed: float
    fps: float | None
    #: why no result came ("" when one did)
    error: str = ""


@dataclass(frozen=True, slots=True)
class CheckBatch:
    records: tuple[CheckRecord, ...]
    #: this load process's CPU time while its checks ran, seconds
    cpu_seconds: float
    wall_seconds: float


async def prepare_media(state: WorkerState, resolution: str) -> int:
    """Worker call: encode the replayed VP8 once (cached per process), before any phase."""
    width, height, bitrate = RESOLUTIONS[resolution]
    ReplayVideoTrack(width, height, FPS, bitrate).stop()
    return len(state.clients)


async def run_checks(
    state: WorkerState,
    host: str,
    port: int,
    tokens: list[str],
    resolution: str,
    start_ns: int,
    until_ns: int,
) -> CheckBatch:
    """Worker call: one guest per token says hello; from ``start_ns`` each runs checks
    back to back, starting no new one after ``until_ns``."""
    # These synthetic browsers stand in for patients' own machines: on this shared
    # box they must not take CPU ahead of the server under test (or of the relay
    # load whose latency is measured), so they run at the check workers' priority.
    os.setpriority(os.PRIO_PROCESS, 0, max(os.getpriority(os.PRIO_PROCESS, 0), 10))
    guests = []
    for token in tokens:
        guest = await WsClient.connect(host, port, "/ws")
        state.clients.append(guest)
        guest.send_json({"type": "hello", "token": token, "name": "Load"})
        await guest.expect("welcome", wait=STEP_TIMEOUT)
        guests.append(guest)
    await _sleep_until(start_ns)
    cpu0 = time.process_time()
    wall0 = time.monotonic()
    lanes = await asyncio.gather(*(_lane(g, resolution, until_ns) for g in guests))
    return CheckBatch(
        records=tuple(r for lane in lanes for r in lane),
        cpu_seconds=time.process_time() - cpu0,
        wall_seconds=time.monotonic() - wall0,
    )


async def _sleep_until(when_ns: int) -> None:
    delay = (when_ns - time.monotonic_ns()) / 1e9
    if delay > 0:
        await asyncio.sleep(delay)


async def _lane(guest: WsClient, resolution: str, until_ns: int) -> list[CheckRecord]:
    records: list[CheckRecord] = []
    while len(records) < MAX_CHECKS_PER_GUEST and time.monotonic_ns() < until_ns:
        record = await _one_check(guest, resolution, ref=len(records))
        records.append(record)
        if record.error:  # the connection or the hub is in trouble: do not hammer it
            break
    return records


async def _one_check(guest: WsClient, resolution: str, ref: int) -> CheckRecord:
    width, height, bitrate = RESOLUTIONS[resolution]
    client = SyntheticClient(ReplayVideoTrack(width, height, FPS, bitrate), ToneAudioTrack())
    started = time.monotonic()
    try:
        guest.send_json({"type": "mediacheck.offer", "sdp": await client.offer(), "ref": ref})
        answer = await guest.expect(
            "mediacheck.answer", wait=STEP_TIMEOUT, where=lambda m: m.get("ref") == ref
        )
        await client.accept(str(answer["sdp"]))
        result = await guest.expect(
            "mediacheck.result",
            wait=RESULT_TIMEOUT,
            where=lambda m: m.get("check") == answer["check"],
        )
    except (WsError, TimeoutError) as exc:
        return CheckRecord("none", (), time.monotonic() - started, 0.0, None, _describe(exc))
    finally:
        await client.close()
    fps = (result.get("figures") or {}).get("fps")
    return CheckRecord(
        verdict=str(result["verdict"]),
        reasons=tuple(str(f["code"]) for f in result.get("reasons") or ()),
        seconds=time.monotonic() - started,
        elapsed=float(result.get("elapsed") or 0.0),
        fps=float(fps) if isinstance(fps, int | float) else None,
    )


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


# -- in this process ------------------------------------------------------------------


def children_cpu_seconds(pid: int) -> float:
    """User + system CPU of the direct children of ``pid`` (the hub's check workers)."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:  # gone between listdir and open
            continue
        # fields[1] is field 4 (ppid); utime and stime are fields 14 and 15
        if int(fields[1]) == pid:
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True)
class PhaseFigures:
    """One relay phase at the common paced rate."""

    label: str
    offered: float
    relayed: float
    latency: Latency
    #: the hub process's CPU over the counted window, in cores
    hub_cpu: float
    #: the hub's check workers' CPU over the counted window, in cores
    media_cpu: float
    lost: int
    errors: int
    first_error: str


@dataclass(frozen=True, slots=True)
class ChecksRelayFigures:
    options: ChecksRelayOptions
    max_msgs_per_s: float
    per_pair_rate: float
    without: PhaseFigures
    with_checks: PhaseFigures
    after: PhaseFigures
    checks: tuple[CheckRecord, ...]
    #: the synthetic clients' CPU while their checks ran, in cores
    check_client_cpu: float

    @property
    def p99_ratio(self) -> float:
        return ratio(self.with_checks.latency.p99, self.without.latency.p99)

    @property
    def met(self) -> bool | None:
        value = self.p99_ratio
        return None if math.isnan(value) else value <= P99_RATIO_TARGET


class _Phases:
    """The relay pool on the hub: runs a load on every worker at a common start."""

    def __init__(self, pool: WorkerPool, server: Server, opts: ChecksRelayOptions) -> None:
        self.pool = pool
        self.server = server
        self.opts = opts

    def run(
        self, label: str, fn: Call, extra: tuple[Any, ...], start_ns: int, offered: float
    ) -> PhaseFigures:
        opts = self.opts
        warm = int(opts.warmup * 1e9)
        self.pool.submit(fn, [(start_ns, warm, opts.seconds, *extra)] * self.pool.size)
        time.sleep(max(0.0, (start_ns + warm - time.monotonic_ns()) / 1e9))
        pid = self.server.process.pid
        cpu0, media0 = self.server.cpu_seconds(), children_cpu_seconds(pid)
        time.sleep(opts.seconds)
        cpu1, media1 = self.server.cpu_seconds(), children_cpu_seconds(pid)
        results: list[PhaseResult] = self.pool.collect(timeout=opts.warmup + opts.seconds + 60)
        self.server.check_alive()
        return PhaseFigures(
            label=label,
            offered=offered,
            relayed=sum(r.received for r in results) / opts.seconds,
            latency=Latency.of(merge(r.latencies for r in results)),
            hub_cpu=(cpu1 - cpu0) / opts.seconds,
            media_cpu=(media1 - media0) / opts.seconds,
            lost=sum(r.lost for r in results),
            errors=sum(r.errors for r in results),
            first_error=next((r.first_error for r in results if r.first_error), ""),
        )


def _soon() -> int:
    return time.monotonic_ns() + START_MARGIN_NS


def measure(
    server: Server, specs: list[PairSpec], tokens: list[str], opts: ChecksRelayOptions
) -> ChecksRelayFigures:
    """Open ``specs`` as pairs on ``server``; the three paced phases, checks in the second."""
    workers = max(1, min(opts.workers, len(specs)))
    check_workers = max(1, min(opts.check_workers, len(tokens)))
    with WorkerPool(workers) as pool, WorkerPool(check_workers) as check_pool:
        pool.call(
            open_pairs,
            [(server.host, server.port, part) for part in split(specs, workers)],
            timeout=60 + len(specs),
        )
        check_pool.call(prepare_media, [(opts.resolution,)] * check_workers, timeout=120)
        phases = _Phases(pool, server, opts)
        flat = phases.run("flat out", loads.flat_out, (opts.window,), _soon(), math.nan)
        # as the relay benchmark: half of the maximum, each A message answered by B
        half_rate = flat.relayed / 2
        per_pair = max(1.0, half_rate / 2 / len(specs))
        offered = per_pair * 2 * len(specs)
        without = phases.run("without checks", loads.paced, (per_pair,), _soon(), offered)

        checks_start = _soon()
        relay_start = checks_start + int(opts.lead * 1e9)
        until = relay_start + int((opts.warmup + opts.seconds) * 1e9)
        check_pool.submit(
            run_checks,
            [
                (server.host, server.port, part, opts.resolution, checks_start, until)
                for part in split(tokens, check_workers)
            ],
        )
        with_checks = phases.run("with checks", loads.paced, (per_pair,), relay_start, offered)
        # the last checks started just before the window closed: up to the hub's cap more
        batches: list[CheckBatch] = check_pool.collect(timeout=RESULT_TIMEOUT + 60)
        after = phases.run("after checks", loads.paced, (per_pair,), _soon(), offered)
    wall = max((b.wall_seconds for b in batches), default=0.0)
    return ChecksRelayFigures(
        options=opts,
        max_msgs_per_s=flat.relayed,
        per_pair_rate=per_pair,
        without=without,
        with_checks=with_checks,
        after=after,
        checks=tuple(r for b in batches for r in b.records),
        check_client_cpu=sum(b.cpu_seconds for b in batches) / wall if wall > 0 else 0.0,
    )


def hub_overrides(opts: ChecksRelayOptions) -> dict[str, str]:
    """The hub's environment for this benchmark: media checks on, one worker per core."""
    return {
        "VESTIBULE_MEDIACHECK": "1",
        "VESTIBULE_MEDIACHECK_WORKERS": str(opts.media_worker_count),
    }


def run(opts: ChecksRelayOptions) -> ChecksRelayFigures:
    """Start the hub with media checks on, seeded with a room per pair and per check."""
    count = opts.concurrent_checks
    with (
        tempfile.TemporaryDirectory(prefix="vestibule-checks-") as tmp,
        hub(Path(tmp), rooms=opts.pairs + count, env_overrides=hub_overrides(opts)) as (
            server,
            seeded,
        ),
    ):
        rooms = seeded.rooms
        specs: list[PairSpec] = [
            HubPairSpec(slug=r.slug, host_jwt=server.mint_jwt(r.host_id), guest_token=r.token)
            for r in rooms[: opts.pairs]
        ]
        tokens = [r.token for r in rooms[opts.pairs : opts.pairs + count]]
        return measure(server, specs, tokens, opts)


# -- the report -----------------------------------------------------------------------


def _seconds(values: Sequence[float]) -> str:
    if not values:
        return "n/a"
    return f"{statistics.median(values):.2f} / {max(values):.2f}"


def verdicts(records: Sequence[CheckRecord]) -> str:
    """``passed 8, failed 2 (low_fps x2)``: counts per verdict, reasons of the failures."""
    counts: dict[str, int] = {}
    reasons: dict[str, int] = {}
    for r in records:
        counts[r.verdict] = counts.get(r.verdict, 0) + 1
        for code in r.reasons:
            reasons[code] = reasons.get(code, 0) + 1
    text = ", ".join(f"{v} {n}" for v, n in sorted(counts.items())) or "none"
    if reasons:
        text += " (" + ", ".join(f"{c} x{n}" for c, n in sorted(reasons.items())) + ")"
    return text


def table(f: ChecksRelayFigures) -> str:
    """The markdown table: the three phases side by side, and the ratio."""
    phases = (f.without, f.with_checks, f.after)

    def row(label: str, values: list[str], extra: str = "", target: str = "", met: str = "") -> str:
        return f"| {label} | " + " | ".join(values) + f" | {extra} | {target} | {met} |"

    lines = [
        "| figure | without checks | with checks | after checks | with / without | target | met |",
        "|---|---|---|---|---|---|---|",
        row("offered (msgs/s)", [report.fmt(p.offered) for p in phases]),
        row("relayed (msgs/s)", [report.fmt(p.relayed) for p in phases]),
        row(
            "p50 (ms)",
            [report.fmt(p.latency.p50, 3) for p in phases],
            report.fmt(ratio(f.with_checks.latency.p50, f.without.latency.p50)),
        ),
        row("p90 (ms)", [report.fmt(p.latency.p90, 3) for p in phases]),
        row(
            "p99 (ms)",
            [report.fmt(p.latency.p99, 3) for p in phases],
            report.fmt(f.p99_ratio),
            f"<= {P99_RATIO_TARGET}",
            report.verdict(f.met),
        ),
        row("max (ms)", [report.fmt(p.latency.max, 3) for p in phases]),
        row("hub CPU (cores)", [report.fmt(p.hub_cpu) for p in phases]),
        row("check workers' CPU (cores)", [report.fmt(p.media_cpu) for p in phases]),
        row("latency samples", [str(p.latency.count) for p in phases]),
        row("lost / error messages", [f"{p.lost} / {p.errors}" for p in phases]),
    ]
    done = [r for r in f.checks if not r.error]
    fps = [r.fps for r in done if r.fps is not None]
    fps_text = f"{statistics.median(fps):.1f} / {min(fps):.1f}" if fps else "n/a"
    checks = [
        "",
        "| media checks | |",
        "|---|---|",
        f"| concurrent (hub capacity {f.options.capacity}) | {f.options.concurrent_checks} |",
        f"| checks run / without a result | {len(f.checks)} / {len(f.checks) - len(done)} |",
        f"| verdicts | {verdicts(f.checks)} |",
        f"| offer -> result p50 / max (s) | {_seconds([r.seconds for r in done])} |",
        f"| hub-reported check time p50 / max (s) | {_seconds([r.elapsed for r in done])} |",
        f"| received fps p50 / min | {fps_text} |",
        f"| synthetic clients' CPU (cores) | {report.fmt(f.check_client_cpu)} |",
    ]
    first_error = next((r.error for r in f.checks if r.error), "")
    if first_error:
        checks.append(f"| first check error | {first_error} |")
    return "\n".join(lines + checks)


def section(f: ChecksRelayFigures, argv: list[str] | None) -> str:
    """The "checks-relay" section of docs/benchmarks.md."""
    o = f.options
    return f"""\
## Signalling while media checks run at capacity

{report.provenance(argv)}

One hub process with media checks on ({o.media_worker_count} check worker processes, capacity
{o.capacity} checks at once) relays {o.pairs} pairs. Flat out it relayed
{report.fmt(f.max_msgs_per_s)} msgs/s; every phase below is paced at half of that
({report.fmt(f.per_pair_rate)} msgs/s from each pair's host, each answered), {o.seconds:g} s
counted after {o.warmup:g} s of warm-up, {o.workers} relay load process(es). "With checks":
{o.concurrent_checks} guests run {o.resolution} media checks back to back through `/ws`
(synthetic aiortc clients in {o.check_workers} load process(es) of their own, replaying
pre-encoded VP8 at {FPS:g} fps), starting {o.lead:g} s before the phase so every slot is busy
for the whole counted window. "After checks" is the baseline again, a control for drift
on a shared machine. CPU is in cores (1.00: one core busy the whole time).

{table(f)}
"""


# -- the subcommand -------------------------------------------------------------------


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``checks-relay`` to ``python -m loadtest``."""
    p = sub.add_parser(
        COMMAND,
        help="relay p99 with media checks at capacity, as a ratio to without",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    d = ChecksRelayOptions()
    p.add_argument("--pairs", type=int, help=f"1:1 rooms (default {d.pairs}, quick {QUICK.pairs})")
    p.add_argument(
        "--seconds", type=float, help=f"per phase (default {d.seconds:g}, quick {QUICK.seconds:g})"
    )
    p.add_argument("--window", type=int, default=d.window, help="messages in flight, flat out")
    p.add_argument("--checks", type=int, default=0, help="concurrent checks (default: capacity)")
    p.add_argument(
        "--media-workers", type=int, default=0, help="hub check workers (default: cores)"
    )
    p.add_argument("--check-workers", type=int, default=1, help="media client load processes")
    p.add_argument("--resolution", choices=sorted(RESOLUTIONS), default=d.resolution)
    p.add_argument("--workers", type=int, default=_default_workers(), help="relay load processes")
    p.add_argument("--quick", action="store_true", help="fewer pairs, shorter phases")
    p.add_argument("--write", metavar="PATH", help="update this markdown file's section")
    p.set_defaults(run=_run)


def _run(args: argparse.Namespace, argv: list[str] | None) -> int:
    sizes = QUICK if args.quick else ChecksRelayOptions()
    opts = ChecksRelayOptions(
        pairs=args.pairs or sizes.pairs,
        seconds=args.seconds or sizes.seconds,
        window=args.window,
        workers=args.workers,
        checks=args.checks,
        media_workers=args.media_workers,
        check_workers=args.check_workers,
        resolution=args.resolution,
    )
    figures = run(opts)
    print(table(figures))
    for phase in (figures.without, figures.with_checks, figures.after):
        if phase.lost or phase.errors:
            print(
                f"{phase.label}: {phase.lost} lost, {phase.errors} errors "
                f"(first: {phase.first_error})",
                file=sys.stderr,
            )
    if args.write:
        report.write_section(args.write, COMMAND, section(figures, argv))
        print(f"wrote the {COMMAND} section of {args.write}")
    return 0
