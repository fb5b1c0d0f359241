"""Backtest: replay a recording through the forecaster and the alert state machine.

No servers: the replay CSV is read once, checked by the collector's quality control,
and each gauge's readings are fed in time order to the same `on_reading`, `on_forecast`
and `on_tick` the engine uses, with forecasts from the same `forecast_station`, issued
from the readings known at that moment only. Models learn from data before
`learn_until`. Reading and --set: backtest_input; reuse between runs: backtest_cache;
scoring, the report and the plots: backtest_score, backtest_report, backtest_plot.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from alerts.backtest_cache import Cache
from alerts.backtest_input import (
    DAY,
    BacktestError,
    Gauge,
    apply_overrides,
    catalog_station,
    default_start,
    read_gauges,
)
from alerts.events import AlertEvent
from alerts.forecast_view import from_forecast
from alerts.gauge_state import GaugeState
from alerts.state_machine import AlertRules, on_forecast, on_reading, on_tick
from floodwatch.catalog import Station, load_catalog
from floodwatch.models import QCFlag
from forecasting.forecast import StationForecast, forecast_station, outlooks
from forecasting.routing import LearnedModel
from forecasting.series import FloatArray
from forecasting.trend import HOUR, InsufficientData

DEFAULT_ISSUE_EVERY_MIN = 60.0
WARM_UP_DAYS = 7.0
WARM_UP_READINGS = 20


@dataclass(frozen=True)
class Options:
    catalog: Path
    data: Path
    out: Path
    sets: Sequence[str] = ()
    gauges: Sequence[str] = ()  # backtest only these (the others still feed them); default all
    margins: Sequence[str] = ()
    start: datetime | None = None  # evaluation start; default: see `default_start`
    until: datetime | None = None  # evaluation end (later readings are not read)
    learn_until: datetime | None = None  # default: the evaluation start
    issue_every_min: float | None = None  # default: max(60 min, reporting interval)
    rules: AlertRules = field(default_factory=AlertRules)
    plots: bool = True


@dataclass(frozen=True)
class GaugeRun:
    station: Station
    catalog_station: Station  # before --set / --margin
    model: LearnedModel | InsufficientData
    gauge: Gauge
    issue_every_s: float
    forecasts: list[StationForecast]  # issued in the evaluation window, for this ladder
    events: list[AlertEvent]  # decided in the evaluation window
    moments: FloatArray  # reading times in the window
    held: FloatArray  # index of the rung held after each moment (-1: none)
    warned: FloatArray  # index of the rung pre-warned after each moment (-1: none)
    warned_at: FloatArray  # when that pre-warning was last issued or updated (NaN: none)


@dataclass(frozen=True)
class Run:
    options: Options
    start: float
    end: float
    learn_until: float
    gauges: list[GaugeRun]
    ignored: list[str]  # station ids in the data but not in the catalog


def issue_times(t: FloatArray, start: float, every_s: float) -> FloatArray:
    """The first reading at or after each multiple of `every_s` (from the epoch), from
    `start` on: forecasts on a fixed clock, each from a reading just received."""
    window = t[t >= start]
    if window.size == 0:
        return window
    slot = np.floor(window / every_s)
    first = np.concatenate([[True], slot[1:] != slot[:-1]])
    issued: FloatArray = window[first]
    return issued


def with_ladder(forecast: StationForecast, station: Station) -> StationForecast:
    """A threshold-free forecast with the outlooks for this ladder (forecast_station's own
    last step), so cached forecasts serve any --set."""
    if forecast.trend is None:
        return forecast
    return replace(forecast, outlooks=outlooks(forecast.trend, forecast.horizons, station.levels))


def forecasts_for(
    station: Station,
    gauges: Mapping[str, Gauge],
    model: LearnedModel | None,
    issued: FloatArray,
) -> list[StationForecast]:
    settings = station.forecast
    observed = gauges[station.id].clean
    upstream = {sid: gauges[sid].clean for sid in station.upstream if sid in gauges}
    horizons = [h * HOUR for h in settings.horizons_h]
    return [
        forecast_station(
            station.id,
            (),
            observed,
            upstream,
            model,
            float(now),
            horizons_s=horizons,
            trend_window_s=settings.trend_window_h * HOUR,
        )
        for now in issued
    ]


def replay_gauge(
    station: Station,
    gauge: Gauge,
    forecasts: Sequence[StationForecast],
    start: float,
    rules: AlertRules,
) -> tuple[list[AlertEvent], FloatArray, FloatArray, FloatArray, FloatArray]:
    """Readings and forecasts through the state machine, in time order; events and the
    pre-warning state kept from `start` on.

    The readings of a warm-up before `start` (WARM_UP_DAYS, at least WARM_UP_READINGS)
    go through too, silently, so a gauge already above a mark at `start` holds it rather
    than raising an alert that nobody would have received then.
    """
    step = float(np.median(np.diff(gauge.t))) if gauge.t.size > 1 else HOUR
    # Daily posts are not offline between two readings: silence counts after 3 intervals.
    rules = replace(rules, offline_after_s=max(rules.offline_after_s, 3 * step))
    by_time = {fc.issued_at: fc for fc in forecasts}
    index = {rung.key: i for i, rung in enumerate(station.levels)}
    state = GaugeState()
    events: list[AlertEvent] = []
    held: list[int] = []
    warned: list[int] = []
    warned_at: list[float] = []
    warm_up = max(WARM_UP_DAYS * DAY, WARM_UP_READINGS * step)
    first = int(np.searchsorted(gauge.t, start - warm_up, side="left"))
    begin = int(np.searchsorted(gauge.t, start, side="left"))
    arrivals = gauge.arrivals()
    settles = _settles(gauge.settled())
    last = math.nan
    for i in range(first, gauge.t.size):
        t = float(gauge.t[i])
        new: list[AlertEvent] = []
        if t - last > rules.offline_after_s:
            silent = datetime.fromtimestamp(last + rules.offline_after_s + 1, UTC)
            ticked = on_tick(state, station, silent, rules)
            state = ticked.state
            new.extend(ticked.events)
        # As the engine hears it: the suspects this reading settled, with their verdict
        # (a confirmed one is decided at its own time, now), then this reading as it came.
        for k in (*settles.get(i, ()), i):
            at = datetime.fromtimestamp(float(gauge.t[k]), UTC)
            flag = QCFlag(gauge.flags[k] if k != i else arrivals[k])
            moved = on_reading(state, station, float(gauge.level[k]), at, rules, flag)
            state = moved.state
            new.extend(moved.events)
        forecast = by_time.get(t)
        if forecast is not None:
            moved = on_forecast(state, station, from_forecast(forecast), rules)
            state = moved.state
            new.extend(moved.events)
        last = t
        if i < begin:
            continue
        events.extend(new)
        pw = state.prewarning
        held.append(index.get(state.active, -1) if state.active else -1)
        warned.append(index.get(pw.key, -1) if pw else -1)
        warned_at.append(pw.issued_at.timestamp() if pw else math.nan)
    as_array = functools.partial(np.asarray, dtype=np.float64)
    return events, gauge.t[begin:], as_array(held), as_array(warned), as_array(warned_at)


def _settles(settled_by: Sequence[int]) -> dict[int, list[int]]:
    """For each reading, the earlier ones whose verdict it settled, oldest first."""
    found: dict[int, list[int]] = {}
    for k, j in enumerate(settled_by):
        if j >= 0:
            found.setdefault(j, []).append(k)
    return found


def run_backtest(options: Options) -> Run:
    """Everything but the output: read, learn (or reuse), forecast (or reuse), replay."""
    catalog = load_catalog(options.catalog)
    stations = apply_overrides(catalog, options.sets, options.margins)
    for station_id in options.gauges:
        catalog_station(catalog, station_id, "--gauges")
    chosen = list(dict.fromkeys(options.gauges))
    needed = {u for sid in chosen for u in catalog[sid].upstream} | set(chosen)
    gauges, ignored = read_gauges(options.data, catalog, needed or None, options.until)
    missing = [sid for sid in chosen if sid not in gauges]
    if missing:
        raise BacktestError(f"--gauges: no readings of {', '.join(missing)} in {options.data}")
    start = options.start.timestamp() if options.start else default_start(gauges)
    learn_until = options.learn_until.timestamp() if options.learn_until else start
    end = max(float(g.t[-1]) for g in gauges.values())
    if start > end:
        raise BacktestError(
            f"--from {options.start}: after the last reading of {options.data}"
            + (f" up to --until {options.until}" if options.until else "")
        )
    cache = Cache(options.out / "cache")
    runs = []
    for station_id in chosen or sorted(gauges, key=list(catalog).index):
        # A gauge under repair today still had readings then: backtest it as working.
        station = stations[station_id].model_copy(update={"maintenance": False})
        gauge = gauges[station_id]
        clean = {sid: gauges[sid].clean for sid in (station_id, *station.upstream) if sid in gauges}
        learned, model_key = cache.model(station, clean, learn_until)
        model = learned if isinstance(learned, LearnedModel) else None
        step = gauge.clean.typical_step() or HOUR
        every = (options.issue_every_min or max(DEFAULT_ISSUE_EVERY_MIN, step / 60)) * 60
        issued = issue_times(gauge.t, start, every)
        compute = functools.partial(forecasts_for, station, gauges, model, issued)
        raw = cache.forecasts(station, clean, model_key, issued, compute)
        forecasts = [with_ladder(fc, station) for fc in raw]
        events, moments, held, warned, warned_at = replay_gauge(
            station, gauge, forecasts, start, options.rules
        )
        runs.append(
            GaugeRun(
                station,
                catalog[station_id],
                learned,
                gauge,
                every,
                forecasts,
                events,
                moments,
                held,
                warned,
                warned_at,
            )
        )
    cache.save()
    return Run(options, start, end, learn_until, runs, ignored)


def backtest(options: Options) -> int:
    """`floodwatch backtest`: run, write summary.json and the plots, print the table."""
    from alerts.backtest_report import summary_table, write_summary
    from alerts.backtest_score import score_run

    began = time.perf_counter()
    run = run_backtest(options)
    scores = score_run(run)
    options.out.mkdir(parents=True, exist_ok=True)
    plots: dict[str, str] = {}
    if options.plots:
        from alerts.backtest_plot import plot_gauge

        for gauge, score in zip(run.gauges, scores, strict=True):
            plots[gauge.station.id] = plot_gauge(gauge, score, run, options.out).name
    elapsed = time.perf_counter() - began
    write_summary(run, scores, plots, elapsed, options.out / "summary.json")
    print(summary_table(run, scores))
    print(f"wrote {options.out / 'summary.json'} and {len(plots)} hydrographs; {elapsed:.1f} s")
    return 0
