"""The alert engine's Prometheus metrics, one registry per engine instance.

Names start with floodwatch_alert_, so they can be served on one /metrics with the
collector's and the forecaster's when the components share a process.
"""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from alerts.gauge_state import GaugeState
from floodwatch.catalog import Catalog, Severity
from floodwatch.guard import INTERNAL_ERROR, InternalError

# A commit is one small SQLite transaction: well under a millisecond on a healthy disk.
_COMMIT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5)


class AlertMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.inputs = Counter(
            "floodwatch_alert_inputs",
            "Inputs the alert engine evaluated, by kind: reading, flagged (a QC-flagged "
            "reading from the station state), forecast, tick, catalog, override",
            ["kind"],
            registry=r,
        )
        self.ignored = Counter(
            "floodwatch_alert_inputs_ignored",
            "Messages the alert engine ignored, by reason: unknown_station, bad_payload, "
            "internal_error",
            ["reason"],
            registry=r,
        )
        self.internal_errors = Counter(
            "floodwatch_alert_internal_errors",
            "Inputs whose handling raised unexpectedly (a bug), by exception type; each is "
            "also counted as ignored with reason internal_error",
            ["error"],
            registry=r,
        )
        self.events = Counter(
            "floodwatch_alert_events",
            "Alert events added to the outbox, by kind",
            ["kind"],
            registry=r,
        )
        self.commit_seconds = Histogram(
            "floodwatch_alert_commit_duration_seconds",
            "Time to store a gauge's new state and its events in one transaction",
            buckets=_COMMIT_BUCKETS,
            registry=r,
        )
        self.store_errors = Counter(
            "floodwatch_alert_store_errors",
            "Alert state commits that failed (the input is re-decided with the next one)",
            registry=r,
        )
        self.catalog_reloads = Counter(
            "floodwatch_alert_catalog_reloads",
            "Catalog file changes seen, by outcome: applied, refused (invalid; the last "
            "good catalog is kept)",
            ["outcome"],
            registry=r,
        )
        self.override_problems = Counter(
            "floodwatch_alert_override_problems",
            "Stations whose stored threshold overrides no longer fit the catalog (ignored)",
            registry=r,
        )
        self.mqtt_connected = Gauge(
            "floodwatch_alert_mqtt_connected",
            "1 while the alert engine is connected to the broker",
            registry=r,
        )
        self.active = Gauge(
            "floodwatch_alert_gauges_active",
            "Gauges at or above a rung of their ladder, by severity",
            ["severity"],
            registry=r,
        )
        self.health = Gauge(
            "floodwatch_alert_gauges_unhealthy",
            "Gauges by health problem: offline, faulty, maintenance",
            ["problem"],
            registry=r,
        )

    def count_gauges(self, states: Mapping[str, GaugeState], catalog: Catalog) -> None:
        active = {rank.name.lower(): 0 for rank in Severity}
        problems = {"offline": 0, "faulty": 0, "maintenance": 0}
        for station_id, state in states.items():
            station = catalog.get(station_id)
            rungs = {rung.key: rung for rung in station.levels} if station else {}
            if state.active in rungs:
                active[rungs[state.active].severity] += 1
            for problem in problems:
                problems[problem] += bool(getattr(state, problem))
        for severity, count in active.items():
            self.active.labels(severity).set(count)
        for problem, count in problems.items():
            self.health.labels(problem).set(count)

    def render(self) -> bytes:
        return bytes(generate_latest(self.registry))

    def count_internal_error(self, error: InternalError) -> None:
        self.ignored.labels(INTERNAL_ERROR).inc()
        self.internal_errors.labels(error.error).inc()
