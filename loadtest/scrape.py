"""Server-side figures: each target's ``/metrics`` (Prometheus text), scraped during a run.

Counters are reported as the difference between the scrape before the clock started
and the one after the drain (what the run did, whatever ran before it); gauges
(connections, sessions, rooms) as a time series, one sample per scrape. Only the
families docs/operations.md lists are kept.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from loadtest.wire import tls_context

GAUGES = ("vestibule_connections", "vestibule_sessions", "vestibule_rooms")
COUNTERS = (
    "vestibule_messages_in_total",
    "vestibule_messages_out_total",
    "vestibule_errors_total",
    "vestibule_slow_consumers_total",
    "vestibule_presence_events_total",
    "vestibule_mediacheck_verdicts_total",
)
HISTOGRAMS = ("vestibule_join_seconds", "vestibule_relay_seconds")


def _key(name: str, labels: dict[str, str]) -> str:
    if not labels:
        return name
    inner = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
    return f"{name}{{{inner}}}"


def parse(text: str) -> dict[str, float]:
    """Every sample of the families we keep, by ``name{label=value,...}``."""
    wanted = set(GAUGES) | set(COUNTERS) | set(HISTOGRAMS)
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            base = sample.name
            for suffix in ("_bucket", "_count", "_sum", "_created"):
                if base.endswith(suffix) and base[: -len(suffix)] in wanted:
                    base = base[: -len(suffix)]
            if base in wanted or sample.name in wanted:
                if sample.name.endswith("_created"):
                    continue
                out[_key(sample.name, dict(sample.labels))] = float(sample.value)
    return out


def delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """Counter and histogram samples: after - before (gauges left out)."""
    out = {}
    for key, value in after.items():
        if key.split("{", 1)[0] in GAUGES:
            continue
        change = value - before.get(key, 0.0)
        if change:
            out[key] = change
    return out


def total(samples: dict[str, float], name: str, **labels: str) -> float:
    """Sum of ``name``'s samples whose labels include ``labels``."""
    found = 0.0
    for key, value in samples.items():
        base, _, rest = key.partition("{")
        if base != name:
            continue
        have = dict(part.split("=", 1) for part in rest.rstrip("}").split(",") if "=" in part)
        if all(have.get(k) == v for k, v in labels.items()):
            found += value
    return found


@dataclass(slots=True)
class TargetSeries:
    url: str
    before: dict[str, float] = field(default_factory=dict)
    after: dict[str, float] = field(default_factory=dict)
    #: (seconds since the run's origin, gauge samples)
    samples: list[tuple[float, dict[str, float]]] = field(default_factory=list)
    failures: int = 0


class Scraper:
    """Scrapes every target's /metrics once a second while ``running``."""

    def __init__(self, targets: list[str]) -> None:
        self.series = [TargetSeries(url.rstrip("/")) for url in targets]
        self._session: aiohttp.ClientSession | None = None
        self._task: asyncio.Task[None] | None = None
        self.origin = time.monotonic()

    async def __aenter__(self) -> Scraper:
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=5),
            connector=aiohttp.TCPConnector(ssl=tls_context()),
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
        if self._session is not None:
            await self._session.close()

    async def _one(self, series: TargetSeries) -> dict[str, float] | None:
        assert self._session is not None
        try:
            async with self._session.get(series.url + "/metrics") as response:
                if response.status != 200:
                    series.failures += 1
                    return None
                return parse(await response.text())
        except (aiohttp.ClientError, TimeoutError, ValueError):
            series.failures += 1
            return None

    async def snapshot(self) -> list[dict[str, float] | None]:
        return list(await asyncio.gather(*(self._one(s) for s in self.series)))

    async def begin(self) -> None:
        for series, found in zip(self.series, await self.snapshot(), strict=True):
            series.before = found or {}
        self.origin = time.monotonic()
        self._task = asyncio.create_task(self._loop())

    async def _loop(self) -> None:
        while True:
            at = time.monotonic() - self.origin
            for series, found in zip(self.series, await self.snapshot(), strict=True):
                if found is not None:
                    gauges = {k: v for k, v in found.items() if k.split("{", 1)[0] in GAUGES}
                    series.samples.append((round(at, 2), gauges))
            await asyncio.sleep(1.0)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def end(self) -> None:
        await self.stop()
        for series, found in zip(self.series, await self.snapshot(), strict=True):
            series.after = found or {}

    def report(self) -> list[dict[str, Any]]:
        out = []
        for series in self.series:
            change = delta(series.before, series.after)
            out.append(
                {
                    "url": series.url,
                    "scrape_failures": series.failures,
                    "counters": change,
                    "joins": total(change, "vestibule_join_seconds_count"),
                    "relayed": total(change, "vestibule_relay_seconds_count"),
                    "errors": {
                        key.split("code=", 1)[1].rstrip("}"): value
                        for key, value in change.items()
                        if key.startswith("vestibule_errors_total{")
                    },
                    "join_histogram": {
                        key.split("le=", 1)[1].rstrip("}"): value
                        for key, value in change.items()
                        if key.startswith("vestibule_join_seconds_bucket{")
                    },
                    "gauges": [{"t": t, **g} for t, g in series.samples],
                }
            )
        return out
