"""The collector's Prometheus metrics, one registry per collector instance."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

# Latency buckets from 5 ms to 2 min: the publish-to-stored goal is p99 <= 1 s, and a
# spooled reading during a store outage legitimately takes minutes.
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class CollectorMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.received = Counter(
            "floodwatch_readings_received", "Gauge messages received from the broker", registry=r
        )
        self.accepted = Counter(
            "floodwatch_readings_accepted", "Messages decoded and validated as readings", registry=r
        )
        self.rejected = Counter(
            "floodwatch_readings_rejected", "Messages rejected, by reason", ["reason"], registry=r
        )
        self.internal_errors = Counter(
            "floodwatch_collector_internal_errors",
            "Messages whose handling raised unexpectedly (a bug), by exception type; each is "
            "also counted as a rejection with reason internal_error",
            ["error"],
            registry=r,
        )
        self.flagged = Counter(
            "floodwatch_readings_flagged",
            "Accepted readings carrying a QC flag",
            ["flag"],
            registry=r,
        )
        self.revised = Counter(
            "floodwatch_readings_revised",
            "Suspect readings a later reading settled, by verdict: confirmed (a real move of "
            "the river, now clean) or spike (it came back); each is stored again",
            ["verdict"],
            registry=r,
        )
        self.written = Counter(
            "floodwatch_readings_written", "Readings written to the store", registry=r
        )
        self.spooled = Counter(
            "floodwatch_readings_spooled", "Readings put in the local spool", registry=r
        )
        self.dead_lettered = Counter(
            "floodwatch_readings_dead_lettered",
            "Readings the store refused outright (kept in the spool's dead-letter table)",
            registry=r,
        )
        self.store_errors = Counter(
            "floodwatch_store_errors", "Failed store operations, by kind", ["kind"], registry=r
        )
        self.spool_depth = Gauge(
            "floodwatch_spool_depth", "Readings waiting in the spool", registry=r
        )
        self.mqtt_connected = Gauge(
            "floodwatch_mqtt_connected", "1 while connected to the broker", registry=r
        )
        self.store_up = Gauge(
            "floodwatch_store_up", "1 while the last store operation succeeded", registry=r
        )
        self.lag = Histogram(
            "floodwatch_ingest_lag_seconds",
            "From a reading's own timestamp to it being stored (end-to-end lag)",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.latency = Histogram(
            "floodwatch_pipeline_latency_seconds",
            "From receipt by the collector to being stored or spooled",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )

    def total(self, name: str) -> float:
        """The sum of a counter over all its labels, e.g. every rejection reason."""
        return sum(
            sample.value
            for family in self.registry.collect()
            for sample in family.samples
            if sample.name == f"{name}_total"
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
