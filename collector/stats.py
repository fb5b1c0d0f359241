"""What the collector writes for Grafana besides readings: each gauge's state and its own
counts (measurements `station_state`, `collector`, `collector_rejections`; see
floodwatch/storage/health_lines.py).

Written every `FLOODWATCH_STATS_INTERVAL_S` by a task of its own, straight to the store and
never spooled: a failed write is logged and dropped, and can neither hold up nor lose a
reading. A station's state is written when it changed, and every `REFRESH_TICKS` ticks
anyway, so its `age_s` keeps growing in InfluxDB while the gauge is silent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from alerts.channels.current import CurrentAlert
from collector.metrics import CollectorMetrics
from floodwatch.catalog import Catalog, Severity, Station
from floodwatch.errors import StoreRejected, StoreUnavailable
from floodwatch.log_limit import LogLimit
from floodwatch.models import FAULT_FLAGS, QCFlag, Reading, utc_now
from floodwatch.storage.base import ReadingStore
from floodwatch.storage.health_lines import CollectorStatsPoint, HealthPoint, StationStatePoint
from forecasting.state import StateForecast

log = logging.getLogger(__name__)

# An unchanged state is written again every this many ticks (a minute at the default 10 s).
REFRESH_TICKS = 6
FAILURE_LOGS_PER_MINUTE = 2

FieldMap = dict[str, float | int | bool | str | None]


def _ms(text: Any) -> int | None:
    """Epoch ms of an ISO 8601 string from a published summary; None if absent or bad."""
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return round(moment.timestamp() * 1000) if moment.tzinfo else None


def _number(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def _rank(severity: Any) -> int:
    name = severity.upper() if isinstance(severity, str) else ""
    return int(Severity[name]) if name in Severity.__members__ else 0


def ladder_fields(station: Station, reading: Reading) -> FieldMap:
    """Lowest rung value per severity (threshold lines) and the severity the level reached."""
    fields: FieldMap = {}
    reached = 0
    for rung in station.levels:
        fields.setdefault(f"{rung.severity}_value", float(rung.value))
        # A flagged reading (spike, maintenance...) reaches nothing, as for the engine.
        if reading.is_clean and reading.level >= rung.value:
            reached = max(reached, int(rung.severity_rank))
    # The catalog's verdict on the latest reading, independent of the alert engine:
    # Grafana's own alert rule reads it, so a stopped engine cannot hide a gauge at danger.
    fields["level_rank"] = reached
    return fields


def forecast_fields(forecast: StateForecast | None) -> FieldMap:
    if forecast is None:
        return {}
    trend = forecast.trend or {}
    upcoming = forecast.forecast.get("next") or {}
    horizon = forecast.forecast.get("horizon") or {}
    return {
        "trend": trend.get("direction") if isinstance(trend.get("direction"), str) else None,
        "rate_per_h": _number(trend.get("rate_per_h")),
        "next_key": upcoming.get("key") if isinstance(upcoming.get("key"), str) else None,
        "next_value": _number(upcoming.get("value")),
        "next_status": upcoming.get("status") if isinstance(upcoming.get("status"), str) else None,
        "next_expected": _ms(upcoming.get("expected_at")),
        "forecast_level": _number(horizon.get("level")),
        "forecast_horizon_h": _number(horizon.get("horizon_h")),
    }


def alert_fields(alert: CurrentAlert | None) -> FieldMap:
    level = alert.level if alert else None
    prewarning = alert.prewarning if alert else None
    return {
        # Integers, not booleans: InfluxQL can sum, count and compare them, Grafana can
        # colour them by threshold.
        "alert_rank": _rank(level.get("severity")) if level else 0,
        "alert_level": str(level.get("key")) if level else "none",
        "prewarning_key": str(prewarning.get("key")) if prewarning else None,
        "prewarning_expected": _ms(prewarning.get("expected_at")) if prewarning else None,
    }


def state_point(
    station: Station,
    reading: Reading,
    forecast: StateForecast | None,
    alert: CurrentAlert | None,
    now: datetime,
    offline_after_s: float,
) -> StationStatePoint:
    """The `station_state` point of one gauge at `now`."""
    age_s = max(0.0, (now - reading.ts).total_seconds())
    fields: FieldMap = {
        "name": station.name("en"),
        "lat": float(station.lat),
        "lon": float(station.lon),
        "unit": station.unit,
        "level": float(reading.level),
        "reading_ts": reading.ts_ms,
        "age_s": age_s,
        "qc": int(reading.qc),
        "faulty": int(bool(reading.qc & FAULT_FLAGS)),
        # Held by quality control until the next reading decides (a gauge that fell silent
        # right after a suspect reading stays so): dispatchers should look.
        "suspect": int(bool(reading.qc & QCFlag.SUSPECT)),
        "maintenance": int(station.maintenance),
        # The alert engine's verdict when it runs; else the collector's own clock.
        "offline": int((alert is not None and alert.offline) or age_s > offline_after_s),
    }
    fields |= ladder_fields(station, reading)
    fields |= alert_fields(alert)
    fields |= forecast_fields(forecast)
    return StationStatePoint(station.id, now, fields)


@dataclass(frozen=True, slots=True)
class Counters:
    """The collector's cumulative counters at one moment."""

    totals: Mapping[str, float]
    rejected: Mapping[str, float]
    lag_sum: float
    lag_count: float
    spool_depth: float = 0.0

    @classmethod
    def read(cls, metrics: CollectorMetrics) -> Counters:
        registry = metrics.registry
        names = ("received", "accepted", "written", "spooled", "dead_lettered")
        totals = {name: metrics.total(f"floodwatch_readings_{name}") for name in names}
        rejected = {
            sample.labels["reason"]: sample.value
            for family in registry.collect()
            for sample in family.samples
            if sample.name == "floodwatch_readings_rejected_total"
        }
        lag_sum = registry.get_sample_value("floodwatch_ingest_lag_seconds_sum") or 0.0
        lag_count = registry.get_sample_value("floodwatch_ingest_lag_seconds_count") or 0.0
        depth = registry.get_sample_value("floodwatch_spool_depth") or 0.0
        return cls(totals, rejected, float(lag_sum), float(lag_count), float(depth))


