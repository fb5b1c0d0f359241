"""The dispatcher's Prometheus metrics, one registry per dispatcher.

Names start with floodwatch_alert_delivery, so they can be served on one /metrics beside
the engine's, the collector's and the forecaster's.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

# From the outbox commit to the channel's confirmation: tens of milliseconds normally,
# minutes while a target is down.
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600)


class DispatchMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.delivered = Counter(
            "floodwatch_alert_delivery_delivered",
            "Outbox items confirmed by a channel",
            ["channel"],
            registry=r,
        )
        self.failures = Counter(
            "floodwatch_alert_delivery_failures",
            "Delivery attempts that failed and are retried, by channel",
            ["channel"],
            registry=r,
        )
        self.dropped = Counter(
            "floodwatch_alert_delivery_dropped",
            "Outbox items a channel can never take (logged; other channels still get them)",
            ["channel", "reason"],
            registry=r,
        )
        self.latency = Histogram(
            "floodwatch_alert_delivery_latency_seconds",
            "From the event's commit to the outbox to the channel's confirmation",
            ["channel"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.pending = Gauge(
            "floodwatch_alert_delivery_pending",
            "Outbox items waiting for a channel at its last look (at most one batch)",
            ["channel"],
            registry=r,
        )
        self.up = Gauge(
            "floodwatch_alert_delivery_up",
            "1 while a channel's last delivery attempt succeeded",
            ["channel"],
            registry=r,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
