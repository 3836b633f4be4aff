"""``loadtest run``: provision, start the load processes, watch, merge, judge, clean up.

The orchestrating process provisions the fixtures (loadtest.fixtures), deals them out
to ``workers`` spawned load processes, and then:

1. every process sets its scenarios up (hosts in rooms, guests admitted, dashboards
   subscribed) and says ``ready``;
2. the orchestrator scrapes every target's ``/metrics`` once, picks the run's origin
   (CLOCK_MONOTONIC, shared by every process on the machine) and sends ``go``;
3. processes run their scenarios until the end, sending progress once a second (the
   live display), then drain and send their tallies (HDR histograms encoded);
4. the orchestrator scrapes again, merges the histograms, computes the figures,
   judges the SLOs, writes JSON and HTML and cancels every meeting it booked.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import multiprocessing
import os
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from typing import Any

from loadtest import scenarios as sc
from loadtest.bare_relay import loop_factory, raise_open_files_limit
from loadtest.fixtures import Booking, Fixtures, Provisioner, SeedProvisioner, mint_jwt
from loadtest.recorder import Recorder, progress_figures
from loadtest.scrape import Scraper
from loadtest.wire import Entered, configure_tls

#: seconds a load process may take to set its scenarios up
SETUP_TIMEOUT = 120.0


class RunError(RuntimeError):
    """The run could not start (bad options, provisioning, a load process failed)."""


@dataclass(slots=True)
class RunOptions:
    targets: list[str]
    api_key: str
    scenarios: list[str]
    duration: float = 10.0
    jwt_secret: str = ""
    #: fixtures from this seed file instead of the REST API (loadtest.fixtures)
    seed_file: str = ""
    workers: int = 1
    join_rate: float = 50.0
    join_max: int = 5000
    relay_rooms: int = 10
    relay_rate: float = 20.0
    dashboard_subscribers: int = 10
    dashboard_rate: float = 5.0
    abuse_rate: float = 4.0
    max_message: int = 65536
    flood: int = 250
    resume_rooms: int = 5
    resume_rate: float = 1.0
    call_rooms: int = 4
    call_rate: float = 1.0
    lobby_rooms: int = 2
    lobby_rate: float = 2.0
    mediacheck_rate: float = 0.5
    #: seconds over which every schedule grows from 0 to its rate
    ramp: float = 0.0
    #: PEM certificates https targets are verified against ("" = the system's)
    ca_file: str = ""


@dataclass(slots=True)
class WorkerPlan:
    index: int
    targets: list[str]
    ramp_ns: int = 0
    ca_file: str = ""
    join: sc.JoinShare | None = None
    relay: sc.PairShare | None = None
    resume: sc.PairShare | None = None
    dashboard: sc.DashboardShare | None = None
    abuse: sc.AbuseShare | None = None
    call: sc.RoomShare | None = None
    lobby: sc.RoomShare | None = None
    mediacheck: sc.MediaShare | None = None


@dataclass(slots=True)
class Provisioned:
    fixtures: Fixtures
    plans: list[WorkerPlan]


def _deal(items: list[Any], parts: int) -> list[list[Any]]:
    return [items[i::parts] for i in range(parts)]


async def provision(opts: RunOptions, prov: Provisioner | SeedProvisioner) -> Provisioned:
    """Book what the chosen scenarios need and deal it out to the load processes."""
    chosen = set(opts.scenarios)
    if chosen & sc.NEEDS_STAFF and not opts.jwt_secret:
        raise RunError(
            f"{', '.join(sorted(chosen & sc.NEEDS_STAFF))} need hosts: give --jwt-secret "
            "(the deployment's jwt_secret; an API key cannot host)"
        )
    hosts = await prov.hosts()
    relay_n = opts.relay_rooms if "relay" in chosen else 0
    resume_n = opts.resume_rooms if "resume" in chosen else 0
    call_n = opts.call_rooms if "call" in chosen else 0
    lobby_n = opts.lobby_rooms if "lobby" in chosen else 0
    # the load-test rooms, in this order: a room per pair, call and lobby; 4 rooms that
    # joins share, and one each for the dashboard's meetings, abuse and media checks
    layout = {
        "relay": relay_n,
        "resume": resume_n,
        "join": 4,
        "dashboard": 1,
        "abuse": 1,
        "call": call_n,
        "lobby": lobby_n,
        "mediacheck": 1,
    }
    rooms = await prov.rooms(sum(layout.values()))
    slices: dict[str, list[str]] = {}
    at = 0
    for name, n in layout.items():
        slices[name] = rooms[at : at + n]
        at += n

    def host_of(i: int) -> str:
        return hosts[i % len(hosts)].id

    jwts = {h.id: mint_jwt(opts.jwt_secret, h.id) for h in hosts} if opts.jwt_secret else {}
    plans = [
        WorkerPlan(i, opts.targets, int(opts.ramp * 1e9), opts.ca_file) for i in range(opts.workers)
    ]
    w = opts.workers
    index = 0

    async def book(plan: list[tuple[str, str]]) -> list[Booking]:
        nonlocal index
        made = await prov.book(plan, index)
        index += len(plan)
        return made

    if "join" in chosen:
        count = min(opts.join_max, math.ceil(opts.join_rate * opts.duration))
        join_rooms = slices["join"]
        made = await book([(join_rooms[i % 4], host_of(i)) for i in range(count)])
        # every (clinician, room) to one process only: a second hello of the same
        # clinician into the same room would take the first one's session over
        staff = [(jwts[h.id], room) for h in hosts for room in join_rooms] if jwts else []
        for plan, part, logins in zip(plans, _deal(made, w), _deal(staff, w), strict=True):
            plan.join = sc.JoinShare([(b.token, b.room) for b in part], logins, opts.join_rate / w)
    for name, n, rate in (
        ("relay", relay_n, opts.relay_rate),
        ("resume", resume_n, opts.resume_rate),
    ):
        if n == 0:
            continue
        made = await book([(slices[name][i], host_of(i)) for i in range(n)])
        triples = [(jwts[b.host], b.room, b.token) for b in made]
        for plan, part in zip(plans, _deal(triples, w), strict=True):
            setattr(plan, name, sc.PairShare(part, rate))
    room_scenarios = (("call", call_n, opts.call_rate), ("lobby", lobby_n, opts.lobby_rate))
    for name, n, rate in room_scenarios:
        if n == 0:
            continue
        per_room = math.ceil(rate * opts.duration) + 1
        made = await book(
            [(slices[name][i], host_of(i)) for i in range(n) for _ in range(per_room)]
        )
        by_room = [
            (
                jwts[host_of(i)],
                slices[name][i],
                [b.token for b in made[i * per_room : (i + 1) * per_room]],
            )
            for i in range(n)
        ]
        for plan, part in zip(plans, _deal(by_room, w), strict=True):
            setattr(plan, name, sc.RoomShare(part, rate, slices[name]))
    if "mediacheck" in chosen:
        count = max(1, math.ceil(opts.mediacheck_rate * opts.duration))
        room = slices["mediacheck"][0]
        made = await book([(room, host_of(0))] * count)
        for plan, part in zip(plans, _deal(made, w), strict=True):
            plan.mediacheck = sc.MediaShare(
                [(b.token, b.room) for b in part], opts.mediacheck_rate / w
            )
    if "dashboard" in chosen:
        count = max(1, math.ceil(opts.dashboard_rate * opts.duration))
        host = hosts[0].id
        room = slices["dashboard"][0]
        made = await book([(room, host)] * count)
        meetings = {b.id: i for i, b in enumerate(made)}
        subs = [jwts[host]] * opts.dashboard_subscribers
        guests = [(i, b.id, b.token) for i, b in enumerate(made)]
        for plan, sub_part, guest_part in zip(plans, _deal(subs, w), _deal(guests, w), strict=True):
            plan.dashboard = sc.DashboardShare(sub_part, guest_part, meetings, opts.dashboard_rate)
    if "abuse" in chosen:
        room = slices["abuse"][0]
        count = math.ceil(opts.abuse_rate * opts.duration / len(sc.ABUSE_ACTS)) + 1
        made = await book([(room, host_of(0))] * count)
        for plan, part in zip(plans, _deal(made, w), strict=True):
            plan.abuse = sc.AbuseShare(
                [b.token for b in part], room, jwts[host_of(0)], opts.abuse_rate / w,
                opts.max_message, opts.flood,
                # one process floods, one flood at a time: the flooding clinician's
                # sessions in the abuse room never take each other over
                floods=plan.index == 0,
            )  # fmt: skip
    fixtures = Fixtures(hosts, rooms)
    return Provisioned(fixtures, plans)


# -- the load process -----------------------------------------------------------------


def _worker_main(conn: Connection, plan: WorkerPlan) -> None:
    raise_open_files_limit()
    factory = loop_factory()
    loop = factory() if factory is not None else asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        loop.run_until_complete(_worker(conn, plan))
    except Exception:  # everything goes back to the orchestrator
        conn.send(("error", traceback.format_exc()))
    finally:
        loop.close()


async def _worker(conn: Connection, plan: WorkerPlan) -> None:
    loop = asyncio.get_running_loop()
    sc.RAMP_NS = plan.ramp_ns
    configure_tls(plan.ca_file)
    tallies: dict[str, sc.Tally] = {}

    def tally(name: str) -> sc.Tally:
        return tallies.setdefault(name, sc.Tally(name, Recorder()))

    relay_pairs: list[sc.Pair] = []
    resume_pairs: list[sc.Pair] = []
    subs: list[sc.Subscriber] = []
    spent: list[str] = []
    if plan.join:
        tally("join")
    if plan.mediacheck:
        tally("mediacheck")

    async def setup_relay() -> None:
        if plan.relay:
            relay_pairs.extend(await sc.setup_pairs(plan.relay, plan.targets, tally("relay")))

    async def setup_resume() -> None:
        if plan.resume:
            resume_pairs.extend(await sc.setup_pairs(plan.resume, plan.targets, tally("resume")))

    async def setup_dashboard() -> None:
        if plan.dashboard:
            subs.extend(await sc.setup_dashboard(plan.dashboard, plan.targets, tally("dashboard")))

    call_hosts: list[Entered | None] = []
    lobby_hosts: list[Entered | None] = []

    async def setup_call() -> None:
        if plan.call:
            call_hosts.extend(await sc.setup_hosts(plan.call, plan.targets, tally("call")))

    async def setup_lobby() -> None:
        if plan.lobby:
            lobby_hosts.extend(await sc.setup_hosts(plan.lobby, plan.targets, tally("lobby")))

    async def setup_abuse() -> None:
        if plan.abuse:
            spent.extend(await sc.setup_abuse(plan.abuse, plan.targets, tally("abuse")))

    await asyncio.gather(
        setup_relay(), setup_resume(), setup_dashboard(), setup_abuse(), setup_call(), setup_lobby()
    )
    conn.send(("ready", None))
    message = await loop.run_in_executor(None, conn.recv)
    if message is None:
        return
    _, origin, end = message
    for t in tallies.values():
        t.latency.origin_ns = origin
    cpu0 = time.process_time()
    wall0 = time.monotonic()
    runs = []
    if plan.join:
        runs.append(sc.run_join(plan.join, plan.targets, origin, end, tallies["join"]))
    if plan.relay:
        runs.append(sc.run_relay(relay_pairs, plan.relay.rate, origin, end, tallies["relay"]))
    if plan.resume:
        runs.append(
            sc.run_resume(
                resume_pairs, plan.targets, plan.resume.rate, origin, end, tallies["resume"]
            )
        )
    if plan.dashboard:
        runs.append(
            sc.run_dashboard(plan.dashboard, subs, plan.targets, origin, end, tallies["dashboard"])
        )
    if plan.mediacheck:
        runs.append(
            sc.run_mediacheck(plan.mediacheck, plan.targets, origin, end, tallies["mediacheck"])
        )
    if plan.call:
        runs.append(sc.run_call(plan.call, call_hosts, origin, end, tallies["call"]))
    if plan.lobby:
        runs.append(sc.run_lobby(plan.lobby, lobby_hosts, origin, end, tallies["lobby"]))
    if plan.abuse:
        runs.append(sc.run_abuse(plan.abuse, spent, plan.targets, origin, end, tallies["abuse"]))

    async def report_progress() -> None:
        while True:
            await asyncio.sleep(1.0)
            wall = time.monotonic() - wall0
            conn.send(
                (
                    "progress",
                    {
                        "cpu_share": (time.process_time() - cpu0) / wall if wall else 0.0,
                        "scenarios": {n: t.progress() for n, t in tallies.items()},
                    },
                )
            )

    reporter = asyncio.create_task(report_progress())
    try:
        await asyncio.gather(*runs)
    finally:
        reporter.cancel()
    cpu = time.process_time() - cpu0
    wall = time.monotonic() - wall0
    # leave, not just close: a dropped session would hold its place for the resume window
    for pairs in (relay_pairs, resume_pairs):
        for pair in pairs:
            for end_of in (pair.host, pair.guest):
                end_of.client.send_json({"type": "leave"})
                end_of.client.close()
    for sub in subs:
        sub.client.close()
    for host in [*call_hosts, *lobby_hosts]:
        if host is not None:
            host.client.send_json({"type": "leave"})
            host.client.close()
    await asyncio.sleep(0)  # let the transports write their close frames
    conn.send(
        (
            "done",
            {
                "index": plan.index,
                "pid": os.getpid(),
                "cpu_s": cpu,
                "wall_s": wall,
                "tallies": {n: t.encode() for n, t in tallies.items()},
            },
        )
    )


# -- the orchestrator -----------------------------------------------------------------

Progress = Callable[[float, dict[int, dict[str, Any]]], None]


@dataclass(slots=True)
class Outcome:
    started_at: str
    duration: float
    workers: list[dict[str, Any]]
    tallies: dict[str, dict[str, Any]]
    server: list[dict[str, Any]]
    fixtures: dict[str, Any] = field(default_factory=dict)


class _Procs:
    def __init__(self, plans: list[WorkerPlan]) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.conns: list[Connection] = []
        self.procs = []
        for plan in plans:
            parent, child = ctx.Pipe()
            proc = ctx.Process(
                target=_worker_main, args=(child, plan), name=f"load-{plan.index}", daemon=True
            )
            proc.start()
            child.close()
            self.conns.append(parent)
            self.procs.append(proc)

    async def gather(
        self, kind: str, within: float, on_progress: Callable[[int, Any], None] | None = None
    ) -> list[Any]:
        """Wait for one ``kind`` message from every process (progress goes to the callback)."""
        results: dict[int, Any] = {}
        deadline = time.monotonic() + within
        while len(results) < len(self.conns):
            if time.monotonic() > deadline:
                raise RunError(f"load processes did not send {kind} in {within:.0f} s")
            idle = True
            for i, conn in enumerate(self.conns):
                while i not in results and conn.poll(0):
                    idle = False
                    status, value = conn.recv()
                    if status == "error":
                        raise RunError(f"load process {i} failed:\n{value}")
                    if status == "progress":
                        if on_progress is not None:
                            on_progress(i, value)
                    elif status == kind:
                        results[i] = value
                if i not in results and not self.procs[i].is_alive():
                    raise RunError(f"load process {i} exited ({self.procs[i].exitcode})")
            if idle:
                await asyncio.sleep(0.05)
        return [results[i] for i in range(len(self.conns))]

    def send(self, message: Any) -> None:
        for conn in self.conns:
            conn.send(message)

    def close(self) -> None:
        for conn in self.conns:
            with contextlib.suppress(OSError):
                conn.send(None)
        for proc in self.procs:
            proc.join(10)
            if proc.is_alive():
                proc.kill()
                proc.join()
        for conn in self.conns:
            conn.close()


async def execute(
    opts: RunOptions, prov: Provisioner | SeedProvisioner, on_progress: Progress | None = None
) -> Outcome:
    """Provision and run; the caller cancels the bookings (``prov.cancel_all``)."""
    provisioned = await provision(opts, prov)
    procs = _Procs(provisioned.plans)
    try:
        await procs.gather("ready", SETUP_TIMEOUT)
        async with Scraper(opts.targets) as scraper:
            await scraper.begin()
            started_at = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
            origin = time.monotonic_ns() + 200_000_000
            end = origin + int(opts.duration * 1e9)
            procs.send(("go", origin, end))
            live: dict[int, dict[str, Any]] = {}

            def progress(i: int, value: Any) -> None:
                scenarios = value.get("scenarios", {})
                value["scenarios"] = {n: progress_figures(p) for n, p in scenarios.items()}
                live[i] = value
                if on_progress is not None:
                    on_progress((time.monotonic_ns() - origin) / 1e9, live)

            results = await procs.gather(
                "done", opts.duration + sc.DRAIN * 2 + 60, on_progress=progress
            )
            await scraper.end()
            server = scraper.report()
    finally:
        procs.close()
    merged: dict[str, dict[str, Any]] = {}
    for result in results:
        for name, encoded in result["tallies"].items():
            merged.setdefault(name, {"parts": []})["parts"].append(encoded)
    workers = [
        {
            "index": r["index"],
            "cpu_s": round(r["cpu_s"], 3),
            "wall_s": round(r["wall_s"], 3),
            "cpu_share": round(r["cpu_s"] / r["wall_s"], 3) if r["wall_s"] else 0.0,
        }
        for r in results
    ]
    return Outcome(
        started_at=started_at,
        duration=opts.duration,
        workers=workers,
        tallies=merged,
        server=server,
        fixtures={
            "rooms": len(provisioned.fixtures.rooms),
            "meetings": len(prov.booked),
            "hosts": len(provisioned.fixtures.team_hosts),
        },
    )
