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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--checks", type=int, default=3, help="sequential checks per resolution")
    parser.add_argument("--window", type=float, default=4.0, help="measurement window, seconds")
    parser.add_argument("--max-concurrency", type=int, default=8)
    parser.add_argument("--sweep", nargs="*", default=["480p", "720p"], choices=sorted(RESOLUTIONS))
    args = parser.parse_args(argv)
    # stdout carries the JSON summary only; progress logs go to stderr.
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    summary = asyncio.run(bench(args))
    json.dump(summary, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":  # required: workers are spawned, which re-imports __main__
    sys.exit(main())
