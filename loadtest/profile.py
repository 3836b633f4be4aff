"""Where the hub's CPU goes: py-spy samples the hub while a benchmark load runs.

``python -m loadtest profile joins`` (guests redeeming link tokens, as ``joins``)
or ``python -m loadtest profile paced`` (pairs relaying at a fixed rate, as the paced
phase of ``peers``) starts the hub, attaches ``py-spy record`` to it for the length
of the load (py-spy is a test extra: ``pip install -e .[test]``), and prints, from the
samples (every thread; samples where the loop waits in ``epoll`` are not taken):

- each function's share of the samples it is on the stack of (inclusive), and
- each function's share of the samples it is on top of (self time),

per unit of work: the hub's CPU over the load divided by the joins or messages, so
"15 %" of a 1.2 ms join reads as 0.18 ms. ``--out DIR`` keeps py-spy's raw collapsed
stacks (``NAME.txt``, one stack and its count a line) for a flame graph tool.
"""

from __future__ import annotations

import argparse
import collections
import math
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from loadtest.crossnode import redis_server
from loadtest.driver import WorkerPool, split
from loadtest.joins import join_guests
from loadtest.loads import paced
from loadtest.pairs import HubPairSpec, open_pairs
from loadtest.relay import RelayOptions, run_phase
from loadtest.targets import Server, TargetError, hub

COMMAND = "profile"
#: samples per second (py-spy's default is 100: too few for a few seconds of load)
RATE = 400
TOP = 25


@dataclass(frozen=True, slots=True)
class Profile:
    """Samples aggregated per function (``name (file)``)."""

    samples: int
    inclusive: dict[str, int]
    self_time: dict[str, int]


def _function(frame: str) -> str:
    """``name (path/to/file.py:123)`` -> ``name (path/to/file.py)``: lines merged."""
    name, _, where = frame.partition(" (")
    file = where.rstrip(")").rsplit(":", 1)[0]
    return f"{name} ({file})" if file else name


def parse(lines: Iterable[str]) -> Profile:
    """Aggregate py-spy's raw output (``frame;frame;... COUNT`` per line, root first)."""
    inclusive: collections.Counter[str] = collections.Counter()
    self_time: collections.Counter[str] = collections.Counter()
    total = 0
    for raw in lines:
        line = raw.rstrip("\n")
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_function(f) for f in stack.split(";") if f]
        if not frames:
            continue
        total += count
        for fn in set(frames):
            inclusive[fn] += count
        self_time[frames[-1]] += count
    return Profile(total, dict(inclusive), dict(self_time))


def summary(profile: Profile, unit_ms: float, unit: str, top: int = TOP) -> str:
    """Two markdown tables: inclusive and self shares, with the ms per ``unit`` each is."""

    def table(title: str, counts: dict[str, int]) -> list[str]:
        rows = sorted(counts.items(), key=lambda kv: kv[1], reverse=True)[:top]
        out = [f"| {title} | share | ms per {unit} |", "|---|---|---|"]
        for fn, count in rows:
            share = count / profile.samples if profile.samples else math.nan
            out.append(f"| `{fn}` | {share:.1%} | {share * unit_ms:.3f} |")
        return out

    lines = [
        f"{profile.samples} samples; the hub's CPU was {unit_ms:.3f} ms per {unit}.",
        "",
        *table("on the stack (inclusive)", profile.inclusive),
        "",
        *table("on top (self)", profile.self_time),
    ]
    return "\n".join(lines)


class Recorder:
    """``py-spy record`` attached to a process until stopped (SIGINT makes it write)."""

    def __init__(self, pid: int, out: Path, rate: int = RATE) -> None:
        binary = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        if not Path(binary).exists():
            raise TargetError("py-spy is not installed (pip install -e .[test])")
        self.out = out
        argv = [binary, "record", "-p", str(pid), "-f", "raw", "-r", str(rate), "-o", str(out)]
        self._log = open(out.with_suffix(".log"), "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(  # noqa: S603 - py-spy from the venv, fixed arguments
            [*argv, "--nonblocking"], stdout=self._log, stderr=subprocess.STDOUT
        )

    def stop(self) -> Profile:
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(60)
        finally:
            self._log.close()
        if not self.out.exists():
            log = self.out.with_suffix(".log").read_text(errors="replace")[-2000:]
            raise TargetError(f"py-spy wrote no profile: {log}")
        with open(self.out, encoding="utf-8", errors="replace") as raw:
            return parse(raw)


