"""The forecaster's in-memory recent history: one bounded `Series` per station.

Readings arrive one MQTT message at a time, often a thousand a second across a fleet;
rebuilding a numpy array per message would cost far more than the message itself. So a
reading only lands in a per-station list, and the list is folded into the arrays when a
forecast needs them (sorting, de-duplicating and trimming to the window in one go).

Readings are added on paho's network thread and folded on forecast worker threads, so each
station's history has a lock; it is held for one append or one station's fold only.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

import orjson

from floodwatch.catalog import Catalog
from forecasting.series import Series

# A station whose forecasts stall (no pass for a long time) must not grow without bound.
FOLD_AFTER = 10_000
# Beyond the travel time, a routing model also reads the upstream gauge's change over a
# short lag before it: 3 h for gauges reporting every 15 min, two days for daily posts.
UPSTREAM_SLACK_H = 48.0


def window_hours(catalog: Catalog, default_h: float) -> dict[str, float]:
    """How much history each station's forecasts need: `default_h`, its trend window, and,
    for an upstream gauge, the longest travel time any gauge below it searches for (a
    daily post on the Amur is read up to 20 days back)."""
    hours = {sid: max(default_h, s.forecast.trend_window_h) for sid, s in catalog.items()}
    for station in catalog.values():
        for upstream in station.upstream:
            need = station.forecast.max_travel_h + UPSTREAM_SLACK_H
            hours[upstream] = max(hours[upstream], need)
    return hours


@dataclass(frozen=True, slots=True)
class CleanReading:
    station_id: str
    t: float  # epoch seconds
    level: float


def parse_clean_reading(payload: bytes) -> CleanReading | None:
    """A reading republished by the collector on floodwatch/readings/{id}, or None if the
    payload is not one (or carries QC flags, which that topic never should)."""
    try:
        body = orjson.loads(payload)
        station_id = body["station_id"]
        ts = datetime.fromisoformat(body["ts"])
        level = body["level"]
        flags = body.get("qc", [])
    except (orjson.JSONDecodeError, TypeError, KeyError, ValueError):
        return None
    if not isinstance(station_id, str) or ts.tzinfo is None or flags:
        return None
    if isinstance(level, bool) or not isinstance(level, int | float):
        return None
    return CleanReading(station_id, ts.timestamp(), float(level))


class StationHistory:
    """Recent clean levels of one station, at most `window_s` seconds before the fold time."""

    __slots__ = ("_lock", "_pending", "_series", "window_s")

    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self._series = Series.empty()
        self._pending: list[tuple[float, float]] = []
        self._lock = threading.Lock()

    def add(self, t: float, level: float) -> None:
        """Cheap: the arrays are rebuilt only by `series()`."""
        with self._lock:
            self._pending.append((t, level))
            if len(self._pending) >= FOLD_AFTER:
                self._fold(max(t for t, _ in self._pending))

    def prime(self, series: Series) -> None:
        """Merge stored history (readings received meanwhile win at equal times)."""
        with self._lock:
            self._series = series.append(self._series)

    def series(self, now: float) -> Series:
        """The window ending at `now`, oldest first; readings newer than `now` are kept too,
        since a gauge clock slightly ahead is still a reading."""
        with self._lock:
            self._fold(now)
            return self._series

    def _fold(self, now: float) -> None:
        if self._pending:
            self._series = self._series.append(Series.from_pairs(self._pending))
            self._pending = []
        if len(self._series) and self._series.t[0] < now - self.window_s:
            self._series = self._series.since(now - self.window_s)

    def __len__(self) -> int:
        return len(self._series) + len(self._pending)


class History:
    """Every catalog station's `StationHistory`; readings of other stations are refused."""

    def __init__(self, windows_h: Mapping[str, float]) -> None:
        self._stations = {sid: StationHistory(hours * 3600) for sid, hours in windows_h.items()}

    def window_s(self, station_id: str) -> float:
        return self._stations[station_id].window_s

    def add(self, reading: CleanReading) -> bool:
        station = self._stations.get(reading.station_id)
        if station is None:
            return False
        station.add(reading.t, reading.level)
        return True

    def prime(self, station_id: str, series: Series) -> None:
        self._stations[station_id].prime(series)

    def series(self, station_id: str, now: float) -> Series:
        station = self._stations.get(station_id)
        return station.series(now) if station is not None else Series.empty()
