"""Cross-node relay: what scale-out costs on the relay path.

One invocation loads a single hub process (SQLite, in-process bus), then node A
of a two-node deployment sharing a private redis-server, with both peers of
every pair on node A (a room lives on one node: docs/decisions.md; node B runs
beside it). Both targets get the same offered load, paced (loads.paced: each A
sends at a fixed rate, B answers each at once), far below either's maximum, so
the latencies compare the paths and not how close each ran to saturation. The
figure is node A's p50 minus the single process's (docs/benchmarks.md, "Targets": at most
1 ms); it is expected to be about 0, since relay never touches Redis when
rooms are co-located.

``python -m loadtest.crossnode [--pairs N] [--rate R] [--seconds S] [--json]``, or
``python -m loadtest crossnode [...] [--quick] [--write PATH]`` (its docs/benchmarks.md section).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import redis

from loadtest import loads, report
from loadtest.driver import WorkerPool, split
from loadtest.loads import PhaseResult
from loadtest.pairs import HubPairSpec, PairSpec, open_pairs
from loadtest.relay import START_MARGIN_NS
from loadtest.stats import Latency, merge
from loadtest.targets import (
    HOST,
    READY_TIMEOUT,
    STOP_GRACE,
    Seed,
    Server,
    TargetError,
    free_port,
    hub,
    hub_env,
    log_tail,
    ready,
    seed,
)

#: the default Redis port: a developer's own Redis (or another run's) may live there
SHARED_REDIS_PORT = 6379
#: docs/benchmarks.md, "Targets": cross-node relay p50 overhead over one process
P50_OVERHEAD_TARGET_MS = 1.0


@dataclass(frozen=True, slots=True)
class CrossnodeOptions:
    pairs: int = 20
    #: messages per second each A sends (B answers each): 20 pairs x 50/s x 2 legs is
    #: 2,000 relayed msgs/s, well under a hub's maximum even on a busy 2-core machine
    rate_per_pair: float = 50.0
    seconds: float = 5.0
    warmup: float = 0.5
    workers: int = 1


@dataclass(frozen=True, slots=True)
class Figures:
    """One target at the common offered load."""

    target: str
    offered: float
    relayed: float
    server_cpu: float
    latency: Latency
    lost: int
    errors: int


def measure(server: Server, specs: list[PairSpec], opts: CrossnodeOptions) -> Figures:
    """Open ``specs`` as pairs on ``server`` and run the paced load on them."""
    workers = max(1, min(opts.workers, len(specs)))
    with WorkerPool(workers) as pool:
        parts = split(specs, workers)
        pool.call(
            open_pairs,
            [(server.host, server.port, part) for part in parts],
            timeout=60 + len(specs),
        )
        start = time.monotonic_ns() + START_MARGIN_NS
        warm = int(opts.warmup * 1e9)
        per_worker = [(start, warm, opts.seconds, opts.rate_per_pair)] * pool.size
        pool.submit(loads.paced, per_worker)
        time.sleep(max(0.0, (start + warm - time.monotonic_ns()) / 1e9))
        cpu0 = server.cpu_seconds()
        time.sleep(opts.seconds)
        cpu1 = server.cpu_seconds()
        results: list[PhaseResult] = pool.collect(timeout=opts.warmup + opts.seconds + 60)
        server.check_alive()
    return Figures(
        target=server.name,
        offered=opts.rate_per_pair * 2 * len(specs),
        relayed=sum(r.received for r in results) / opts.seconds,
        server_cpu=(cpu1 - cpu0) / opts.seconds,
        latency=Latency.of(merge(r.latencies for r in results)),
        lost=sum(r.lost for r in results),
        errors=sum(r.errors for r in results),
    )


def _specs(server: Server, seeded: Seed, pairs: int) -> list[PairSpec]:
    return [
        HubPairSpec(slug=r.slug, host_jwt=server.mint_jwt(r.host_id), guest_token=r.token)
        for r in seeded.rooms[:pairs]
    ]


@contextlib.contextmanager
def redis_server(workdir: Path) -> Iterator[str]:
    """A private redis-server (no persistence) on a free port; its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise TargetError("redis-server is not installed")
    port = free_port()
    while port == SHARED_REDIS_PORT:  # never the machine's own Redis, even if it is down
        port = free_port()
    argv = [binary, "--port", str(port), "--bind", HOST, "--dir", str(workdir)]
    with open(workdir / "redis.log", "wb") as log:
        proc = subprocess.Popen(  # noqa: S603 - the redis-server found on PATH
            [*argv, "--save", "", "--appendonly", "no"], stdout=log, stderr=subprocess.STDOUT
        )
    url = f"redis://{HOST}:{port}/0"
    try:
        client = redis.Redis.from_url(url, socket_timeout=1.0)
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise TargetError("redis-server did not start") from None
                time.sleep(0.05)  # polling a subprocess that cannot notify us
            finally:
                client.close()
        yield url
    finally:
        _stop(proc)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(STOP_GRACE)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(STOP_GRACE)


