"""Hindcasts: run the forecaster at past issue times, seeing only what was known then,
and line its forecasts up with what happened and with two baselines."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from floodwatch.catalog import Station
from floodwatch.replay_csv import ReplayRow
from forecasting.forecast import StationForecast, forecast_station
from forecasting.routing import LearnedModel
from forecasting.series import FloatArray, Series, on_grid
from forecasting.trend import HOUR


@dataclass(frozen=True)
class Hindcast:
    station_id: str
    issued: FloatArray  # (n,) epoch seconds
    horizons_s: tuple[float, ...]
    central: FloatArray  # (n, h); NaN where no forecast could be made
    lower: FloatArray
    upper: FloatArray
    persistence: FloatArray  # (n, h): the last reading, held
    linear: FloatArray  # (n, h): least-squares line over the trend window, extended
    observed: FloatArray  # (n, h): what the gauge read at the valid time
    forecasts: tuple[StationForecast, ...]


def linear_extrapolation(
    observed: Series, now: float, window_s: float, horizons_s: Sequence[float]
) -> FloatArray:
    """The plain baseline: an ordinary least-squares line through the window, extended."""
    recent = observed.until(now).since(now - window_s)
    if len(recent) < 2:
        return np.full(len(horizons_s), np.nan)
    t = (recent.t - now) / HOUR
    slope, intercept = np.polyfit(t, recent.level, 1)
    path: FloatArray = intercept + slope * np.asarray(horizons_s) / HOUR
    return path


def hindcast(
    station: Station,
    observed: Series,
    upstream: Mapping[str, Series],
    model: LearnedModel | None,
    issue_times: FloatArray,
) -> Hindcast:
    settings = station.forecast
    horizons = tuple(h * HOUR for h in settings.horizons_h)
    window = settings.trend_window_h * HOUR
    n, k = issue_times.size, len(horizons)
    central, lower, upper, linear = (np.full((n, k), np.nan) for _ in range(4))
    persistence = np.full((n, k), np.nan)
    forecasts = []
    step = observed.typical_step() or HOUR
    for i, now in enumerate(issue_times):
        fc = forecast_station(
            station.id,
            station.levels,
            observed,
            upstream,
            model,
            float(now),
            horizons_s=horizons,
            trend_window_s=window,
        )
        forecasts.append(fc)
        for j, point in enumerate(fc.horizons[:k]):
            central[i, j], lower[i, j], upper[i, j] = point.level, point.lower, point.upper
        known = observed.until(float(now))
        if len(known) and float(now) - float(known.t[-1]) <= window:
            persistence[i, :] = known.level[-1]
        linear[i, :] = linear_extrapolation(observed, float(now), window, horizons)
    valid = issue_times[:, None] + np.asarray(horizons)[None, :]
    actual = on_grid(observed, valid.ravel(), 3 * step).reshape(n, k)
    return Hindcast(
        station.id,
        issue_times,
        horizons,
        central,
        lower,
        upper,
        persistence,
        linear,
        actual,
        tuple(forecasts),
    )


def series_by_station(rows: Iterable[ReplayRow]) -> dict[str, Series]:
    """Group replay rows (any order) into one Series per station."""
    pairs: dict[str, list[tuple[float, float]]] = {}
    for row in rows:
        pairs.setdefault(row.station_id, []).append((row.ts.timestamp(), row.level))
    return {sid: Series.from_pairs(values) for sid, values in pairs.items()}
