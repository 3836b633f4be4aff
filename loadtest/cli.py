"""``python -m loadtest`` / ``vestibule loadtest``: the benchmark subcommands.

relay  msgs/s and latency at half load, bare relay vs hub, in one invocation
joins  hello with a link token -> welcome, per second and p99, on the hub
idle   connections held idle by one process, RSS per connection, vs the bare relay
all    every benchmark above (``make bench``)

With ``--write PATH`` a subcommand replaces its own section of that markdown file
(docs/benchmarks.md) and leaves the others alone.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable

from loadtest import idle, joins, relay, report
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
    p.add_argument("--redis-url", default="", help="run the hub on this Redis, not SQLite")
    _common(p)
    p.set_defaults(run=_run_joins)


def _run_joins(args: argparse.Namespace, argv: list[str] | None) -> int:
    if not hub_available():
        print("joins skipped: signalling.cli has no loadseed command yet", file=sys.stderr)
        return 0
    figures = joins.run(args.count, args.concurrency, args.workers, redis_url=args.redis_url)
    print(joins.table(figures))
    if figures.first_error:
        print(f"first failure: {figures.first_error}", file=sys.stderr)
    if args.write:
        report.write_section(
            args.write,
            joins.section_name(args.redis_url),
            joins.section(figures, args.workers, argv),
        )
        print(f"wrote the joins section of {args.write}")
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
    _common(p)
    p.set_defaults(run=_run_all)


def _run_all(args: argparse.Namespace, argv: list[str] | None) -> int:
    extra = ["--workers", str(args.workers)] if args.workers != _default_workers() else []
    write = ["--write", args.write] if args.write else []
    steps = [["relay", *extra, *write], ["joins", *extra, *write], ["idle", *write]]
    steps += [[name, *write] for name in ALL_EXTRA]
    failed = []
    for step in steps:
        print(f"== {' '.join(step)}", flush=True)
        if main(step) != 0:
            failed.append(step[0])
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


Register = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]
#: each benchmark adds its subcommand; its ``run(args, argv) -> int`` is set as default
REGISTRY: list[Register] = [_add_relay, _add_joins, _add_idle, _add_all]
#: subcommands that ``all`` runs after relay, joins and idle (with ``--write`` only);
#: filled by optional benchmark modules below
ALL_EXTRA: list[str] = []


#: benchmarks written in their own modules with their own ``main(argv) -> int``: the
#: subcommand hands them the rest of the command line
FORWARDED = {"mediacheck": "loadtest.mediacheck_bench", "crossnode": "loadtest.crossnode"}


def _optional_benchmarks() -> None:
    """Benchmarks written elsewhere join either through ``register(subparsers)`` (a
    module may also set ``ALL = True`` and ``COMMAND`` to be run by ``all``), or, for
    the modules in FORWARDED, as a subcommand forwarding its arguments to ``main``."""
    for command, name in FORWARDED.items():
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        register = getattr(module, "register", None)
        if callable(register):
            if register not in REGISTRY:
                REGISTRY.append(register)
                if getattr(module, "ALL", False) and isinstance(module.COMMAND, str):
                    ALL_EXTRA.append(module.COMMAND)
        elif callable(getattr(module, "main", None)) and command not in _FORWARD_ADDED:
            _FORWARD_ADDED.add(command)
            REGISTRY.append(_forwarder(command, module.main))


_FORWARD_ADDED: set[str] = set()


def _forwarder(command: str, target: Callable[[list[str] | None], int]) -> Register:
    def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
        p = sub.add_parser(command, add_help=False, help=f"see {target.__module__}")
        p.add_argument("rest", nargs=argparse.REMAINDER)
        p.set_defaults(run=lambda args, _argv: target(list(args.rest)))

    return register


def build_parser() -> argparse.ArgumentParser:
    _optional_benchmarks()
    parser = argparse.ArgumentParser(
        prog="python -m loadtest",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for register in REGISTRY:
        register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run a benchmark subcommand; ``argv`` excludes the program name."""
    parser = build_parser()
    # a forwarded subcommand's own options (``crossnode --pairs 5``) are not ours to parse
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        if args.command not in FORWARDED:
            parser.error(f"unrecognized arguments: {' '.join(unknown)}")
        args.rest = [*unknown, *args.rest]
    run: Callable[[argparse.Namespace, list[str] | None], int] = args.run
    try:
        return run(args, argv)
    except TargetError as exc:
        print(f"loadtest: {exc}", file=sys.stderr)
        return 2
