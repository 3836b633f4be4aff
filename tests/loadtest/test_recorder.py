"""The latency recorder against known inputs, coordinated omission included."""

from __future__ import annotations

import pytest

from loadtest.recorder import Recorder, Schedule, progress_figures
from loadtest.scenarios import Tally

MS = 1_000_000


def test_percentiles_of_one_to_a_hundred_ms() -> None:
    rec = Recorder(origin_ns=0)
    for i in range(1, 101):
        rec.record(intended_ns=0, done_ns=i * MS)
    s = rec.summary()
    assert s.count == 100
    # 3 significant figures: within 0.1 %
    assert s.p50_ms == pytest.approx(50, rel=1e-3)
    assert s.p90_ms == pytest.approx(90, rel=1e-3)
    assert s.p99_ms == pytest.approx(99, rel=1e-3)
    assert s.max_ms == pytest.approx(100, rel=1e-3)
    assert s.mean_ms == pytest.approx(50.5, rel=1e-3)


def test_latency_counts_from_the_intended_send_time() -> None:
    """A sender meant to send every 10 ms; the server stalls for 1 s at the start.

    A closed-loop sender sends message 0, waits 1 s for its answer, then sends the
    rest back to back: measured from the actual send, one sample is slow and the p50
    is 1 ms. From the intended times, the 99 messages that should have gone out
    during the stall waited too."""
    schedule = Schedule(start_ns=0, rate=100.0)
    naive = Recorder()
    safe = Recorder()
    server_free_at = 0
    for i in range(200):
        intended = schedule.intended(i)
        sent = max(intended, server_free_at)
        service = 1000 * MS if i == 0 else 1 * MS
        done = sent + service
        server_free_at = done
        naive.record(sent, done)
        safe.record(intended, done)
    assert naive.summary().p50_ms == pytest.approx(1, rel=1e-3)
    assert naive.summary().p90_ms == pytest.approx(1, rel=1e-3)
    # message i (i < 100) was meant at 10*i ms and done at 1000 + i ms
    s = safe.summary()
    assert s.max_ms == pytest.approx(1000, rel=1e-3)
    assert s.p50_ms > 10
    assert s.p90_ms > 500
    expected = sorted(max(1000 + i - 10 * i, 1) if i < 112 else 1 for i in range(200))
    assert s.p90_ms == pytest.approx(expected[179], rel=2e-3)


def test_schedule_counts_due_operations() -> None:
    s = Schedule(start_ns=1000, rate=1000.0)  # one per ms
    assert s.due(999) == 0
    assert s.due(1000) == 1
    assert s.due(1000 + 5 * MS) == 6
    assert s.intended(3) == 1000 + 3 * MS


def test_merge_across_processes_is_exact_and_keeps_the_timeline() -> None:
    a = Recorder(origin_ns=0)
    b = Recorder(origin_ns=0)
    for i in range(1, 51):
        a.record(0, i * MS)  # second 0
    for i in range(51, 101):
        b.record(2_000 * MS, 2_000 * MS + i * MS)  # second 2
    merged = Recorder.decode(a.encode())
    merged.merge(b.encode())
    s = merged.summary()
    assert s.count == 100
    assert s.p50_ms == pytest.approx(50, rel=1e-3)
    assert s.p99_ms == pytest.approx(99, rel=1e-3)
    timeline = merged.timeline()
    assert [p["t"] for p in timeline] == [0, 2]
    assert [p["count"] for p in timeline] == [50, 50]
    assert timeline[1]["p50_ms"] == pytest.approx(75, rel=1e-3)


def test_buckets_add_up_to_the_count() -> None:
    rec = Recorder()
    for i in range(1, 1001):
        rec.record(0, i * 10_000)  # 0.01 ms .. 10 ms
    buckets = rec.buckets()
    assert sum(int(b["count"]) for b in buckets) == 1000
    assert buckets[-1]["le_ms"] >= 10


def test_a_ramp_grows_the_rate_linearly_then_holds_it() -> None:
    # 100/s after a 2 s ramp: 100 operations during the ramp (the area of the triangle)
    s = Schedule(start_ns=0, rate=100.0, ramp_ns=2_000 * MS)
    assert s.intended(0) == 0
    # i-th at sqrt(2 * ramp * i / rate): the 25th at 1 s (a quarter of the ramp's total)
    assert s.intended(25) == pytest.approx(1_000 * MS, rel=1e-6)
    assert s.intended(100) == pytest.approx(2_000 * MS, rel=1e-6)
    assert s.intended(150) == pytest.approx(2_500 * MS, rel=1e-6)
    times = [s.intended(i) for i in range(300)]
    assert times == sorted(times)
    # due() is the inverse of intended(), at and between the intended times
    for i in (1, 7, 25, 99, 100, 101, 250):
        assert s.due(s.intended(i)) == i + 1
        assert s.due(s.intended(i) - 1) == i
    # the first second carries a quarter of the ramp's operations, the second three
    assert s.due(1_000 * MS) - s.due(0) == 25
    assert s.due(2_000 * MS) - s.due(1_000 * MS) == 75


def test_progress_leaves_the_percentiles_to_the_orchestrator() -> None:
    # a load process sends its histogram encoded (working out percentiles there
    # stalled its loop, which the open-loop timing measured as server latency)
    tally = Tally("relay", Recorder(0))
    for ms in range(1, 101):
        tally.latency.record(0, ms * 1_000_000)
    tally.error("rate_limited")
    sent = tally.progress()
    assert set(sent) == {"unexpected", "errors", "hist"}
    figures = progress_figures(sent)
    assert figures["ops"] == 100
    assert figures["p50_ms"] == pytest.approx(50, rel=0.01)
    assert figures["p99_ms"] == pytest.approx(99, rel=0.01)
    assert (figures["unexpected"], figures["errors"]) == (1, {"rate_limited": 1})
