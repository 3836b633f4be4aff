"""``python -m loadtest`` / ``vestibule loadtest``: the SRE's harness and the benchmarks.

run           load a running deployment (one URL or a cluster's) with scenarios for a
              set time; JSON result, HTML report, SLO gate (docs/loadtest.md)

The benchmark subcommands start their own servers on loopback:

relay         msgs/s and latency at half load, bare relay vs hub, in one invocation
joins         hello with a link token -> welcome, per second and p99, on the hub
              (SQLite; ``--private-redis`` or ``--redis-url`` for Redis)
idle          connections held idle by one process, RSS per connection, vs the bare relay
fanout        presence event -> dashboard subscribers (loadtest.fanout)
mediacheck    server CPU per media check, concurrent checks per core
checks-relay  relay p99 with media checks at capacity, as a ratio to without
crossnode     relay p50 on node A of two + Redis vs one process
failover      time until a SIGKILLed node's room is usable on another (not in ``all``)
peers         bare relay vs PeerJS server vs hub: set-ups, relay, paced CPU, idle RSS
profile       py-spy: where the hub's CPU goes under the joins or the paced load
              (not part of ``all``)
soak          RSS growth of hub nodes on Redis under steady joins for half an hour
              (not in ``all``)
all           every benchmark above in that order (``make bench``); ``--quick`` for a
              shorter run

With ``--write PATH`` a subcommand replaces its own section of that markdown file
(docs/benchmarks.md) and leaves the others alone.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from loadtest import idle, joins, relay, report, run_cli
from loadtest.crossnode import redis_server
from loadtest.targets import TargetError, hub_available


def _default_workers() -> int:
    # the server under test keeps one core; the load gets the rest (at least one)
    return max(1, (os.cpu_count() or 2) - 1)


def _targets(raw: str) -> list[str]:
    names = [name.strip() for name in raw.split(",") if name.strip()]
    unknown = set(names) - {"bare", "hub"}
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"targets are bare and/or hub, not {raw!r}")
    return names


def _add_relay(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("relay", help="relayed msgs/s and half-load latency, bare vs hub")
    p.add_argument("--pairs", type=int, default=50, help="1:1 rooms (default 50)")
    p.add_argument("--seconds", type=float, default=5.0, help="per phase (default 5)")
    p.add_argument("--window", type=int, default=32, help="messages in flight per pair")
    p.add_argument(
        "--targets",
        type=_targets,
        default=["bare", "hub"],
        help="comma-separated: bare,hub (default both)",
    )
    _common(p)
    p.set_defaults(run=_run_relay)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--workers",
        type=int,
        default=_default_workers(),
        help="load processes (default: cores - 1)",
    )
    p.add_argument("--write", metavar="PATH", help="update this markdown file's section")


def _hub_or_skip(targets: list[str]) -> list[str]:
    if "hub" in targets and not hub_available():
        print("hub target skipped: signalling.cli has no loadseed command yet", file=sys.stderr)
        return [t for t in targets if t != "hub"]
    return targets


def _run_relay(args: argparse.Namespace, argv: list[str] | None) -> int:
    opts = relay.RelayOptions(
        pairs=args.pairs, seconds=args.seconds, window=args.window, workers=args.workers
    )
    targets = _hub_or_skip(args.targets)
    figures = relay.run(targets, opts)
    print(relay.table(figures))
    for f in figures:
        if f.lost or f.errors:
            print(
                f"{f.target}: {f.lost} lost, {f.errors} errors (first: {f.first_error})",
                file=sys.stderr,
            )
    if args.write:
        report.write_section(args.write, "relay", relay.section(figures, opts, argv))
        print(f"wrote the relay section of {args.write}")
    return 0


def _add_joins(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("joins", help="hello with a link token -> welcome, per second and p99")
    p.add_argument("--count", type=int, default=2000, help="guests joining (default 2000)")
    p.add_argument("--concurrency", type=int, default=50, help="joins in flight (default 50)")
    store = p.add_mutually_exclusive_group()
    store.add_argument("--redis-url", default="", help="run the hub on this Redis, not SQLite")
    store.add_argument(
        "--private-redis",
        action="store_true",
        help="run the hub on a redis-server of its own, started on a free port for the run",
    )
    _common(p)
    p.set_defaults(run=_run_joins)


def _run_joins(args: argparse.Namespace, argv: list[str] | None) -> int:
    if not hub_available():
        print("joins skipped: signalling.cli has no loadseed command yet", file=sys.stderr)
        return 0
    url: str = args.redis_url
    if args.private_redis:
        with (
            tempfile.TemporaryDirectory(prefix="vestibule-redis-") as tmp,
            redis_server(Path(tmp)) as url,
        ):
            figures = joins.run(args.count, args.concurrency, args.workers, redis_url=url)
    else:
        figures = joins.run(args.count, args.concurrency, args.workers, redis_url=url)
    print(joins.table(figures))
    if figures.first_error:
        print(f"first failure: {figures.first_error}", file=sys.stderr)
    if args.write:
        name = joins.section_name(url)
        report.write_section(args.write, name, joins.section(figures, args.workers, argv))
        print(f"wrote the {name} section of {args.write}")
    return 0


def _add_idle(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("idle", help="idle connections held and RSS per connection, vs bare")
    p.add_argument("--count", type=int, default=19_000, help="connections (default 19000)")
    p.add_argument(
        "--targets",
        type=_targets,
        default=["bare", "hub"],
        help="comma-separated: bare,hub (default both)",
    )
    p.add_argument("--write", metavar="PATH", help="update this markdown file's section")
    p.set_defaults(run=_run_idle)


def _run_idle(args: argparse.Namespace, argv: list[str] | None) -> int:
    figures = idle.run(_hub_or_skip(args.targets), args.count)
    print(idle.table(figures))
    for f in figures:
        if f.first_error:
            print(f"{f.target}: {f.failed} failed, first: {f.first_error}", file=sys.stderr)
    if args.write:
        report.write_section(args.write, "idle", idle.section(figures, argv))
        print(f"wrote the idle section of {args.write}")
    return 0


def _add_all(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("all", help="every benchmark with its default sizes (make bench)")
    p.add_argument(
        "--quick", action="store_true", help="smaller sizes and shorter phases (a few minutes)"
    )
    _common(p)
    p.set_defaults(run=_run_all)


#: ``all --quick``: the built-in benchmarks' smaller sizes (the others bring QUICK_ARGS)
QUICK_RELAY = ("--pairs", "20", "--seconds", "2")
QUICK_JOINS = ("--count", "500")
QUICK_IDLE = ("--count", "2000")


def all_steps(*, quick: bool, write: str | None, workers: int) -> list[list[str]]:
    """The command lines ``all`` runs, in order."""
    extra = ["--workers", str(workers)] if workers != _default_workers() else []
    out = ["--write", write] if write else []

    def sizes(quick_args: Sequence[str]) -> list[str]:
        return list(quick_args) if quick else []

    steps = [
        ["relay", *extra, *sizes(QUICK_RELAY), *out],
        ["joins", *extra, *sizes(QUICK_JOINS), *out],
        ["joins", "--private-redis", *extra, *sizes(QUICK_JOINS), *out],
        ["idle", *sizes(QUICK_IDLE), *out],
    ]
    for bench in optional_benchmarks():
        if bench.in_all:
            steps.append([bench.command, *sizes(bench.quick_args), *out])
        else:
            print(f"all: {bench.command} skipped ({bench.why_not})", file=sys.stderr)
    return steps


def _run_all(args: argparse.Namespace, argv: list[str] | None) -> int:
    failed = []
    began = time.monotonic()
    for step in all_steps(quick=args.quick, write=args.write, workers=args.workers):
        print(f"== {' '.join(step)}", flush=True)
        started = time.monotonic()
        try:
            code = main(step)
        except Exception as exc:  # one broken benchmark must not hide the others' figures
            print(f"{step[0]}: {type(exc).__name__}: {exc}", file=sys.stderr)
            code = 1
        print(f"== {step[0]}: {time.monotonic() - started:.0f} s", flush=True)
        if code != 0:
            failed.append(step[0])
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    print(f"== all: {time.monotonic() - began:.0f} s; load average {load}")
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


Register = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]
#: the subcommands written here; each sets its ``run(args, argv) -> int`` as default
BUILT_IN: tuple[Register, ...] = (
    run_cli.register,
    _add_relay,
    _add_joins,
    _add_idle,
    _add_all,
)

#: benchmarks written in modules of their own, in the order ``all`` runs them, with the
#: command a module without ``register`` gets (its ``main(argv)`` is then forwarded to)
OPTIONAL: dict[str, str] = {
    "loadtest.fanout": "fanout",
    "loadtest.mediacheck_bench": "mediacheck",
    "loadtest.checks_relay": "checks-relay",
    "loadtest.crossnode": "crossnode",
    "loadtest.failover": "failover",
    "loadtest.peers": "peers",
    "loadtest.profile": "profile",
    "loadtest.soak": "soak",
}


@dataclass(frozen=True, slots=True)
class Benchmark:
    """A benchmark module's subcommand, and whether ``all`` runs it."""

    command: str
    register: Register
    in_all: bool
    #: what ``all --quick`` adds to its command line
    quick_args: tuple[str, ...] = ()
    #: a forwarded subcommand hands the rest of the command line to the module's main
    forwarded: bool = False
    why_not: str = ""