@contextlib.contextmanager
def redis_nodes(
    workdir: Path, redis_url: str, *, count: int, rooms: int
) -> Iterator[tuple[list[Server], Seed]]:
    """``count`` hub processes on ``redis_url``, after seeding ``rooms`` rooms into it."""
    jwt_secret = secrets.token_urlsafe(32)
    env = hub_env(jwt_secret)
    seeded = seed(workdir / "unused.sqlite3", rooms, env, redis_url)
    servers: list[Server] = []
    try:
        for index in range(count):
            servers.append(spawn_node(workdir, redis_url, env, f"node{index}"))
        for server in servers:
            wait_ready(server)
        yield servers, seeded
    finally:
        for server in servers:
            _stop(server.process)


def spawn_node(workdir: Path, redis_url: str, env: dict[str, str], name: str) -> Server:
    """One hub process on ``redis_url`` (not yet ready: see :func:`wait_ready`)."""
    port = free_port()
    argv = [
        sys.executable,
        *("-m", "signalling.cli", "serve", "--redis", redis_url),
        *("--host", HOST, "--port", str(port), "--no-demo"),
        *("--public-url", f"http://{HOST}:{port}"),
    ]
    log_path = workdir / f"{name}.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env
        )
    return Server(name, HOST, port, proc, log_path, env["VESTIBULE_JWT_SECRET"])


def wait_ready(server: Server) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while not ready(server.port):
        server.check_alive()
        if time.monotonic() > deadline:
            raise TargetError(f"{server.name} not ready: {log_tail(server)}")
        time.sleep(0.05)  # polling a subprocess that cannot notify us


def stop(server: Server) -> None:
    """SIGTERM, then SIGKILL after the grace period."""
    _stop(server.process)


def run_single(workdir: Path, opts: CrossnodeOptions) -> Figures:
    """One hub process (the embedded default: SQLite, in-process bus)."""
    with hub(workdir, rooms=opts.pairs) as (server, seeded):
        return measure(server, _specs(server, seeded, opts.pairs), opts)


def run_cluster(workdir: Path, opts: CrossnodeOptions) -> Figures:
    """Node A of two nodes sharing Redis, both peers of each pair on A."""
    with (
        redis_server(workdir) as url,
        redis_nodes(workdir, url, count=2, rooms=opts.pairs) as (servers, seeded),
    ):
        node_a = servers[0]
        return measure(node_a, _specs(node_a, seeded, opts.pairs), opts)


def run(opts: CrossnodeOptions | None = None) -> dict[str, Any]:
    """Single process, then two nodes + Redis; the figures and the p50 overhead."""
    opts = opts or CrossnodeOptions()
    with tempfile.TemporaryDirectory(prefix="vestibule-crossnode-") as tmp:
        single = run_single(Path(tmp), opts)
        cluster = run_cluster(Path(tmp), opts)
    overhead = cluster.latency.p50 - single.latency.p50
    return {
        "options": asdict(opts),
        "single": _figures(single),
        "cluster": _figures(cluster),
        "p50_overhead_ms": round(overhead, 3),
        "target_ms": P50_OVERHEAD_TARGET_MS,
        "met": overhead <= P50_OVERHEAD_TARGET_MS,
    }


def _figures(f: Figures) -> dict[str, Any]:
    return {
        "offered_msgs_per_s": round(f.offered, 1),
        "relayed_msgs_per_s": round(f.relayed, 1),
        "server_cpu": round(f.server_cpu, 3),
        "p50_ms": round(f.latency.p50, 3),
        "p90_ms": round(f.latency.p90, 3),
        "p99_ms": round(f.latency.p99, 3),
        "samples": f.latency.count,
        "lost": f.lost,
        "errors": f.errors,
    }


