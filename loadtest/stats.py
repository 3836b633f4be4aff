"""Latency samples and their summaries.

Samples are kept whole (nanoseconds in an ``array('q')``): every run is bounded in
time, so even a long half-load run holds a few hundred thousand samples (a few MB),
and exact percentiles beat a histogram's approximations for a 2x target.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable
from dataclasses import dataclass

NS_PER_MS = 1_000_000


def samples() -> array[int]:
    """An empty sample buffer (signed 64-bit nanoseconds)."""
    return array("q")


def merge(parts: Iterable[bytes]) -> array[int]:
    """Samples from several processes, each sent as ``array('q').tobytes()``."""
    out = samples()
    for part in parts:
        out.frombytes(part)
    return out


def percentile(ordered: list[int], q: float) -> int:
    """Nearest-rank percentile ``q`` (0-100) of already sorted values (0 when empty)."""
    if not ordered:
        return 0
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


@dataclass(frozen=True, slots=True)
class Latency:
    """A latency distribution in milliseconds."""

    count: int
    p50: float
    p90: float
    p99: float
    max: float

    @classmethod
    def of(cls, values_ns: Iterable[int]) -> Latency:
        ordered = sorted(values_ns)
        return cls(
            count=len(ordered),
            p50=percentile(ordered, 50) / NS_PER_MS,
            p90=percentile(ordered, 90) / NS_PER_MS,
            p99=percentile(ordered, 99) / NS_PER_MS,
            max=(ordered[-1] if ordered else 0) / NS_PER_MS,
        )


def ratio(value: float, baseline: float) -> float:
    """value / baseline, or NaN when the baseline is missing (shown as "n/a")."""
    return value / baseline if baseline > 0 else math.nan
