"""Prometheus metrics, one registry per app (so several apps can live in one test).

The per-message metrics (messages in and out, relay latency) are plain Python
ints read at scrape time by a collector: prometheus_client's ``labels().inc()``
and ``observe()`` take a lock and a label lookup each, which profiled as a
fifth of the hub's own cost per relayed message.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterator, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric


class LabelledCount:
    """A counter with one label, kept as plain ints (single-threaded: the event loop)."""

    __slots__ = ("counts", "doc", "label", "name")

    def __init__(self, name: str, doc: str, label: str) -> None:
        self.name = name
        self.doc = doc
        self.label = label
        self.counts: defaultdict[str, int] = defaultdict(int)

    def add(self, value: str, amount: int = 1) -> None:
        self.counts[value] += amount

    def labels(self, value: str) -> _Bound:
        return _Bound(self, value)

    def collect(self) -> Metric:
        family = CounterMetricFamily(self.name, self.doc, labels=[self.label])
        for value, count in sorted(self.counts.items()):
            family.add_metric([value], count)
        return family


class _Bound:
    __slots__ = ("_counter", "_value")

    def __init__(self, counter: LabelledCount, value: str) -> None:
        self._counter = counter
        self._value = value

    def inc(self, amount: int = 1) -> None:
        self._counter.counts[self._value] += amount


class FastHistogram:
    """A histogram kept as plain ints; ``observe`` is one bisect and two adds."""

    __slots__ = ("bounds", "counts", "doc", "n", "name", "total")

    def __init__(self, name: str, doc: str, buckets: Sequence[float]) -> None:
        self.name = name
        self.doc = doc
        self.bounds = tuple(buckets)
        self.counts = [0] * (len(self.bounds) + 1)
        self.total = 0.0
        self.n = 0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value
        self.n += 1

    def collect(self) -> Metric:
        cumulative, running = [], 0
        for bound, count in zip(self.bounds, self.counts, strict=False):
            running += count
            cumulative.append((repr(bound), running))
        cumulative.append(("+Inf", self.n))
        return HistogramMetricFamily(self.name, self.doc, buckets=cumulative, sum_value=self.total)


class _HotCollector:
    def __init__(self, *metrics: LabelledCount | FastHistogram) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        for metric in self._metrics:
            yield metric.collect()


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.connections = Gauge(
            "vestibule_connections", "Open websocket connections", ["endpoint"], registry=r
        )
        self.rooms = Gauge("vestibule_rooms", "Rooms with someone in them", registry=r)
        self.sessions = Gauge(
            "vestibule_sessions", "Sessions, attached or within their resume window", registry=r
        )
        self.messages_in = LabelledCount(
            "vestibule_messages_in", "Client messages received", "type"
        )
        self.messages_out = LabelledCount(
            "vestibule_messages_out", "Messages sent to clients", "type"
        )
        self.errors = Counter("vestibule_errors", "Errors sent, by code", ["code"], registry=r)
        self.join_latency = Histogram(
            "vestibule_join_seconds",
            "hello received -> welcome sent",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
            registry=r,
        )
        self.relay_latency = FastHistogram(
            "vestibule_relay_seconds",
            "signal frame received -> relayed frame written",
            (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01),
        )
        r.register(_HotCollector(self.messages_in, self.messages_out, self.relay_latency))
        self.slow_consumers = Counter(
            "vestibule_slow_consumers",
            "Connections closed for not reading",
            ["endpoint"],
            registry=r,
        )
        self.presence_retries = Counter(
            "vestibule_presence_retries",
            "Presence log writes retried because the store could not be reached",
            registry=r,
        )
        self.presence_backlog = Gauge(
            "vestibule_presence_backlog", "Presence events waiting to be written", registry=r
        )
        self.presence_events = Counter(
            "vestibule_presence_events", "Entries appended to team logs", ["topic"], registry=r
        )
        self.rooms_taken_over = Counter(
            "vestibule_rooms_taken_over",
            "Rooms this node loaded from their copy in Redis (their node died or drained)",
            registry=r,
        )
        self.guest_key_alarms = Counter(
            "vestibule_guest_key_alarms",
            "Minutes in which one room received key_attempts_per_room wrong guest keys",
            registry=r,
        )
        self.walk_ins = Counter(
            "vestibule_walk_ins",
            "Walk-in hellos, by outcome (admitted, throttled, refused)",
            ["outcome"],
            registry=r,
        )
        self.webhook_dead_letters = Counter(
            "vestibule_webhook_dead_letters",
            "Webhook deliveries given up after retries",
            registry=r,
        )
        self.mediacheck_verdicts = Counter(
            "vestibule_mediacheck_verdicts", "Media check verdicts", ["verdict"], registry=r
        )