#: py-spy needs a moment to attach before the load starts
ATTACH_SECONDS = 1.0


def _attach(server: Server, out: Path) -> Recorder:
    recorder = Recorder(server.process.pid, out)
    time.sleep(ATTACH_SECONDS)  # py-spy cannot tell us it attached
    return recorder


def profile_joins(
    workdir: Path, count: int, concurrency: int, out: Path, redis_url: str = ""
) -> tuple[Profile, float]:
    """Profile ``count`` guest joins (on SQLite, or on ``redis_url``); the profile
    and the hub's CPU ms per join."""
    with (
        hub(workdir, rooms=count, redis_url=redis_url) as (server, seeded),
        WorkerPool(1) as pool,
    ):
        tokens = [room.token for room in seeded.rooms[:count]]
        recorder = _attach(server, out)
        cpu0 = server.cpu_seconds()
        batches = pool.call(
            join_guests,
            [(server.host, server.port, part, concurrency, 0) for part in split(tokens, 1)],
            timeout=60 + count,
        )
        cpu = server.cpu_seconds() - cpu0
        prof = recorder.stop()
    ok = sum(b.ok for b in batches)
    return prof, cpu / max(1, ok) * 1000


def profile_paced(
    workdir: Path, pairs: int, rate: int, seconds: float, out: Path
) -> tuple[Profile, float]:
    """Profile ``pairs`` pairs relaying ``rate`` msgs/s; the profile and CPU ms per message."""
    opts = RelayOptions(pairs=pairs, seconds=seconds, warmup=0.5, workers=1)
    with hub(workdir, rooms=pairs) as (server, seeded), WorkerPool(1) as pool:
        specs = [
            HubPairSpec(slug=r.slug, host_jwt=server.mint_jwt(r.host_id), guest_token=r.token)
            for r in seeded.rooms[:pairs]
        ]
        pool.call(open_pairs, [(server.host, server.port, specs)], timeout=60 + pairs)
        recorder = _attach(server, out)
        results, cores = run_phase(pool, server, paced, opts, (rate / 2 / pairs,))
        prof = recorder.stop()
    received = sum(r.received for r in results)
    return prof, cores * seconds / max(1, received) * 1000


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(COMMAND, help="py-spy profile of the hub under the joins or paced load")
    p.add_argument("load", choices=("joins", "paced"))
    p.add_argument("--count", type=int, default=3000, help="joins (default 3000)")
    p.add_argument("--concurrency", type=int, default=50, help="joins in flight (default 50)")
    p.add_argument("--pairs", type=int, default=50, help="pairs, paced (default 50)")
    p.add_argument("--rate", type=int, default=20000, help="msgs/s, paced (default 20000)")
    p.add_argument("--seconds", type=float, default=10.0, help="paced (default 10)")
    p.add_argument("--top", type=int, default=TOP, help=f"rows per table (default {TOP})")
    p.add_argument("--out", metavar="DIR", help="keep py-spy's raw stacks here")
    p.add_argument(
        "--private-redis",
        action="store_true",
        help="joins: the hub on a redis-server of its own (default: SQLite)",
    )
    p.set_defaults(run=_run)


def _run(args: argparse.Namespace, _argv: list[str] | None) -> int:
    with tempfile.TemporaryDirectory(prefix="vestibule-profile-") as tmp:
        keep = Path(args.out) if args.out else Path(tmp)
        keep.mkdir(parents=True, exist_ok=True)
        out = keep / f"{args.load}.txt"
        workdir = Path(tmp) / "hub"
        workdir.mkdir()
        if args.load == "joins" and args.private_redis:
            with redis_server(Path(tmp)) as url:
                prof, unit_ms = profile_joins(workdir, args.count, args.concurrency, out, url)
            unit = "join"
        elif args.load == "joins":
            prof, unit_ms = profile_joins(workdir, args.count, args.concurrency, out)
            unit = "join"
        else:
            prof, unit_ms = profile_paced(workdir, args.pairs, args.rate, args.seconds, out)
            unit = "message"
        print(summary(prof, unit_ms, unit, args.top))
    return 0
