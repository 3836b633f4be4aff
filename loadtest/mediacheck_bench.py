"""Media-check benchmark: server CPU per check, and concurrent checks per core.

Runs the real :class:`mediacheck.service.MediaCheckService` with ONE worker process
(one worker = one event loop = at most one core of Python work, plus aiortc's decoder
threads) against synthetic aiortc clients in this process, and prints a JSON summary:

* ``per_check``: CPU seconds the worker spent per check (utime + stime read from
  ``/proc/<pid>/stat``), at 480p and 720p, 30 fps, browser-like VP8 bitrates;
* ``concurrency``: N checks at once on that worker, N = 1, 2, 4, ...; the verdict time
  and the received frame rate at each N;
* ``concurrent_checks_per_core``: the largest N before the verdict time grows by more
  than 25 % over N = 1 or the received frame rate falls below 90 % of what was sent
  (the worker is then decoding slower than real time).

Clients replay pre-encoded VP8 (:class:`mediacheck.synthetic.ReplayVideoTrack`), so
this process only packetises; the worker pays the full receive-and-decode cost.
Absolute numbers on shared 2-core machines are noisy: compare runs made together.

Usage: ``python -m loadtest.mediacheck_bench [--checks 3] [--window 4] [--max-concurrency 8]``
(JSON on stdout), or ``python -m loadtest mediacheck [--quick] [--write PATH]`` (a table, and
the "mediacheck" section of docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Any

import structlog

from loadtest import report
from mediacheck.result import CheckResult
from mediacheck.service import MediaCheckService, MediaCheckSettings
from mediacheck.synthetic import ReplayVideoTrack, SyntheticClient, ToneAudioTrack

#: name -> (width, height, bitrate): typical browser VP8 rates at 30 fps.
RESOLUTIONS: dict[str, tuple[int, int, int]] = {
    "480p": (640, 480, 1_000_000),
    "720p": (1280, 720, 1_500_000),
}
FPS = 30.0
#: A verdict 25 % slower than a lone check's, or under 90 % of the sent frame rate,
#: counts as degraded (the worker no longer keeps up in real time).
ELAPSED_DEGRADED = 1.25
FPS_DEGRADED = 0.9
#: Anything awaited here is bounded: a check is hard-capped at 15 s by default.
WAIT = 60.0


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (``/proc/<pid>/stat`` fields 14 and 15)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Measured:
    results: list[CheckResult]
    cpu_seconds: float
    wall_seconds: float


async def run_checks(
    service: MediaCheckService, resolution: str, concurrent: int, tag: str
) -> Measured:
    """``concurrent`` checks started together; the worker's CPU over all of them."""
    width, height, bitrate = RESOLUTIONS[resolution]
    pid = service.stats()["worker_pids"][0]
    clients = [
        SyntheticClient(ReplayVideoTrack(width, height, FPS, bitrate), ToneAudioTrack())
        for _ in range(concurrent)
    ]
    cpu_before = process_cpu_seconds(pid)
    started = time.monotonic()
    try:
        results = await asyncio.gather(
            *(one_check(service, f"{tag}-{i}", c) for i, c in enumerate(clients))
        )
    finally:
        await asyncio.gather(*(c.close() for c in clients))
    return Measured(
        results=list(results),
        cpu_seconds=process_cpu_seconds(pid) - cpu_before,
        wall_seconds=time.monotonic() - started,
    )


async def one_check(
    service: MediaCheckService, check_id: str, client: SyntheticClient
) -> CheckResult:
    handle = await asyncio.wait_for(service.begin(check_id, await client.offer()), WAIT)
    await client.accept(handle.answer_sdp, handle.answer_type)
    return await asyncio.wait_for(handle.result(), WAIT)


def summarise(measured: Measured) -> dict[str, Any]:
    results = measured.results
    elapsed = [r.elapsed for r in results]
    fps = [float(r.figures["fps"] or 0.0) for r in results]
    return {
        "checks": len(results),
        "passed": sum(r.passed for r in results),
        "reasons": sorted({f.code for r in results for f in r.reasons}),
        "cpu_s_per_check": round(measured.cpu_seconds / len(results), 3),
        "verdict_s_p50": round(statistics.median(elapsed), 3),
        "verdict_s_max": round(max(elapsed), 3),
        "fps_min": round(min(fps), 1),
        "fps_p50": round(statistics.median(fps), 1),
        "video_kbps_p50": _median_figure(results, "video_kbps"),
        "bitrate_kbps_p50": _median_figure(results, "bitrate_kbps"),
    }


def _median_figure(results: list[CheckResult], name: str) -> float | None:
    values = [float(v) for r in results if isinstance(v := r.figures.get(name), int | float)]
    return round(statistics.median(values), 1) if values else None


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    settings = MediaCheckSettings(
        workers=1, per_worker=args.max_concurrency, queue=0, window=args.window
    )
    service = MediaCheckService(settings)
    await service.start()
    try:
        summary: dict[str, Any] = {
            "cpus": os.cpu_count(),
            "window_s": args.window,
            "sent_fps": FPS,
            "per_check": {},
            "concurrency": {},
        }
        for resolution in RESOLUTIONS:
            await run_checks(service, resolution, 1, f"warm-{resolution}")  # warm caches
            runs = [
                await run_checks(service, resolution, 1, f"seq-{resolution}-{i}")
                for i in range(args.checks)
            ]
            merged = Measured(
                results=[r for m in runs for r in m.results],
                cpu_seconds=sum(m.cpu_seconds for m in runs),
                wall_seconds=sum(m.wall_seconds for m in runs),
            )
            summary["per_check"][resolution] = summarise(merged)
        for resolution in args.sweep:
            sweep: list[dict[str, Any]] = []
            per_core = 0
            baseline: float | None = None
            n = 1
            while n <= args.max_concurrency:
                row = {
                    "concurrent": n,
                    **summarise(await run_checks(service, resolution, n, f"{resolution}-x{n}")),
                }
                sweep.append(row)
                baseline = baseline or row["verdict_s_p50"]
                degraded = (
                    row["passed"] < n
                    or row["verdict_s_p50"] > ELAPSED_DEGRADED * baseline
                    or row["fps_min"] < FPS_DEGRADED * FPS
                )
                row["degraded"] = degraded
                if degraded:
                    break
                per_core = n
                n *= 2
            summary["concurrency"][resolution] = {
                "sweep": sweep,
                "concurrent_checks_per_core": per_core,
            }
        return summary
    finally:
        await service.stop()


