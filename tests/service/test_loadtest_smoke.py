"""Smoke runs of the load-test harness: short, small, and asserting only that it measured.

The real figures go to docs/benchmarks.md (``python -m loadtest relay --write ...``);
here a run only has to produce positive rates and latencies without losing a message.
"""

from __future__ import annotations

import math
from pathlib import Path

import orjson
import pytest
from pytest_aiohttp import AiohttpServer

from loadtest import checks_relay, idle, joins, relay, report
from loadtest.bare_relay import create_app
from loadtest.cli import all_steps, main
from loadtest.wsclient import WsClient

WAIT = 5.0
SMOKE = relay.RelayOptions(pairs=3, seconds=1.0, warmup=0.2, workers=1)


async def test_bare_relay_forwards_a_signal_with_from_instead_of_to(
    aiohttp_server: AiohttpServer,
) -> None:
    server = await aiohttp_server(create_app())
    a = await WsClient.connect(server.host, server.port, "/ws?room=r1&id=a")
    b = await WsClient.connect(server.host, server.port, "/ws?room=r1&id=b")
    other = await WsClient.connect(server.host, server.port, "/ws?room=r2&id=c")
    try:
        # "c" is in another room: this one must go nowhere, and the next one to b only
        a.send_json({"type": "signal", "to": "c", "kind": "ice-restart"})
        a.send_json({"type": "signal", "to": "b", "kind": "candidate", "candidate": None})
        got = orjson.loads(await b.recv(WAIT))
        assert got == {"type": "signal", "from": "a", "kind": "candidate", "candidate": None}
        b.send_json({"type": "signal", "to": "c", "kind": "ice-restart"})
        b.send_json({"type": "signal", "to": "a", "kind": "ice-restart"})
        assert orjson.loads(await a.recv(WAIT))["from"] == "b"
        other.send_json({"type": "signal", "to": "a", "kind": "ice-restart"})
        other.send_json({"type": "signal", "to": "c", "kind": "offer", "sdp": "x"})
        # c relays to itself within r2; had anything of r1 reached it, it would come first
        assert orjson.loads(await other.recv(WAIT)) == {
            "type": "signal",
            "from": "c",
            "kind": "offer",
            "sdp": "x",
        }
    finally:
        for client in (a, b, other):
            client.close()


def test_report_replaces_only_its_own_section(tmp_path: Path) -> None:
    path = tmp_path / "benchmarks.md"
    report.write_section(path, "relay", "## Relay\n\nfirst")
    report.write_section(path, "joins", "## Joins\n\nkept")
    report.write_section(path, "relay", "## Relay\n\nsecond")
    text = path.read_text()
    assert text.startswith("# Benchmarks")
    assert "second" in text and "first" not in text and "kept" in text
    assert text.count("<!-- loadtest:relay:begin -->") == 1
    assert text.index("loadtest:relay:end") < text.index("loadtest:joins:begin")


def test_relay_against_the_bare_relay_measures_throughput_and_latency(tmp_path: Path) -> None:
    (bare,) = relay.run(["bare"], SMOKE)
    assert bare.target == "bare"
    assert bare.msgs_per_s > 0
    assert bare.half_achieved > 0
    assert bare.latency.count > 0
    assert 0 < bare.latency.p50 <= bare.latency.p99 <= bare.latency.max
    assert bare.lost == 0 and bare.errors == 0
    out = tmp_path / "benchmarks.md"
    report.write_section(out, "relay", relay.section([bare], SMOKE, ["relay"]))
    assert "| relayed msgs/s, flat out |" in out.read_text()


def test_relay_cli_writes_its_section(tmp_path: Path) -> None:
    out = tmp_path / "benchmarks.md"
    argv = ["relay", "--pairs", "2", "--seconds", "1", "--targets", "bare", "--write", str(out)]
    assert main(argv) == 0
    text = out.read_text()
    assert "<!-- loadtest:relay:begin -->" in text
    assert "Command: `python -m loadtest relay --pairs 2" in text
    header = next(line for line in text.splitlines() if line.startswith("| figure |"))
    assert header.startswith("| figure | bare | hub / bare |")
    row = next(line for line in text.splitlines() if line.startswith("| relayed msgs/s"))
    assert float(row.split("|")[2].strip().replace(",", "")) > 0


@pytest.mark.slow
def test_relay_against_the_hub_relays_every_message() -> None:
    (hub,) = relay.run(["hub"], SMOKE)
    assert hub.msgs_per_s > 0
    assert hub.latency.count > 0 and hub.latency.p99 > 0
    assert hub.lost == 0 and hub.errors == 0, hub.first_error


@pytest.mark.slow
def test_joins_redeem_every_link_token() -> None:
    figures = joins.run(count=20, concurrency=5, workers=1)
    assert (figures.ok, figures.failed) == (20, 0), figures.first_error
    assert figures.joins_per_s > 0
    assert 0 < figures.hello.p50 <= figures.hello.p99
    assert figures.total.p99 >= figures.hello.p99


@pytest.mark.slow
def test_idle_connections_are_held_on_both_targets() -> None:
    figures = idle.run(["bare", "hub"], 40, hold=0.5)
    assert [f.target for f in figures] == ["bare", "hub"]
    for f in figures:
        assert (f.opened, f.held, f.failed) == (40, 40, 0), f.first_error
        assert f.rss_after > 0 and not math.isnan(f.per_connection)


def test_all_runs_every_benchmark_in_order_and_quick_shrinks_them() -> None:
    full = all_steps(quick=False, write="out.md", workers=1)
    commands = [step[0] for step in full]
    assert commands[:4] == ["relay", "joins", "joins", "idle"]
    # fanout comes first among the modules' benchmarks when loadtest.fanout registers
    modules = ["fanout", "mediacheck", "checks-relay", "crossnode", "peers"]
    assert commands[4:] in (modules, modules[1:])
    assert "--private-redis" in full[2] and "--private-redis" not in full[1]
    assert all(step[-2:] == ["--write", "out.md"] for step in full)
    quick = all_steps(quick=True, write=None, workers=1)
    assert [step[0] for step in quick] == commands
    assert quick[0][quick[0].index("--seconds") + 1] == "2"
    assert "--quick" in quick[commands.index("checks-relay")]
    assert "--quick" not in full[commands.index("checks-relay")]


@pytest.mark.slow
def test_checks_relay_relays_while_a_media_check_runs(tmp_path: Path) -> None:
    opts = checks_relay.ChecksRelayOptions(
        pairs=2, seconds=1.0, warmup=0.2, checks=1, media_workers=1, lead=1.0
    )
    figures = checks_relay.run(opts)
    assert figures.checks, "no media check ran"
    assert all(not check.error for check in figures.checks), figures.checks
    assert {check.verdict for check in figures.checks} <= {"passed", "failed"}
    assert all(check.seconds > 0 for check in figures.checks)
    for phase in (figures.without, figures.with_checks, figures.after):
        assert phase.latency.count > 0, phase.label
        assert 0 < phase.latency.p50 <= phase.latency.p99, phase.label
        assert phase.lost == 0 and phase.errors == 0, phase.first_error
    # the check was decoding in the hub's worker while the phase was counted
    assert figures.with_checks.media_cpu > 0
    assert figures.p99_ratio > 0
    out = tmp_path / "benchmarks.md"
    report.write_section(out, "checks-relay", checks_relay.section(figures, ["checks-relay"]))
    text = out.read_text()
    assert "| p99 (ms) |" in text and "| verdicts | " in text