def stats_point(
    collector: str, before: Counters, after: Counters, interval_s: float, now: datetime
) -> CollectorStatsPoint:
    """The counts of one interval (differences of cumulative counters)."""
    fields: FieldMap = {
        name: round(after.totals[name] - before.totals.get(name, 0.0)) for name in after.totals
    }
    rejections = {
        reason: round(count - before.rejected.get(reason, 0.0))
        for reason, count in after.rejected.items()
    }
    fields["rejected"] = sum(rejections.values())
    fields["interval_s"] = float(interval_s)
    fields["spool_depth"] = round(after.spool_depth)
    stored = after.lag_count - before.lag_count
    fields["lag_mean_s"] = (after.lag_sum - before.lag_sum) / stored if stored > 0 else None
    return CollectorStatsPoint(collector, now, fields, rejections)


def _same(previous: tuple[object, ...] | None, identity: tuple[object, ...]) -> bool:
    """The same objects as last time: nothing about the station changed."""
    return previous is not None and all(a is b for a, b in zip(previous, identity, strict=True))


class HealthWriter:
    """The collector's task that writes station state and statistics to the store."""

    def __init__(
        self,
        store: ReadingStore,
        catalog: Catalog,
        metrics: CollectorMetrics,
        *,
        collector: str,
        interval_s: float,
        offline_after_s: float,
        latest: Mapping[str, Reading],
        forecasts: Mapping[str, StateForecast],
        alerts: Mapping[str, CurrentAlert],
    ) -> None:
        self._store, self._catalog, self._metrics = store, catalog, metrics
        self._collector, self._interval_s = collector, interval_s
        self._offline_after_s = offline_after_s
        self._latest, self._forecasts, self._alerts = latest, forecasts, alerts
        self._written: dict[str, tuple[object, ...]] = {}
        self._tick = 0
        self._failures = LogLimit(FAILURE_LOGS_PER_MINUTE)

    async def run(self, stopping: asyncio.Event) -> None:
        before, since = Counters.read(self._metrics), time.monotonic()
        while not stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), self._interval_s)
            after, now_mono = Counters.read(self._metrics), time.monotonic()
            now = utc_now()
            points: list[HealthPoint] = [
                stats_point(self._collector, before, after, now_mono - since, now),
                *self._states(now),
            ]
            before, since = after, now_mono
            await self._write(points)

    def _states(self, now: datetime) -> list[StationStatePoint]:
        self._tick += 1
        refresh = self._tick % REFRESH_TICKS == 0
        points = []
        for station_id, reading in list(self._latest.items()):
            station = self._catalog.get(station_id)
            if station is None:
                continue
            forecast, alert = self._forecasts.get(station_id), self._alerts.get(station_id)
            identity = (reading, forecast, alert, station)
            if not refresh and _same(self._written.get(station_id), identity):
                continue
            self._written[station_id] = identity
            points.append(
                state_point(station, reading, forecast, alert, now, self._offline_after_s)
            )
        return points

    async def _write(self, points: list[HealthPoint]) -> None:
        try:
            await self._store.write_health(points)
        except (StoreUnavailable, StoreRejected) as exc:
            if self._failures.allow():
                log.warning("station state and statistics not stored (dropped): %s", exc)
