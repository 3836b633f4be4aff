"""The side-by-side benchmark (``loadtest peers``) and the profiler's summary: the pieces
that run without a server, then one short real run on every target."""

from __future__ import annotations

import math
import os
import shutil
import time
from pathlib import Path

import orjson
import pytest

from loadtest import loads, peerjs, peers, profile
from loadtest.cli import main

NAN = float("nan")


def test_rounds_rotate_the_order_of_the_servers() -> None:
    targets = ["bare", "peerjs", "hub"]
    assert peers.order(targets, 0) == ["bare", "peerjs", "hub"]
    assert peers.order(targets, 1) == ["peerjs", "hub", "bare"]
    assert peers.order(targets, 2) == ["hub", "bare", "peerjs"]
    assert peers.order(targets, 3) == targets
    assert peers.order([], 5) == []


@pytest.mark.parametrize(
    ("dialect", "relayed"),
    [
        # what the hub (and the bare relay) deliver: "to" replaced by "from"
        ("signal", lambda body: {**{k: v for k, v in body.items() if k != "to"}, "from": "a"}),
        # what PeerJS server delivers: the message as sent, with "src" added
        ("peerjs", lambda body: {**body, "src": "a"}),
    ],
)
def test_a_load_message_carries_its_send_time_in_each_dialect(
    dialect: str, relayed: object
) -> None:
    now = time.monotonic_ns()
    phase = loads._Phase(now - 10**9, 0, 60.0, dialect)
    leg = loads._Leg(phase, "b")
    sent = orjson.loads(leg.message())
    if dialect == "peerjs":
        assert (sent["type"], sent["dst"]) == ("CANDIDATE", "b")
    else:
        assert (sent["type"], sent["to"], sent["kind"]) == ("signal", "b", "candidate")
    assert callable(relayed)
    stamp = phase.arrival(orjson.dumps(relayed(sent)))
    assert stamp is not None and now <= stamp <= time.monotonic_ns()
    assert (phase.received, phase.in_flight, leg.sent) == (1, 1, 1)


def test_an_error_from_either_server_is_counted_with_its_reason() -> None:
    phase = loads._Phase(0, 0, 1.0, "peerjs")
    error = {"type": "ERROR", "payload": {"msg": "Invalid key provided"}}
    assert phase.arrival(orjson.dumps(error)) is None
    assert phase.arrival(orjson.dumps({"type": "error", "code": "forbidden"})) is None
    assert (phase.errors, phase.first_error) == (2, "Invalid key provided")


def _round(target: str, setups: float, cpu: float, one: float, idle: float) -> peers.Round:
    r = peers.Round(target, setups_per_s=setups, cpu_per_setup_ms=cpu, relay_1=one)
    r.relay_32 = one * 3
    r.cpu_per_100k = {5000: cpu * 2}
    r.idle_kb = idle
    return r


def test_the_table_gives_medians_with_their_rounds_and_judges_the_hub() -> None:
    opts = peers.PeersOptions(rounds=3, rates=(5000,))
    rounds = [
        _round("bare", 3000, 0.2, 1000, 14.0),
        _round("peerjs", 1600, 0.3, 800, 11.0),
        _round("hub", 700, 1.2, 900, 17.0),
        _round("bare", 3100, 0.2, 1100, 14.5),
        _round("peerjs", 1700, 0.4, 700, 11.5),
        _round("hub", 2000, 0.3, 950, 14.0),
        _round("bare", 2900, 0.2, 1000, 14.2),
        _round("peerjs", 1650, 0.3, 750, 11.2),
        _round("hub", 1800, 0.35, 1000, 14.5),
    ]
    result = peers.PeersResult(opts, rounds, "", ("bare", "peerjs", "hub"))
    m = peers.medians(result)
    assert m["hub"]["setups_per_s"] == 1800 and m["peerjs"]["setups_per_s"] == 1650
    assert m["hub"]["cpu:5000"] == pytest.approx(0.7)
    met = peers.targets_met(result)
    assert met["setups_per_s"] == (">= PeerJS", True)
    assert met["cpu_per_setup_ms"][1] is True  # 0.35 ms
    assert met["relay_1"][1] is False  # 950 against the bare relay's 1000
    assert met["idle_kb"][1] is True
    assert met["cpu:5000"][1] is False  # 0.7 against 1.1 x 0.4
    text = peers.table(result)
    row = next(line for line in text.splitlines() if line.startswith("| connection set-ups/s"))
    assert "1,800 (700, 2,000, 1,800)" in row
    assert "| 0.60 | 1.09 | >= PeerJS | yes |" in row


def test_a_figure_not_measured_is_not_judged() -> None:
    opts = peers.PeersOptions(rounds=1, rates=(5000,))
    result = peers.PeersResult(
        opts,
        [_round("bare", 3000, 0.2, 1000, 14.0), peers.Round("hub")],
        "no node",
        ("bare", "hub"),
    )
    met = peers.targets_met(result)
    assert met["setups_per_s"][1] is None  # no PeerJS column
    assert met["relay_1"][1] is None
    section = peers.section(result, ["peers"])
    assert "PeerJS server was not measured in this run: no node." in section
    assert "| hub / bare | hub / PeerJS |" in section


