"""``vestibule loadtest run`` against a real server: each scenario briefly, its counts
checked against what the server's own /metrics saw over the run; the SLO gate's exit
status; the JSON result against its schema."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from loadtest.cli import main
from loadtest.fixtures import Provisioner
from loadtest.results import schema
from loadtest.scrape import delta, total
from tests.loadtest.conftest import Deployment

#: short runs: each scenario is bounded by time and stops by itself
SECONDS = "1.5"


def run(
    deployment: Deployment, tmp_path: Path, scenario: str, *extra: str
) -> tuple[int, dict[str, Any], dict[str, float]]:
    """Run the CLI; (exit status, result, change in the server's counters)."""
    out = tmp_path / f"{scenario.replace(',', '-')}.json"
    before = deployment.metrics()
    code = main(
        [
            "run",
            *("--target", deployment.url, "--api-key", deployment.api_key),
            *("--jwt-secret", deployment.jwt_secret, "--scenario", scenario),
            *("--duration", SECONDS, "--json", str(out), "--live", "plain"),
            *extra,
        ]
    )
    after = deployment.metrics()
    doc = json.loads(out.read_text())
    jsonschema.validate(doc, schema())
    return code, doc, delta(before, after)


def figures(doc: dict[str, Any], scenario: str) -> dict[str, float]:
    found: dict[str, float] = doc["scenarios"][scenario]["figures"]
    return found


def test_join_counts_match_the_servers_and_a_breached_slo_exits_1(
    deployment: Deployment, tmp_path: Path
) -> None:
    code, doc, server = run(
        deployment, tmp_path, "join", "--join-rate", "20", "--slo", "join.p99_ms<=0.001"
    )
    f = figures(doc, "join")
    assert f["ok"] >= 20 and f["failed"] == 0 and f["unexpected"] == 0
    assert f["staff"] >= 1 and f["guests"] >= 1
    # every join the harness measured is a welcome the server sent, and no more
    assert total(server, "vestibule_join_seconds_count") == f["ok"]
    assert total(server, "vestibule_messages_in_total", type="hello") == f["ok"]
    assert f["count"] == f["ok"]
    assert code == 1
    assert doc["passed"] is False
    assert doc["slo"][0]["met"] is False and doc["slo"][0]["actual"] == f["p99_ms"]
    # the booked meetings were cancelled
    assert doc["fixtures"]["cancelled"] == doc["fixtures"]["meetings"] >= f["guests"]


def test_relay_from_two_processes_matches_the_servers_counts_and_a_met_slo_exits_0(
    deployment: Deployment, tmp_path: Path
) -> None:
    code, doc, server = run(
        deployment, tmp_path, "relay",
        *("--relay-rooms", "3", "--relay-rate", "20", "--workers", "2"),
        *("--slo", "relay.lost==0", "--slo", "errors.unexpected==0", "--slo", "relay.rate>0"),
    )  # fmt: skip
    f = figures(doc, "relay")
    assert f["rooms"] == 3
    assert f["sent"] >= 3 * 2 * 20  # 1.5 s at 20/s each way in 3 rooms
    assert f["lost"] == 0 and f["received"] == f["sent"] == f["count"]
    assert total(server, "vestibule_relay_seconds_count") == f["sent"]
    assert total(server, "vestibule_messages_in_total", type="signal") == f["sent"]
    assert code == 0 and doc["passed"] is True
    assert [v["met"] for v in doc["slo"]] == [True, True, True]
    # two load processes, their histograms merged: every message measured once
    processes = doc["harness"]["processes"]
    assert [p["index"] for p in processes] == [0, 1]
    assert all(p["cpu_s"] > 0 and p["wall_s"] >= 1.5 for p in processes)
    assert sum(p["count"] for p in doc["scenarios"]["relay"]["timeline"]) == f["received"]


def test_relay_flat_out_measures_throughput_and_counts_the_rate_limit_as_refused(
    deployment: Deployment, tmp_path: Path
) -> None:
    code, doc, server = run(
        deployment, tmp_path, "relay", *("--relay-rooms", "2", "--relay-rate", "0"),
        *("--slo", "relay.lost==0", "--slo", "errors.unexpected==0"),
    )  # fmt: skip
    f = figures(doc, "relay")
    assert f["rooms"] == 2 and f["received"] > 0
    # every signal sent was relayed or refused by the per-connection rate limit
    assert f["lost"] == 0 and f["sent"] == f["received"] + f["refused"]
    # against the default limit (100/s, bursts of 200) flat out runs into it
    assert f["refused"] > 0
    assert doc["scenarios"]["relay"]["refused"] == {"flat_out:rate_limited": f["refused"]}
    assert total(server, "vestibule_relay_seconds_count") == f["received"]
    assert total(server, "vestibule_errors_total", code="rate_limited") == f["refused"]
    assert code == 0 and doc["passed"] is True


def test_dashboard_sees_every_presence_event_once(deployment: Deployment, tmp_path: Path) -> None:
    code, doc, server = run(
        deployment, tmp_path, "dashboard",
        *("--dashboard-subscribers", "4", "--dashboard-rate", "6"),
        *("--slo", "dashboard.lost==0", "--slo", "dashboard.duplicated==0"),
    )  # fmt: skip
    f = figures(doc, "dashboard")
    assert f["subscribers"] == 4 and f["entered"] >= 6
    assert f["expected"] == 4 * f["entered"]
    assert f["lost"] == 0 and f["duplicated"] == 0 and f["out_of_order"] == 0
    assert f["delivered"] == f["count"] == f["expected"]
    # the guests who entered are the server's welcomes
    assert total(server, "vestibule_join_seconds_count") == f["entered"]
    assert code == 0


def test_abuse_is_refused_with_the_right_codes(deployment: Deployment, tmp_path: Path) -> None:
    code, doc, server = run(
        deployment, tmp_path, "abuse,relay", "--abuse-rate", "8", "--relay-rooms", "2",
        "--slo", "abuse.wrong==0", "--slo", "relay.lost==0",
    )  # fmt: skip
    f = figures(doc, "abuse")
    # abuse in second 0 only (even seconds), relay throughout: its p99 with and without
    assert [p["t"] for p in doc["scenarios"]["abuse"]["timeline"]] == [0]
    assert f["normal_p99_abuse_ms"] > 0 and f["normal_p99_quiet_ms"] > 0
    assert f["normal_p99_ratio"] == f["normal_p99_abuse_ms"] / f["normal_p99_quiet_ms"]
    refused = doc["scenarios"]["abuse"]["refused"]
    assert f["wrong"] == 0 and f["unexpected"] == 0
    assert f["refused"] == f["attempts"] >= 8
    for act in ("replay", "wrong_key", "oversized", "flood"):
        assert any(key.startswith(act + ":") for key in refused), refused
    errors = {k: v for k, v in server.items() if k.startswith("vestibule_errors_total")}
    token_invalid = refused.get("replay:token_invalid", 0) + refused.get(
        "wrong_key:token_invalid", 0
    )
    assert total(errors, "vestibule_errors_total", code="token_invalid") == token_invalid
    assert (
        total(errors, "vestibule_errors_total", code="too_large") == refused["oversized:too_large"]
    )
    # a flood is answered rate_limited many times over; each counted once by the harness
    assert total(errors, "vestibule_errors_total", code="rate_limited") >= refused[
        "flood:rate_limited"
    ] + refused.get("wrong_key:rate_limited", 0)
    assert code == 0


def test_resume_replays_what_was_sent_while_away_and_the_slo_file_gates(
    deployment: Deployment, tmp_path: Path
) -> None:
    slo = tmp_path / "slo.yaml"
    # the second objective names a scenario that does not run: never met
    slo.write_text("slo:\n  - resume.success_rate >= 1\n  - relay.p99_ms <= 1000\n")
    code, doc, server = run(
        deployment, tmp_path, "resume",
        *("--resume-rooms", "2", "--resume-rate", "2", "--slo-file", str(slo)),
    )  # fmt: skip
    f = figures(doc, "resume")
    assert f["rooms"] == 2 and f["attempts"] >= 2
    assert f["resumed"] == f["attempts"] and f["success_rate"] == 1.0
    assert f["replay_missing"] == 0 and f["replay_received"] == 3 * f["resumed"]
    # hellos: host and guest per room at setup, then every resume
    assert total(server, "vestibule_join_seconds_count") == 2 * f["rooms"] + f["resumed"]
    assert total(server, "vestibule_relay_seconds_count") == f["replay_expected"]
    assert [v["met"] for v in doc["slo"]] == [True, False]
    assert doc["slo"][1]["actual"] is None
    assert code == 1


@pytest.mark.parametrize(
    "argv",
    [
        ["--scenario", "nope"],
        ["--scenario", "join", "--slo", "join.rate >> 3"],
    ],
)
def test_bad_command_lines_exit_2(deployment: Deployment, argv: list[str]) -> None:
    base = ["run", "--target", deployment.url, "--api-key", deployment.api_key]
    with pytest.raises(SystemExit) as exited:
        code = main([*base, *argv])
        raise SystemExit(code)
    assert exited.value.code == 2


def test_a_target_that_cannot_be_reached_exits_2(deployment: Deployment) -> None:
    # nothing listens on port 9 (discard) of loopback here
    argv = ["run", "--target", "http://127.0.0.1:9", "--api-key", deployment.api_key]
    assert main([*argv, "--scenario", "join", "--duration", "1"]) == 2


def test_hosts_without_a_jwt_secret_are_refused_before_anything_is_booked(
    deployment: Deployment,
) -> None:
    argv = ["run", "--target", deployment.url, "--api-key", deployment.api_key]
    assert main([*argv, "--scenario", "relay", "--duration", "1"]) == 2


def test_call_set_up_counts_match_the_servers(deployment: Deployment, tmp_path: Path) -> None:
    code, doc, server = run(
        deployment, tmp_path, "call", "--call-rooms", "2", "--call-rate", "2",
        "--slo", "call.failed==0",
    )  # fmt: skip
    f = figures(doc, "call")
    assert f["rooms"] == 2 and f["attempts"] >= 4
    assert f["connected"] == f["attempts"] == f["count"] and f["unexpected"] == 0
    messages = {
        kind: total(server, "vestibule_messages_in_total", type=kind)
        for kind in ("hello", "join", "admit", "signal", "call.state")
    }
    # per room the host's hello and join; per call the guest's hello and join, one
    # admit, offer + answer + 3 candidates each way, call.state from both
    calls, rooms = f["connected"], f["rooms"]
    assert messages == {
        "hello": rooms + calls, "join": rooms + calls, "admit": calls, "signal": 8 * calls,
        "call.state": 2 * calls,
    }  # fmt: skip
    assert code == 0


def test_lobby_admits_moves_and_says(deployment: Deployment, tmp_path: Path) -> None:
    code, doc, server = run(
        deployment, tmp_path, "lobby", "--lobby-rooms", "2", "--lobby-rate", "4",
        "--workers", "2", "--slo", "lobby.failed==0",
    )  # fmt: skip
    f = figures(doc, "lobby")
    assert f["rooms"] == 2 and f["arrivals"] >= 8
    assert f["admitted"] == f["arrivals"] == f["count"] and f["unexpected"] == 0
    # every 4th guest is moved to the other room (whose host is in the other process)
    assert f["moves"] >= 2 and f["admitted_after_move"] == f["moves"]
    assert total(server, "vestibule_messages_in_total", type="admit") == f["admitted"]
    assert total(server, "vestibule_messages_in_total", type="move") == f["moves"]
    assert total(server, "vestibule_messages_in_total", type="say") == f["said"] >= 2
    assert code == 0


def test_clinic_day_mixes_the_scenarios_and_ramps_up(
    deployment: Deployment, tmp_path: Path
) -> None:
    code, doc, server = run(
        deployment, tmp_path, "clinic-day", "--ramp", "1", "--relay-rooms", "2",
        "--duration", "2.5", "--slo", "errors.unexpected==0",
    )  # fmt: skip
    assert set(doc["scenarios"]) == {"join", "call", "lobby", "dashboard", "relay"}
    relay = figures(doc, "relay")
    # the flag wins over clinic-day's one relay room per clinic
    assert relay["rooms"] == 2 and relay["lost"] == 0
    assert figures(doc, "dashboard")["lost"] == 0
    assert figures(doc, "lobby")["rooms"] == 2 and figures(doc, "call")["rooms"] == 1
    # 2 rooms x 2 directions x 10/s, reached at the end of the 1 s ramp: the first
    # second carries half of a full second (rate x ramp / 2 per direction)
    timeline = {p["t"]: p["count"] for p in doc["scenarios"]["relay"]["timeline"]}
    assert (timeline[0], timeline[1]) == (20, 40)
    # the server relayed the relay scenario's signals and the calls' set-up (8 each)
    calls = figures(doc, "call")["connected"]
    assert total(server, "vestibule_relay_seconds_count") == relay["sent"] + 8 * calls
    assert code == 0


async def _seed_file(deployment: Deployment, path: Path, per_room: int) -> int:
    """A seed file of two load-test rooms with ``per_room`` links each, made the way
    an SRE would (any tool that books meetings; here the REST API)."""
    async with Provisioner(deployment.url, deployment.api_key) as prov:
        hosts = await prov.hosts()
        rooms = await prov.rooms(2)
        made = await prov.book([(room, hosts[0].id) for room in rooms for _ in range(per_room)])
    tokens = {room: [b.token for b in made if b.room == room] for room in rooms}
    seed = {
        "hosts": [{"id": h.id, "name": h.name} for h in hosts],
        "rooms": [{"slug": room, "tokens": tokens[room]} for room in rooms],
    }
    await asyncio.to_thread(path.write_text, json.dumps(seed))
    return len(made)


async def test_a_seed_file_replaces_the_rest_api(deployment: Deployment, tmp_path: Path) -> None:
    seed = tmp_path / "seed.json"
    await _seed_file(deployment, seed, per_room=10)
    out = tmp_path / "seeded.json"
    before = deployment.metrics()
    argv = [
        "run", "--target", deployment.url, "--seed-file", str(seed), "--scenario", "join",
        "--join-rate", "6", "--duration", "1", "--json", str(out), "--live", "plain",
    ]  # fmt: skip
    code = await asyncio.to_thread(main, argv)
    server = delta(before, deployment.metrics())
    doc = json.loads(out.read_text())
    jsonschema.validate(doc, schema())
    f = figures(doc, "join")
    assert code == 0 and f["ok"] == 6 and f["failed"] == 0
    assert total(server, "vestibule_join_seconds_count") == 6
    assert doc["fixtures"]["cancelled"] == 0  # nothing was booked, nothing to cancel
    # a run that needs more links than the file holds stops before it starts
    argv[argv.index("6")] = "50"
    assert await asyncio.to_thread(main, argv) == 2
