"""One station's forecast: trend, levels at fixed horizons with a band, threshold outlooks.

Pure: arrays and the catalog in, a `StationForecast` out. The learned model is used when
every input it needs is at hand; otherwise the gauge's own trend is extrapolated; with too
little data the forecast says so instead of inventing a number.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from floodwatch.catalog import Threshold
from forecasting.routing import LearnedModel, feature_row, lags_needed
from forecasting.series import FloatArray, Series, on_grid
from forecasting.trend import HOUR, InsufficientData, Trend, robust_trend

# 1.645: the two-sided 90 % quantile of the normal distribution.
Z90 = 1.645
# The trend extrapolation's band also grows with the rise itself: a river rarely keeps an
# hourly rate for long, in either direction.
TREND_BAND_GROWTH = 0.25


@dataclass(frozen=True, slots=True)
class HorizonForecast:
    horizon_s: float
    valid_at: float  # epoch seconds
    level: float
    lower: float
    upper: float


@dataclass(frozen=True, slots=True)
class ThresholdOutlook:
    """When a rung of the ladder will be reached. Times are epoch seconds.

    status: "reached" (level already at or above it), "expected" (the central forecast
    reaches it within the horizon), "possible" (only the band's upper edge does), or
    "not_expected" (not within the horizon).
    """

    key: str
    value: float
    severity: str
    status: str
    expected_at: float | None = None
    earliest: float | None = None
    latest: float | None = None


@dataclass(frozen=True, slots=True)
class StationForecast:
    station_id: str
    issued_at: float
    trend: Trend | None
    method: str  # "routing", "autoregressive", "trend", or "none"
    horizons: tuple[HorizonForecast, ...] = ()
    outlooks: tuple[ThresholdOutlook, ...] = ()
    insufficient: str | None = None

    @property
    def max_horizon_s(self) -> float:
        return self.horizons[-1].horizon_s if self.horizons else 0.0


def trend_path(trend: Trend, horizons_s: Sequence[float]) -> list[HorizonForecast]:
    """Straight-line extrapolation of the robust trend, band from noise, slope error, rise."""
    out = []
    for horizon_s in horizons_s:
        h = horizon_s / HOUR
        level = trend.level + trend.rate_per_h * h
        half = Z90 * float(np.hypot(trend.noise, trend.rate_se_per_h * h))
        half += TREND_BAND_GROWTH * abs(trend.rate_per_h) * h
        out.append(
            HorizonForecast(horizon_s, trend.at + horizon_s, level, level - half, level + half)
        )
    return out


def _values_at(series: Series, anchor: float, step_s: float, lags: set[int]) -> dict[int, float]:
    ordered = sorted(lags)
    times = anchor - step_s * np.asarray(ordered, dtype=np.float64)
    return dict(zip(ordered, on_grid(series, times, 3 * step_s).tolist(), strict=True))


def model_path(
    model: LearnedModel, trend: Trend, observed: Series, upstream: Mapping[str, Series]
) -> list[HorizonForecast] | None:
    """The learned model's forecast from the newest reading, or None if an input is missing."""
    anchor = trend.at
    own_lags, up_lags = lags_needed(model)
    own = _values_at(observed, anchor, model.step_s, own_lags)
    pass
    ups = []
    for link in model.upstream:
        series = upstream.get(link.station_id)
        if series is None or len(series) == 0:
            return None
        ups.append((link, _values_at(series, anchor, model.step_s, up_lags[link.station_id])))
    out = []
    for h in model.horizons:
        row = feature_row(
            own, ups, model.own_lags, model.short_lag, model.mean_level, h.horizon_steps
        )
        if not all(math.isfinite(value) for value in row):
            return None
        change = h.intercept + math.fsum(c * x for c, x in zip(h.coef, row, strict=True))
        half = h.band_k * (h.spread_a + h.spread_b * abs(change))
        level = own[0] + change
        horizon_s = h.horizon_steps * model.step_s
        out.append(
            HorizonForecast(horizon_s, anchor + horizon_s, level, level - half, level + half)
        )
    return out


def first_crossing(times: FloatArray, levels: FloatArray, value: float) -> float | None:
    """When a piecewise-linear path first reaches `value` (None if it never does)."""
    above = np.nonzero(levels >= value)[0]
    if above.size == 0:
        return None
    i = int(above[0])
    if i == 0:
        return float(times[0])
    t0, t1, y0, y1 = times[i - 1], times[i], levels[i - 1], levels[i]
    return float(t0 + (t1 - t0) * (value - y0) / (y1 - y0))


def outlooks(
    trend: Trend, path: Sequence[HorizonForecast], ladder: Sequence[Threshold]
) -> tuple[ThresholdOutlook, ...]:
    points = [(p.valid_at, p.level, p.lower, p.upper) for p in path]
    return judge_path(trend.at, trend.level, points, ladder)


def judge_path(
    at: float,
    level: float,
    path: Sequence[tuple[float, float, float, float]],
    ladder: Sequence[Threshold],
) -> tuple[ThresholdOutlook, ...]:
    """Each rung against a forecast path starting at (`at`, `level`); path points are
    (valid_at, level, lower, upper). Also used by the alert engine, which judges the
    forecaster's path again against the ladder in force."""
    times = np.array([at, *(p[0] for p in path)])
    central = np.array([level, *(p[1] for p in path)])
    lower = np.array([level, *(p[2] for p in path)])
    upper = np.array([level, *(p[3] for p in path)])
    result = []
    for rung in ladder:
        if level >= rung.value:
            result.append(ThresholdOutlook(rung.key, rung.value, rung.severity, "reached"))
            continue
        expected = first_crossing(times, central, rung.value)
        earliest = first_crossing(times, upper, rung.value)
        latest = first_crossing(times, lower, rung.value)
        status = "expected" if expected else "possible" if earliest else "not_expected"
        result.append(
            ThresholdOutlook(
                rung.key, rung.value, rung.severity, status, expected, earliest, latest
            )
        )
    return tuple(result)


def forecast_station(
    station_id: str,
    ladder: Sequence[Threshold],
    observed: Series,
    upstream: Mapping[str, Series],
    model: LearnedModel | None,
    now: float,
    *,
    horizons_s: Sequence[float],
    trend_window_s: float,
) -> StationForecast:
    """Everything the forecaster says about one gauge at `now` (only readings <= now used)."""
    known = observed.until(now)
    trend = robust_trend(known, now, trend_window_s)
    if isinstance(trend, InsufficientData):
        return StationForecast(station_id, now, None, "none", insufficient=trend.reason)
    path = None
    method = "trend"
    if model is not None:
        path = model_path(model, trend, known, {k: s.until(now) for k, s in upstream.items()})
        method = model.method
    if path is None:
        path = trend_path(trend, horizons_s)
        method = "trend"
    return StationForecast(
        station_id, now, trend, method, tuple(path), outlooks(trend, path, ladder)
    )
