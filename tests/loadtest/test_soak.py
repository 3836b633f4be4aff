"""The soak benchmark: its arithmetic on known samples, its command line, and short
real runs (nodes on a private redis-server, and the embedded hub on SQLite)."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

import pytest

from loadtest import report, soak
from loadtest.cli import build_parser
from loadtest.soak import Cluster, Sample, SoakOptions, Tally
from loadtest.targets import SeedRoom, TargetError

MB = 2**20


def test_slope_is_the_least_squares_line() -> None:
    assert soak.slope([(0, 10.0), (1, 12.0), (2, 14.0)]) == pytest.approx(2.0)
    # noise around a flat line: no slope
    assert soak.slope([(0, 1.0), (1, 3.0), (2, 1.0), (3, 3.0), (4, 1.0)]) == pytest.approx(0.0)
    assert soak.slope([(5, 1.0)]) == 0.0
    assert soak.slope([(5, 1.0), (5, 9.0)]) == 0.0


def test_figures_measure_from_the_first_sample_after_the_warm_up() -> None:
    opts = SoakOptions(duration=60, warmup=20, sample=10, nodes=2)
    samples = [
        # the warm-up's growth (100 -> 150 MB) is not counted
        Sample(0.0, 0, (100 * MB, 100 * MB), 1.0),
        Sample(10.0, 50, (150 * MB, 120 * MB), 2.0),
        Sample(20.5, 100, (200 * MB, 100 * MB), 3.0),
        Sample(40.0, 200, (202 * MB, 104 * MB), 2.0),
        Sample(60.0, 300, (204 * MB, 108 * MB), 1.0),
    ]
    tally = Tally(ok=290, calls=70, failed=10, latencies_ns=[1_000_000, 3_000_000])
    tally.errors["token_invalid"] = 10
    result = soak.figures(tally, samples, opts, ["node0", "node1"])
    assert result["warm_at_s"] == 20.5 and result["end_at_s"] == 60.0
    assert [n["rss_warm_mb"] for n in result["nodes"]] == [200.0, 100.0]
    assert [n["growth_pct"] for n in result["nodes"]] == [2.0, 8.0]
    assert result["growth_pct"] == 8.0 and result["met"] is False
    assert result["joins_after_warmup"] == 200
    # 12 MB over 200 joins, all nodes together: 61.44 MB per 1,000
    assert result["slope_kb_per_1000_joins"] == pytest.approx(12 * 1024 / 200 * 1000, rel=0.01)
    assert result["joins"] == {"scheduled": 300, "ok": 290, "calls": 70, "failed": 10}
    assert result["errors"] == {"token_invalid": 10}
    assert (result["join_p50_ms"], result["join_p99_ms"]) == (1.0, 3.0)
    assert (result["load_mean"], result["load_max"]) == (1.8, 3.0)
    table = soak.table(result)
    assert "| node1 | 100.0 | 108.0 | +8.00 % | < 5 % | **no** |" in table
    assert "| node0 | 200.0 | 204.0 | +2.00 % | < 5 % | yes |" in table
    assert "`token_invalid` 10" in table


def test_figures_without_joins_do_not_meet_the_target() -> None:
    samples = [Sample(0.0, 0, (MB,)), Sample(5.0, 0, (MB,))]
    result = soak.figures(Tally(), samples, SoakOptions(duration=5, warmup=1), ["hub"])
    assert result["growth_pct"] == 0.0 and result["met"] is False


def _parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["soak", *argv])


def test_the_command_line_and_its_refusals() -> None:
    args = _parse()
    assert soak.options(args) == SoakOptions()
    args = _parse("--duration", "60", "--warmup", "10", "--rate", "2", "--embedded")
    opts = soak.options(args)
    assert (opts.duration, opts.warmup, opts.rate, opts.embedded, opts.joins) == (
        60, 10, 2, True, 120
    )  # fmt: skip
    for bad in (
        ("--warmup", "1800"),
        ("--rate", "0"),
        ("--nodes", "0"),
        ("--duration", "0.1", "--warmup", "0", "--rate", "1"),
    ):
        with pytest.raises(TargetError):
            soak.options(_parse(*bad))


def test_the_section_names_the_command_and_replaces_its_own(tmp_path: Path) -> None:
    samples = [Sample(0.0, 0, (MB,)), Sample(2.0, 10, (MB,))]
    opts = SoakOptions(duration=2, warmup=1, embedded=True)
    result = soak.figures(Tally(ok=10), samples, opts, ["hub"])
    body = soak.section(result, ["soak", "--duration", "2", "--embedded"])
    assert body.startswith("## Soak\n")
    assert "Command: `python -m loadtest soak --duration 2 --embedded`" in body
    assert "one hub process on SQLite (embedded)" in body
    out = tmp_path / "benchmarks.md"
    out.write_text("# Benchmarks\n\nkept\n", encoding="utf-8")
    report.write_section(out, "soak", body)
    report.write_section(out, "soak", body)
    text = out.read_text(encoding="utf-8")
    assert text.count("## Soak") == 1 and "kept" in text


@pytest.mark.slow
@pytest.mark.multinode
def test_a_short_soak_on_nodes_sharing_redis() -> None:
    opts = SoakOptions(duration=3, warmup=1, sample=0.5, rate=4, nodes=2, hold=0.2)
    result = soak.run(opts, quiet=True)
    assert result["store"] == "Redis"
    assert result["joins"] == {"scheduled": 12, "ok": 12, "calls": 3, "failed": 0}
    assert result["errors"] == {} and result["first_error"] == ""
    assert [n["name"] for n in result["nodes"]] == ["node0", "node1"]
    assert all(n["rss_warm_mb"] > 10 and n["rss_end_mb"] > 10 for n in result["nodes"])
    assert 1 <= result["warm_at_s"] < result["end_at_s"]
    assert result["joins_after_warmup"] > 0
    assert 0 < result["join_p50_ms"] <= result["join_p99_ms"]
    assert all(len(s["rss"]) == 2 for s in result["samples"])
    # every join ended before the last sample
    assert result["samples"][-1]["joins"] == 12
    assert "| node1 |" in soak.table(result)


@pytest.mark.slow
def test_an_embedded_soak_counts_a_refused_join_as_an_error(tmp_path: Path) -> None:
    opts = SoakOptions(duration=1, warmup=0, sample=0.5, rate=3, hold=0, embedded=True)
    with soak.cluster(tmp_path, opts) as target:
        first = target.seed(2)
        # the second join says hello with the first's link, already redeemed
        target.rooms = [first[0], first[0], first[1]]
        tally, samples = asyncio.run(soak.drive(target, opts, quiet=True))
    assert (tally.ok, tally.failed) == (2, 1)
    assert tally.calls == 0
    assert list(tally.errors) == ["token_invalid"], tally.first_error
    assert len(samples) >= 2 and all(len(s.rss) == 1 for s in samples)


@pytest.mark.slow
@pytest.mark.multinode
def test_rooms_are_seeded_in_batches_as_the_run_goes(monkeypatch: pytest.MonkeyPatch) -> None:
    # a batch of 1 s of joins, the next seeded once under 0.5 s are left: 4 batches
    monkeypatch.setattr(soak, "SEED_BATCH", 1.0)
    monkeypatch.setattr(soak, "SEED_LEAD", 0.5)
    seeded: list[int] = []
    original = Cluster.seed

    def counting(self: Cluster, count: int) -> tuple[SeedRoom, ...]:
        seeded.append(count)
        return original(self, count)

    monkeypatch.setattr(Cluster, "seed", counting)
    opts = SoakOptions(duration=3, warmup=1, sample=1, rate=4, nodes=1, hold=0, call_every=2)
    result = soak.run(opts, quiet=True)
    assert seeded[0] == 6 and sum(seeded) == 12 and len(seeded) >= 3, seeded
    assert result["joins"] == {"scheduled": 12, "ok": 12, "calls": 6, "failed": 0}
