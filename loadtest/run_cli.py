"""``vestibule loadtest run``: the SRE's command (see docs/loadtest.md).

Exit status: 0 when every objective is met, 1 when one is breached, 2 when the run
could not be made (bad options, the API refused the fixtures, a load process failed).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import Any

import aiohttp

from loadtest import html, results
from loadtest.fixtures import Provisioner, ProvisionError, SeedProvisioner
from loadtest.live import Display
from loadtest.runner import RunError, RunOptions, execute
from loadtest.scenarios import SCENARIOS
from loadtest.slo import SloError, gather
from loadtest.wire import configure_tls

#: ``clinic-day``: a realistic mix, per clinic (``--clinics N`` multiplies the sizes
#: and rates marked True): a flag given on the command line wins over these
CLINIC_DAY = ("join", "call", "lobby", "dashboard", "relay")
CLINIC: dict[str, tuple[float, bool]] = {
    "join_rate": (1.0, True),  # patients and clinicians arriving per second
    "call_rooms": (1, True),  # consulting rooms with calls one after another
    "call_rate": (0.2, False),  # a call set up every 5 s per consulting room
    "lobby_rooms": (2, True),  # waiting rooms
    "lobby_rate": (0.5, False),
    "dashboard_subscribers": (2, True),  # reception and manager screens
    "dashboard_rate": (0.5, True),
    "relay_rooms": (1, True),  # calls in progress, signalling
    "relay_rate": (10.0, False),
}
TUNABLE = (
    "join_rate", "join_max", "relay_rooms", "relay_rate", "dashboard_subscribers",
    "dashboard_rate", "abuse_rate", "max_message", "flood", "resume_rooms", "resume_rate",
    "call_rooms", "call_rate", "lobby_rooms", "lobby_rate", "mediacheck_rate",
)  # fmt: skip


def _scenarios(raw: str) -> list[str]:
    names = [n.strip() for n in raw.split(",") if n.strip()]
    unknown = sorted(set(names) - {*SCENARIOS, "clinic-day"})
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown scenario {', '.join(unknown) or raw!r}; "
            f"built: {', '.join(SCENARIOS)}, clinic-day"
        )
    return names


def tuned(args: argparse.Namespace, clinic_day: bool) -> dict[str, Any]:
    """Each size and rate: the flag if given, else clinic-day's (times --clinics), else
    the default."""
    defaults = RunOptions([], "", [])
    out: dict[str, Any] = {}
    for name in TUNABLE:
        given = getattr(args, name)
        if given is not None:
            out[name] = given
        elif clinic_day and name in CLINIC:
            per_clinic, scaled = CLINIC[name]
            value = per_clinic * args.clinics if scaled else per_clinic
            out[name] = type(getattr(defaults, name))(value)
        else:
            out[name] = getattr(defaults, name)
    return out


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("run", help="load a running deployment; JSON, HTML and an SLO gate")
    p.add_argument(
        "--target",
        action="append",
        required=True,
        metavar="URL",
        help="a node's base URL (repeat for a cluster)",
    )
    p.add_argument(
        "--api-key",
        default=os.environ.get("VESTIBULE_LOADTEST_API_KEY", ""),
        help="an API key of the team to load (or VESTIBULE_LOADTEST_API_KEY)",
    )
    p.add_argument(
        "--jwt-secret",
        default=os.environ.get("VESTIBULE_LOADTEST_JWT_SECRET", ""),
        help="the deployment's jwt_secret, for hosts and dashboards "
        "(or VESTIBULE_LOADTEST_JWT_SECRET)",
    )
    p.add_argument(
        "--scenario",
        action="append",
        type=_scenarios,
        required=True,
        help=f"NAME[,NAME...] of {', '.join(SCENARIOS)}",
    )
    p.add_argument(
        "--seed-file",
        metavar="PATH",
        help="take hosts, rooms and link tokens from this JSON file instead of booking "
        "through the REST API (docs/loadtest.md)",
    )
    p.add_argument("--duration", type=float, default=10.0, help="seconds (default 10)")
    p.add_argument("--workers", type=int, default=1, help="load processes (default 1)")
    p.add_argument("--json", metavar="PATH", help="write the result here")
    p.add_argument("--html", metavar="PATH", help="write the report here")
    p.add_argument(
        "--slo",
        action="append",
        default=[],
        metavar="EXPR",
        help="SCENARIO.FIGURE OP VALUE, e.g. relay.p99_ms<=20 (repeatable)",
    )
    p.add_argument(
        "--slo-file",
        action="append",
        default=[],
        metavar="PATH",
        help="YAML list of expressions (repeatable)",
    )
    p.add_argument(
        "--live",
        choices=("auto", "rich", "plain"),
        default="auto",
        help="live display: rich on a terminal, plain lines otherwise (default auto)",
    )
    d = RunOptions([], "", [])
    for flag, attr, kind, text in (
        ("--join-rate", "join_rate", float, "joins started per second"),
        ("--join-max", "join_max", int, "at most this many joins (meetings booked)"),
        ("--relay-rooms", "relay_rooms", int, "1:1 rooms signalling"),
        (
            "--relay-rate",
            "relay_rate",
            float,
            "messages per second per direction per room (0: flat out)",
        ),
        ("--dashboard-subscribers", "dashboard_subscribers", int, "dashboard connections"),
        ("--dashboard-rate", "dashboard_rate", float, "guests entering per second"),
        ("--abuse-rate", "abuse_rate", float, "abusive acts per second"),
        ("--max-message", "max_message", int, "the server's max_message (oversized = +1)"),
        ("--flood", "flood", int, "pings sent at once by a flood (over the burst)"),
        ("--resume-rooms", "resume_rooms", int, "1:1 rooms whose guest is cut and resumes"),
        ("--resume-rate", "resume_rate", float, "cuts per second per room"),
        ("--call-rooms", "call_rooms", int, "rooms where calls are set up one after another"),
        ("--call-rate", "call_rate", float, "calls started per second per room"),
        ("--lobby-rooms", "lobby_rooms", int, "rooms whose host admits and moves guests"),
        ("--lobby-rate", "lobby_rate", float, "guests arriving per second per room"),
        ("--mediacheck-rate", "mediacheck_rate", float, "media checks started per second"),
    ):
        p.add_argument(
            flag,
            dest=attr,
            type=kind,
            default=None,
            help=f"{text} (default {getattr(d, attr):g})",
        )
    p.add_argument(
        "--ca-file",
        default="",
        metavar="PATH",
        help="PEM certificates to verify https targets against (default: the system's)",
    )
    p.add_argument(
        "--clinics", type=int, default=1, help="clinic-day: clinics to simulate (default 1)"
    )
    p.add_argument(
        "--ramp",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="grow every rate from 0 over the first SECONDS (default 0)",
    )
    p.set_defaults(run=run_command)  # fmt: skip


def run_command(args: argparse.Namespace, argv: list[str] | None) -> int:
    if not args.api_key and not args.seed_file:
        print(
            "loadtest run: --api-key (or VESTIBULE_LOADTEST_API_KEY) or --seed-file is required",
            file=sys.stderr,
        )
        return 2
    try:
        objectives = gather(args.slo, args.slo_file)
    except SloError as exc:
        print(f"loadtest run: {exc}", file=sys.stderr)
        return 2
    chosen: list[str] = []
    clinic_day = False
    for group in args.scenario:
        for name in group:
            clinic_day = clinic_day or name == "clinic-day"
            for each in CLINIC_DAY if name == "clinic-day" else (name,):
                if each not in chosen:
                    chosen.append(each)
    opts = RunOptions(
        targets=list(args.target), api_key=args.api_key or "", seed_file=args.seed_file or "",
        scenarios=chosen,
        duration=args.duration, jwt_secret=args.jwt_secret, workers=max(1, args.workers),
        ramp=max(0.0, args.ramp), ca_file=args.ca_file, **tuned(args, clinic_day),
    )  # fmt: skip
    configure_tls(args.ca_file)
    tty = None if args.live == "auto" else args.live == "rich"
    command = _redacted(["vestibule", "loadtest", *(argv or [])])
    try:
        doc = asyncio.run(_run(opts, objectives, command, tty))
    except (RunError, ProvisionError) as exc:
        print(f"loadtest run: {exc}", file=sys.stderr)
        return 2
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        # a gate must not read "cannot reach the target" as "objective breached" (1)
        print(f"loadtest run: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    if args.json:
        results.write(doc, args.json)
    if args.html:
        html.write(doc, args.html)
    _print_summary(doc)
    return 0 if doc["passed"] else 1


async def _run(
    opts: RunOptions, objectives: Any, command: list[str], tty: bool | None
) -> dict[str, Any]:
    prov: Provisioner | SeedProvisioner = (
        SeedProvisioner.from_path(opts.seed_file)
        if opts.seed_file
        else Provisioner(opts.targets[0], opts.api_key)
    )
    async with prov:
        try:
            with Display(opts.duration, tty=tty) as display:
                outcome = await execute(opts, prov, display.update)
        finally:
            cancelled, failures = await prov.cancel_all()
    outcome.fixtures["cancelled"] = cancelled
    outcome.fixtures["cancel_failures"] = len(failures)
    outcome.fixtures.setdefault("meetings", len(prov.booked))
    return results.build(outcome, opts, objectives, command)


def _redacted(argv: list[str]) -> list[str]:
    """The command line without its secrets (it goes into the result)."""
    out = []
    hide = False
    for arg in argv:
        if hide:
            out.append("***")
            hide = False
        elif arg in ("--api-key", "--jwt-secret"):
            out.append(arg)
            hide = True
        elif arg.startswith(("--api-key=", "--jwt-secret=")):
            out.append(arg.split("=", 1)[0] + "=***")
        else:
            out.append(arg)
    return out


def _print_summary(doc: dict[str, Any]) -> None:
    for name, body in doc["scenarios"].items():
        f = body["figures"]
        extra = {
            k: v
            for k, v in f.items()
            if k
            in ("rate", "lost", "duplicated", "refused", "wrong", "success_rate", "replay_missing")
        }
        shown = " ".join(f"{k}={v:g}" for k, v in extra.items())
        print(f"{name}: {int(f['count'])} measured, p50 {f['p50_ms']:.2f} ms, "
              f"p99 {f['p99_ms']:.2f} ms, max {f['max_ms']:.2f} ms, "
              f"unexpected {int(f['unexpected'])} {shown}")  # fmt: skip
    if doc["harness"]["note"]:
        print(doc["harness"]["note"])
    for v in doc["slo"]:
        actual = "not measured" if v["actual"] is None else f"{v['actual']:g}"
        print(f"SLO {v['objective']}: {actual} {'met' if v['met'] else 'BREACHED'}")
