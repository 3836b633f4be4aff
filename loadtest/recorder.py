"""Latency recording for ``loadtest run``: HDR histograms, coordinated-omission safe.

A load generator that waits for one answer before sending the next request hides the
server's stalls: while the server is stuck the generator sends nothing, so the stall
shows up as one slow sample instead of every request that should have been sent
meanwhile ("coordinated omission"). The scenarios of ``loadtest run`` therefore send on
a schedule (intended send times fixed in advance) and measure every latency from the
*intended* send time, not from when the message actually left: a sender that fell
behind records the time it lost too.

Values are kept in microseconds in an ``hdrhistogram`` (3 significant figures, from
1 µs to 10 minutes), so a recorder is a few tens of KB whatever the run's length, and
recorders from several load processes merge exactly (``encode``/``merge``). Beside
the whole-run histogram a recorder keeps one histogram per second of the run (the
"latency over time" of the report), keyed by whole seconds since a common origin on
CLOCK_MONOTONIC (system-wide, so every process of a run shares it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from hdrh.histogram import HdrHistogram

NS_PER_US = 1_000
US_PER_MS = 1_000.0
#: 1 µs to 10 minutes, 3 significant figures (0.1 % resolution)
LOWEST_US = 1
HIGHEST_US = 600_000_000
SIGNIFICANT = 3
#: the percentiles every summary carries
PERCENTILES = (50.0, 90.0, 99.0, 99.9)


def _histogram() -> HdrHistogram:
    return HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT)


def _clamp(value_us: int) -> int:
    return min(max(value_us, LOWEST_US), HIGHEST_US)


@dataclass(frozen=True, slots=True)
class Summary:
    """A latency distribution in milliseconds."""

    count: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float
    mean_ms: float

    def as_dict(self) -> dict[str, float | int]:
        return {
            "count": self.count,
            "p50_ms": self.p50_ms,
            "p90_ms": self.p90_ms,
            "p99_ms": self.p99_ms,
            "p999_ms": self.p999_ms,
            "max_ms": self.max_ms,
            "mean_ms": self.mean_ms,
        }


def summarise(hist: HdrHistogram) -> Summary:
    count = int(hist.get_total_count())
    if count == 0:
        return Summary(0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    p50, p90, p99, p999 = (hist.get_value_at_percentile(p) / US_PER_MS for p in PERCENTILES)
    return Summary(
        count=count,
        p50_ms=p50,
        p90_ms=p90,
        p99_ms=p99,
        p999_ms=p999,
        max_ms=hist.get_max_value() / US_PER_MS,
        mean_ms=hist.get_mean_value() / US_PER_MS,
    )


class Recorder:
    """Latencies of one figure of one scenario (e.g. relay latency), whole run and per second."""

    def __init__(self, origin_ns: int = 0) -> None:
        #: CLOCK_MONOTONIC ns of the run's second 0 (shared by every process of a run)
        self.origin_ns = origin_ns
        self.total = _histogram()
        self.seconds: dict[int, HdrHistogram] = {}

    def record(self, intended_ns: int, done_ns: int) -> int:
        """One operation meant to start at ``intended_ns`` and done at ``done_ns`` (both
        CLOCK_MONOTONIC ns); records and returns its latency in µs. The latency counts
        from the intended start, so time the sender lost behind schedule is included."""
        latency_us = _clamp((done_ns - intended_ns) // NS_PER_US)
        self.total.record_value(latency_us)
        second = max(0, (intended_ns - self.origin_ns) // 1_000_000_000)
        per_second = self.seconds.get(second)
        if per_second is None:
            per_second = self.seconds[second] = _histogram()
        per_second.record_value(latency_us)
        return latency_us

    @property
    def count(self) -> int:
        return int(self.total.get_total_count())

    def summary(self) -> Summary:
        return summarise(self.total)

    def timeline(self) -> list[dict[str, float | int]]:
        """Per second of the run: count, p50, p99 and max (ms), in order of seconds."""
        out: list[dict[str, float | int]] = []
        for second in sorted(self.seconds):
            s = summarise(self.seconds[second])
            out.append(
                {"t": second, "count": s.count, "p50_ms": s.p50_ms, "p99_ms": s.p99_ms,
                 "max_ms": s.max_ms}
            )  # fmt: skip
        return out

    def buckets(self, edges_ms: tuple[float, ...] = ()) -> list[dict[str, float | int]]:
        """The histogram as (upper bound ms, count) buckets on a log scale, for charts."""
        edges = edges_ms or _default_edges(self.summary().max_ms)
        out: list[dict[str, float | int]] = []
        previous = 0
        for edge in edges:
            below = _count_at_or_below(self.total, int(edge * US_PER_MS))
            out.append({"le_ms": edge, "count": below - previous})
            previous = below
        return out

    # -- across processes ---------------------------------------------------------------

    def encode(self) -> dict[str, Any]:
        """A picklable, JSON-able form (HdrHistogram's compressed base64 encoding)."""
        return {
            "origin_ns": self.origin_ns,
            "total": self.total.encode().decode("ascii"),
            "seconds": {str(k): v.encode().decode("ascii") for k, v in self.seconds.items()},
        }

    @classmethod
    def decode(cls, encoded: dict[str, Any]) -> Recorder:
        rec = cls(int(encoded["origin_ns"]))
        rec.merge(encoded)
        return rec

    def merge(self, encoded: dict[str, Any]) -> None:
        """Add another recorder's encoded histograms (the same run, so the same origin)."""
        if int(self.total.get_total_count()) == 0 and not self.seconds:
            self.origin_ns = int(encoded["origin_ns"])
        if encoded["total"]:
            self.total.add(HdrHistogram.decode(encoded["total"].encode("ascii")))
        for key, raw in encoded["seconds"].items():
            second = int(key)
            mine = self.seconds.get(second)
            if mine is None:
                mine = self.seconds[second] = _histogram()
            mine.add(HdrHistogram.decode(raw.encode("ascii")))


def _count_at_or_below(hist: HdrHistogram, value_us: int) -> int:
    total = 0
    for item in hist.get_recorded_iterator():
        if item.value_iterated_to > value_us:
            break
        total += item.count_at_value_iterated_to
    return total


def _default_edges(max_ms: float) -> tuple[float, ...]:
    """1-2-5 steps from 0.1 ms up to the first edge above ``max_ms``."""
    edges: list[float] = []
    base = 0.1
    while True:
        for step in (1.0, 2.0, 5.0):
            edge = round(base * step, 4)
            edges.append(edge)
            if edge >= max_ms:
                return tuple(edges)
        base *= 10


@dataclass(frozen=True, slots=True)
class Schedule:
    """Intended send times of an open-loop sender: ``rate`` per second from ``start_ns``.

    The ``i``-th operation is meant to start at ``start_ns + i / rate``, whatever happened
    to the ones before it; a sender that wakes up late sends every overdue operation at
    once, each still measured from its own intended time.

    With ``ramp_ns`` the rate grows linearly from 0 to ``rate`` over the first
    ``ramp_ns``: operations due by ``t`` into the ramp are ``rate * t**2 / (2 * ramp)``,
    so the ``i``-th is meant at ``sqrt(2 * ramp * i / rate)``; after the ramp, ``rate``."""

    start_ns: int
    rate: float
    ramp_ns: int = 0

    @property
    def interval_ns(self) -> int:
        return max(1, round(1e9 / self.rate))

    @property
    def _ramp_count(self) -> float:
        """Operations meant during the ramp."""
        return self.rate * self.ramp_ns / 2e9

    def intended(self, index: int) -> int:
        if self.ramp_ns <= 0:
            return self.start_ns + index * self.interval_ns
        if index < self._ramp_count:
            return self.start_ns + round(math.sqrt(2 * self.ramp_ns * 1e9 * index / self.rate))
        extra = (index - self._ramp_count) * 1e9 / self.rate
        return self.start_ns + self.ramp_ns + round(extra)

    def due(self, now_ns: int) -> int:
        """How many operations are due by ``now_ns`` (those with index below the result)."""
        if now_ns < self.start_ns:
            return 0
        elapsed = now_ns - self.start_ns
        if self.ramp_ns <= 0:
            return elapsed // self.interval_ns + 1
        if elapsed < self.ramp_ns:
            count = math.floor(self.rate * elapsed * elapsed / (2e9 * self.ramp_ns)) + 1
        else:
            count = math.floor(self._ramp_count + (elapsed - self.ramp_ns) * self.rate / 1e9) + 1
        # the inverse in floating point may be one off: settle on intended() itself
        while count > 0 and self.intended(count - 1) > now_ns:
            count -= 1
        while self.intended(count) <= now_ns:
            count += 1
        return count


def progress_figures(progress: dict[str, Any]) -> dict[str, Any]:
    """A load process's progress for one scenario (Tally.progress) with its count and
    percentiles worked out from the encoded histogram, in the orchestrator."""
    hist = HdrHistogram.decode(str(progress["hist"]).encode("ascii"))
    s = summarise(hist)
    figures = {k: v for k, v in progress.items() if k != "hist"}
    figures.update(ops=s.count, p50_ms=s.p50_ms, p99_ms=s.p99_ms)
    return figures