@functools.cache
def optional_benchmarks() -> tuple[Benchmark, ...]:
    """The modules of OPTIONAL that import. A module joins through ``register(subparsers)``
    (its subcommand must take ``--write PATH``); with ``ALL = True`` and ``COMMAND`` it is
    run by ``all``, with ``QUICK_ARGS`` added under ``--quick``. A module with only
    ``main(argv)`` becomes a subcommand forwarding its arguments, outside ``all``."""
    found = []
    for name, fallback in OPTIONAL.items():
        try:
            module = importlib.import_module(name)
        except Exception as exc:  # one broken benchmark module must not take the others down
            print(f"loadtest: {name} unavailable ({type(exc).__name__}: {exc})", file=sys.stderr)
            continue
        register = getattr(module, "register", None)
        command = getattr(module, "COMMAND", fallback)
        if callable(register) and isinstance(command, str):
            in_all = getattr(module, "ALL", False) is True
            found.append(
                Benchmark(
                    command=command,
                    register=register,
                    in_all=in_all,
                    quick_args=tuple(getattr(module, "QUICK_ARGS", ())),
                    why_not="" if in_all else f"{name} does not set ALL = True",
                )
            )
        elif callable(getattr(module, "main", None)):
            found.append(
                Benchmark(
                    command=fallback,
                    register=_forwarder(fallback, module.main),
                    in_all=False,
                    forwarded=True,
                    why_not=f"{name} has no register() to write its section yet",
                )
            )
    return tuple(found)


def _forwarder(command: str, target: Callable[[list[str] | None], int]) -> Register:
    def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
        p = sub.add_parser(command, add_help=False, help=f"see {target.__module__}")
        p.add_argument("rest", nargs=argparse.REMAINDER)
        p.set_defaults(run=lambda args, _argv: target(list(args.rest)))

    return register


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m loadtest",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for register in BUILT_IN:
        register(sub)
    for bench in optional_benchmarks():
        bench.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run a benchmark subcommand; ``argv`` excludes the program name."""
    parser = build_parser()
    # a forwarded subcommand's own options (``fanout --events 5``) are not ours to parse
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        forwarded = {b.command for b in optional_benchmarks() if b.forwarded}
        if args.command not in forwarded:
            parser.error(f"unrecognized arguments: {' '.join(unknown)}")
        args.rest = [*unknown, *args.rest]
    run: Callable[[argparse.Namespace, list[str] | None], int] = args.run
    try:
        return run(args, argv)
    except TargetError as exc:
        print(f"loadtest: {exc}", file=sys.stderr)
        return 2