def table(result: dict[str, Any]) -> str:
    """The markdown table: single process vs node A of two, and the p50 overhead."""
    s, c = result["single"], result["cluster"]
    rows = [
        "| figure | one process | node A of two + Redis |",
        "|---|---|---|",
        f"| offered / relayed msgs/s | {report.fmt(s['offered_msgs_per_s'])} / "
        f"{report.fmt(s['relayed_msgs_per_s'])} | {report.fmt(c['offered_msgs_per_s'])} / "
        f"{report.fmt(c['relayed_msgs_per_s'])} |",
        f"| server CPU (cores) | {s['server_cpu']:.3f} | {c['server_cpu']:.3f} |",
        f"| p50 (ms) | {s['p50_ms']:.3f} | {c['p50_ms']:.3f} |",
        f"| p90 (ms) | {s['p90_ms']:.3f} | {c['p90_ms']:.3f} |",
        f"| p99 (ms) | {s['p99_ms']:.3f} | {c['p99_ms']:.3f} |",
        f"| latency samples | {s['samples']} | {c['samples']} |",
        f"| lost / error messages | {s['lost']} / {s['errors']} | {c['lost']} / {c['errors']} |",
    ]
    verdict = report.verdict(bool(result["met"]))
    rows.append(
        f"\np50 overhead: {result['p50_overhead_ms']:+.3f} ms "
        f"(target <= {result['target_ms']} ms): {verdict}"
    )
    return "\n".join(rows)


def section(result: dict[str, Any], argv: list[str] | None) -> str:
    """The "crossnode" section of docs/benchmarks.md."""
    o = result["options"]
    return f"""\
## Cross-node relay

{report.provenance(argv)}

{o["pairs"]} pairs, each host sending {o["rate_per_pair"]:g} msgs/s and each guest answering
every one, {o["seconds"]:g} s counted after {o["warmup"]:g} s of warm-up, {o["workers"]} load
process(es): first on one hub process (SQLite, in-process bus), then on node A of two hub
processes sharing a private redis-server (started on a free loopback port for the run),
both peers of every pair on node A (a room lives on one node). The same offered load,
far below either's maximum, so the latencies compare the paths, not the saturation.

{table(result)}
"""


COMMAND = "crossnode"
#: ``python -m loadtest all`` runs this benchmark
ALL = True
#: what ``all --quick`` adds to the command line
QUICK_ARGS = ("--quick",)
#: the sizes of ``--quick``
QUICK = CrossnodeOptions(pairs=10, seconds=2.0)


def _arguments(parser: argparse.ArgumentParser) -> None:
    d = CrossnodeOptions()
    parser.add_argument("--pairs", type=int, help=f"default {d.pairs}, quick {QUICK.pairs}")
    parser.add_argument(
        "--seconds", type=float, help=f"default {d.seconds:g}, quick {QUICK.seconds:g}"
    )
    parser.add_argument("--rate", type=float, default=d.rate_per_pair, help="per pair")
    parser.add_argument("--workers", type=int, default=d.workers)
    parser.add_argument("--json", action="store_true", help="print the result as JSON only")
    parser.add_argument("--quick", action="store_true", help="fewer pairs, shorter phases")


def _options(args: argparse.Namespace) -> CrossnodeOptions:
    sizes = QUICK if args.quick else CrossnodeOptions()
    return CrossnodeOptions(
        pairs=args.pairs or sizes.pairs,
        rate_per_pair=args.rate,
        seconds=args.seconds or sizes.seconds,
        workers=args.workers,
    )


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``crossnode`` to ``python -m loadtest``."""
    p = sub.add_parser(COMMAND, help="relay p50 on node A of two + Redis vs one process")
    _arguments(p)
    p.add_argument("--write", metavar="PATH", help="update this markdown file's section")
    p.set_defaults(run=_run)


def _run(args: argparse.Namespace, argv: list[str] | None) -> int:
    result = run(_options(args))
    print(json.dumps(result, indent=None if args.json else 2))
    if not args.json:
        print(table(result))
    if args.write:
        report.write_section(args.write, COMMAND, section(result, argv))
        print(f"wrote the {COMMAND} section of {args.write}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtest.crossnode", description=__doc__)
    _arguments(parser)
    args = parser.parse_args(argv)
    args.write = None
    return _run(args, argv)


if __name__ == "__main__":
    sys.exit(main())
