"""What happened during the play, kept for the report: every forecast issued, the alert
state of each gauge after each of its readings, every event, in the shapes the backtest's
scoring and plots take (alerts.backtest.GaugeRun), so the demo's report is read exactly
like a backtest's."""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np

from alerts.backtest import GaugeRun, Options, Run
from alerts.backtest_input import Gauge
from alerts.events import AlertEvent
from alerts.gauge_state import GaugeState
from floodwatch.catalog import Catalog, Station
from floodwatch.models import Reading
from forecasting.forecast import StationForecast
from forecasting.routing import LearnedModel
from forecasting.series import Series
from forecasting.trend import InsufficientData


@dataclass
class GaugeLog:
    moments: list[float] = field(default_factory=list)
    held: list[int] = field(default_factory=list)
    warned: list[int] = field(default_factory=list)
    warned_at: list[float] = field(default_factory=list)
    forecasts: list[StationForecast] = field(default_factory=list)
    played: list[tuple[datetime, float]] = field(default_factory=list)


def _index(station: Station, key: str | None) -> int:
    keys = [rung.key for rung in station.levels]
    return keys.index(key) if key in keys else -1


class Recorder:
    def __init__(self, catalog: Catalog, station_ids: Iterable[str]) -> None:
        self.catalog = catalog
        self.logs = {sid: GaugeLog() for sid in station_ids if sid in catalog}

    def reading(self, station_id: str, at: datetime, level: float) -> None:
        """Note a played reading (in time order)."""
        log = self.logs.get(station_id)
        if log is not None:
            log.played.append((at, level))

    def reading_before(self, station_id: str, at: datetime) -> tuple[datetime, float] | None:
        """The gauge's played reading just before `at`."""
        log = self.logs.get(station_id)
        if log is None:
            return None
        index = bisect.bisect_left(log.played, at, key=lambda pair: pair[0])
        return log.played[index - 1] if index > 0 else None

    def state(self, station_id: str, at: datetime, state: GaugeState | None) -> None:
        """The gauge's alert state after its reading at `at` (and the forecast after it)."""
        log = self.logs.get(station_id)
        if log is None:
            return
        station = self.catalog[station_id]
        state = state or GaugeState()
        log.moments.append(at.timestamp())
        log.held.append(_index(station, state.active))
        pw = state.prewarning
        log.warned.append(_index(station, pw.key) if pw else -1)
        log.warned_at.append(pw.issued_at.timestamp() if pw else math.nan)

    def forecast(self, forecast: StationForecast) -> None:
        log = self.logs.get(forecast.station_id)
        if log is None:
            return
        if not log.forecasts or log.forecasts[-1].issued_at < forecast.issued_at:
            log.forecasts.append(forecast)

    def gauge_runs(
        self,
        readings: Mapping[str, Sequence[Reading]],
        events: Sequence[AlertEvent],
        models: Mapping[str, LearnedModel | None],
        every_s: float,
    ) -> list[GaugeRun]:
        runs = []
        for sid, log in self.logs.items():
            station = self.catalog[sid]
            stored = readings.get(sid, ())
            t = np.array([r.ts.timestamp() for r in stored], dtype=np.float64)
            level = np.array([r.level for r in stored], dtype=np.float64)
            gauge = Gauge(t, level, [int(r.qc) for r in stored], Series.from_readings(stored))
            model = models.get(sid)
            learned = model if model is not None else InsufficientData("no model learned")
            runs.append(
                GaugeRun(
                    station,
                    station,
                    learned,
                    gauge,
                    every_s,
                    list(log.forecasts),
                    [e for e in events if e.station_id == sid],
                    np.asarray(log.moments, dtype=np.float64),
                    np.asarray(log.held, dtype=np.float64),
                    np.asarray(log.warned, dtype=np.float64),
                    np.asarray(log.warned_at, dtype=np.float64),
                )
            )
        return runs


def as_run(runs: list[GaugeRun], catalog: Path, out: Path, start: float, end: float) -> Run:
    return Run(Options(catalog=catalog, data=out, out=out), start, end, start, runs, [])