def test_peerjs_is_reported_missing_without_node(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    found = peerjs.install(tmp_path / "cache")
    assert found.script is None
    assert "node is not installed" in found.why_not
    assert not (tmp_path / "cache").exists()


RAW = """\
<module> (signalling/cli.py:10);run (asyncio/runners.py:5);relay (signalling/room_runtime.py:180) 30
<module> (signalling/cli.py:10);run (asyncio/runners.py:5);relay (signalling/room_runtime.py:190) 10
<module> (signalling/cli.py:10);run (asyncio/runners.py:5) 40
_bootstrap (threading.py:3);_connection_worker_thread (aiosqlite/core.py:9) 20
not a sample line
"""


def test_the_profile_merges_lines_of_a_function_and_counts_each_stack_once() -> None:
    prof = profile.parse(RAW.splitlines())
    assert prof.samples == 100
    relay = "relay (signalling/room_runtime.py)"
    assert prof.inclusive[relay] == 40 and prof.self_time[relay] == 40
    assert prof.inclusive["run (asyncio/runners.py)"] == 80
    assert prof.self_time["run (asyncio/runners.py)"] == 40
    assert prof.inclusive["<module> (signalling/cli.py)"] == 80
    text = profile.summary(prof, 2.0, "join", top=2)
    assert "| `run (asyncio/runners.py)` | 80.0% | 1.600 |" in text
    assert "| `relay (signalling/room_runtime.py)` | 40.0% | 0.800 |" in text


@pytest.mark.slow
def test_a_short_run_measures_every_figure_on_every_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PeerJS server takes part where Node.js is installed (it is installed with npm
    into a cache of this test's own when it is not there yet)."""
    if shutil.which("node") is not None:
        cache = os.environ.get("VESTIBULE_BENCH_CACHE") or str(tmp_path / "cache")
        monkeypatch.setenv("VESTIBULE_BENCH_CACHE", cache)
    opts = peers.PeersOptions(
        rounds=1, setups=20, concurrency=4, idle=30, pairs=2, seconds=0.5, warmup=0.2, rates=(400,)
    )
    result = peers.run(opts, with_peerjs=shutil.which("node") is not None)
    expected = ("bare", "peerjs", "hub") if shutil.which("node") else ("bare", "hub")
    assert result.targets == expected, result.peerjs_skipped
    for r in result.rounds:
        assert (r.failed, r.first_error) == (0, ""), r.target
        for value in (r.setups_per_s, r.setup_p99_ms, r.relay_1, r.relay_32):
            assert value > 0, r
        # CPU time is counted in clock ticks (10 ms): a short run may see none
        assert r.cpu_per_setup_ms >= 0 and r.cpu_per_100k[400] >= 0
        assert not math.isnan(r.idle_kb)
    out = tmp_path / "benchmarks.md"
    argv = ["peers", "--rounds", "1", "--setups", "10", "--idle", "20", "--pairs", "2"]
    argv += ["--seconds", "0.3", "--rates", "200", "--no-peerjs", "--write", str(out)]
    assert main(argv) == 0
    assert "<!-- loadtest:peers:begin -->" in out.read_text()


@pytest.mark.slow
def test_profile_attaches_to_the_hub_and_attributes_its_joins(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["profile", "joins", "--count", "300", "--concurrency", "10", "--top", "60"]) == 0
    out = capsys.readouterr().out
    samples = int(out.split(" samples;", 1)[0])
    assert samples > 0
    assert "ms per join" in out
    # the hub's own join path is among the sampled stacks
    assert "`Handshake.greet (signalling/handshake.py)`" in out


@pytest.mark.slow
def test_each_hub_runs_on_a_store_of_its_own(tmp_path: Path) -> None:
    """The hub labelled SQLite runs on a file even when Redis is measured too, and
    each hub on Redis on an empty redis-server: no round inherits another's data."""
    opts = peers.PeersOptions(setups=2, idle=0, pairs=1, redis=True)
    none = peerjs.Install(None, "", "not asked for")
    stores: list[str] = []
    for n, kind in enumerate(("hub", "hub-redis", "hub-redis")):
        workdir = tmp_path / str(n)
        workdir.mkdir()
        with peers._server(kind, workdir, opts, str(n), none, idle_only=False) as (srv, _):
            args = [str(a) for a in srv.process.args]  # type: ignore[union-attr]
            flag = "--redis" if "--redis" in args else "--db"
            stores.append(f"{flag} {args[args.index(flag) + 1]}")
    assert stores[0].startswith("--db ")
    assert stores[1].startswith("--redis ") and stores[2].startswith("--redis ")
    assert stores[1] != stores[2]
