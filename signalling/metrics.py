"""Prometheus metrics, one registry per app (so several apps can live in one test)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


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
        self.messages_in = Counter(
            "vestibule_messages_in", "Client messages received", ["type"], registry=r
        )
        self.messages_out = Counter(
            "vestibule_messages_out", "Messages sent to clients", ["type"], registry=r
        )
        self.errors = Counter("vestibule_errors", "Errors sent, by code", ["code"], registry=r)
        self.join_latency = Histogram(
            "vestibule_join_seconds",
            "hello received -> welcome sent",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
            registry=r,
        )
        self.relay_latency = Histogram(
            "vestibule_relay_seconds",
            "signal frame received -> relayed frame queued",
            buckets=(0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01),
            registry=r,
        )
        self.slow_consumers = Counter(
            "vestibule_slow_consumers",
            "Connections closed for not reading",
            ["endpoint"],
            registry=r,
        )
        self.presence_events = Counter(
            "vestibule_presence_events", "Entries appended to team logs", ["topic"], registry=r
        )
        self.webhook_dead_letters = Counter(
            "vestibule_webhook_dead_letters",
            "Webhook deliveries given up after retries",
            registry=r,
        )
        self.mediacheck_verdicts = Counter(
            "vestibule_mediacheck_verdicts", "Media check verdicts", ["verdict"], registry=r
        )