COMMAND = "mediacheck"
#: ``python -m loadtest all`` runs this benchmark
ALL = True
#: what ``all --quick`` adds to the command line
QUICK_ARGS = ("--quick",)


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checks", type=int, help="sequential checks per resolution (default 3)")
    parser.add_argument("--window", type=float, default=4.0, help="measurement window, seconds")
    parser.add_argument("--max-concurrency", type=int, help="largest N of the sweep (default 8)")
    parser.add_argument("--sweep", nargs="*", default=["480p", "720p"], choices=sorted(RESOLUTIONS))
    parser.add_argument(
        "--quick", action="store_true", help="1 sequential check, sweep up to 4 (unless given)"
    )


def _sizes(args: argparse.Namespace) -> argparse.Namespace:
    """``--quick`` shrinks what was not given explicitly."""
    if args.checks is None:
        args.checks = 1 if args.quick else 3
    if args.max_concurrency is None:
        args.max_concurrency = 4 if args.quick else 8
    return args


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Run the benchmark (progress logs on stderr); its JSON-able summary."""
    # stdout carries the results only; the service's progress logs go to stderr.
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    return asyncio.run(bench(_sizes(args)))


def table(summary: dict[str, Any]) -> str:
    """Markdown: CPU per check at each resolution, then the concurrency sweeps."""
    lines = [
        "| resolution | server CPU s per check | verdict p50 / max (s) | received fps p50 "
        "| video kbps p50 | passed |",
        "|---|---|---|---|---|---|",
    ]
    for name, row in summary["per_check"].items():
        lines.append(
            f"| {name} | {row['cpu_s_per_check']:.3f} | {row['verdict_s_p50']:.2f} / "
            f"{row['verdict_s_max']:.2f} | {row['fps_p50']:.1f} | {_opt(row['video_kbps_p50'])} "
            f"| {row['passed']} / {row['checks']} |"
        )
    lines += [
        "",
        "| resolution | concurrent checks | server CPU s per check | verdict p50 / max (s) "
        "| received fps min | passed | degraded |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, sweep in summary["concurrency"].items():
        for row in sweep["sweep"]:
            lines.append(
                f"| {name} | {row['concurrent']} | {row['cpu_s_per_check']:.3f} "
                f"| {row['verdict_s_p50']:.2f} / {row['verdict_s_max']:.2f} | {row['fps_min']:.1f} "
                f"| {row['passed']} / {row['checks']} | {'yes' if row['degraded'] else 'no'} |"
            )
    per_core = ", ".join(
        f"{name}: {_per_core(sweep)}" for name, sweep in summary["concurrency"].items()
    )
    lines += ["", f"Concurrent checks per core before the verdict degrades: {per_core or 'n/a'}."]
    return "\n".join(lines)


def _per_core(sweep: dict[str, Any]) -> str:
    rows = sweep["sweep"]
    count = sweep["concurrent_checks_per_core"]
    if rows and not rows[-1]["degraded"]:  # the sweep stopped at its largest N, not degraded
        return f">= {count} (the largest N tried)"
    return str(count)


def _opt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f}"


def section(summary: dict[str, Any], argv: list[str] | None) -> str:
    """The "mediacheck" section of docs/benchmarks.md."""
    return f"""\
## Media checks

{report.provenance(argv)}

The real `MediaCheckService` with ONE worker process (one event loop: at most one core
of Python work, plus the decoder's threads) checks synthetic aiortc clients in the
benchmark's process, which replay pre-encoded VP8 at {FPS:g} fps (480p at 1 Mbit/s, 720p at
1.5 Mbit/s, browser-like) and a tone; the window is {summary["window_s"]:g} s. Server CPU
is the worker's utime + stime over the checks. The sweep runs N checks at once (N = 1,
2, 4, ...) and stops at the first N whose verdict p50 is over {ELAPSED_DEGRADED:g}x that of
N = 1, whose slowest check received under {FPS_DEGRADED:.0%} of the frames sent, or where a
check failed: the last N before it is the concurrent checks per core.

{table(summary)}
"""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``mediacheck`` to ``python -m loadtest``."""
    p = sub.add_parser(COMMAND, help="server CPU per media check, concurrent checks per core")
    _arguments(p)
    p.add_argument("--json", action="store_true", help="print the summary as JSON only")
    p.add_argument("--write", metavar="PATH", help="update this markdown file's section")
    p.set_defaults(run=_run)


def _run(args: argparse.Namespace, argv: list[str] | None) -> int:
    summary = measure(args)
    if args.json:
        json.dump(summary, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(table(summary))
    if args.write:
        report.write_section(args.write, COMMAND, section(summary, argv))
        print(f"wrote the {COMMAND} section of {args.write}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    _arguments(parser)
    summary = measure(parser.parse_args(argv))
    json.dump(summary, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":  # required: workers are spawned, which re-imports __main__
    sys.exit(main())
