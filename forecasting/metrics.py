"""The forecaster's Prometheus metrics, one registry per forecaster instance.

Names differ from the collector's, so both registries can be served on one /metrics when
the two components run in one process.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from floodwatch.guard import INTERNAL_ERROR, InternalError

# A pass over 1,000 gauges costs about a second of CPU; a prompt run a few milliseconds.
_PASS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class ForecasterMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.runs = Counter(
            "floodwatch_forecast_runs",
            "Forecast runs, by kind: scheduled passes over every station, prompt single-station",
            ["kind"],
            registry=r,
        )
        self.stations = Counter(
            "floodwatch_forecast_stations",
            "Station forecasts made, by method (routing, autoregressive, trend, none)",
            ["method"],
            registry=r,
        )
        self.insufficient = Counter(
            "floodwatch_forecast_insufficient",
            "Station forecasts that could not be made for lack of data",
            registry=r,
        )
        self.store_errors = Counter(
            "floodwatch_forecast_store_errors",
            "Failed store operations of the forecaster, by kind",
            ["kind"],
            registry=r,
        )
        self.pass_seconds = Histogram(
            "floodwatch_forecast_pass_duration_seconds",
            "Wall time of a forecast run, by kind",
            ["kind"],
            buckets=_PASS_BUCKETS,
            registry=r,
        )
        self.last_pass = Gauge(
            "floodwatch_forecast_last_pass_timestamp_seconds",
            "When the last scheduled pass finished (epoch seconds)",
            registry=r,
        )
        self.readings = Counter(
            "floodwatch_forecast_readings_received",
            "Clean readings the forecaster took into its history",
            registry=r,
        )
        self.ignored = Counter(
            "floodwatch_forecast_readings_ignored",
            "Messages on floodwatch/readings/+ the forecaster ignored, by reason",
            ["reason"],
            registry=r,
        )
        self.internal_errors = Counter(
            "floodwatch_forecaster_internal_errors",
            "Messages whose handling raised unexpectedly (a bug), by exception type; each is "
            "also counted as ignored with reason internal_error",
            ["error"],
            registry=r,
        )
        self.models = Counter(
            "floodwatch_forecast_models",
            "Station models made ready, by outcome: loaded (stored and current), learned, "
            "insufficient (too little history; the trend is used), failed",
            ["outcome"],
            registry=r,
        )
        self.mqtt_connected = Gauge(
            "floodwatch_forecaster_mqtt_connected",
            "1 while the forecaster is connected to the broker",
            registry=r,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def count_internal_error(self, error: InternalError) -> None:
        self.ignored.labels(INTERNAL_ERROR).inc()
        self.internal_errors.labels(error.error).inc()
