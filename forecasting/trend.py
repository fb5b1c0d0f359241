"""A trend robust to noise and single bad readings: level now, rate of rise, acceleration.

The slope is the Theil–Sen estimator (the median of all pairwise slopes; Sen 1968,
J. Am. Stat. Assoc. 63:1379), which ignores up to ~29 % of arbitrary outliers, so one
spike that slipped past QC cannot turn a steady river into a rising one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from forecasting.series import FloatArray, Series

HOUR = 3600.0
# MAD → standard deviation for normally distributed noise.
MAD_TO_SIGMA = 1.4826


@dataclass(frozen=True, slots=True)
class InsufficientData:
    """Why no trend or forecast can be given; shown as is, never replaced by a guess."""

    reason: str


@dataclass(frozen=True, slots=True)
class Trend:
    level: float  # robust level at `at`, in the station's unit
    at: float  # epoch seconds of the newest reading used
    rate_per_h: float
    rate_se_per_h: float  # standard error of the rate
    accel_per_h2: float | None  # change of the rate per hour; None when the window is too thin
    accelerating: bool  # rising, and the rise is significantly faster than earlier
    noise: float  # robust scatter of readings around the trend line
    points: int

    @property
    def direction(self) -> str:
        """'rising', 'falling' or 'steady': a rate within twice its standard error is steady."""
        if abs(self.rate_per_h) <= max(2 * self.rate_se_per_h, 1e-9):
            return "steady"
        return "rising" if self.rate_per_h > 0 else "falling"


def theil_sen(t: FloatArray, y: FloatArray) -> tuple[float, float]:
    """(slope, intercept at t[-1]) by Theil–Sen; the intercept is the median residual."""
    i, j = np.triu_indices(t.size, k=1)
    dt = t[j] - t[i]
    slopes = (y[j] - y[i])[dt > 0] / dt[dt > 0]
    slope = float(np.median(slopes)) if slopes.size else 0.0
    intercept = float(np.median(y - slope * (t - t[-1])))
    return slope, intercept


def _slope_se(t: FloatArray, residuals: FloatArray) -> float:
    """Standard error of a straight-line slope, using a robust residual scale."""
    spread = float(np.sum((t - t.mean()) ** 2))
    if spread <= 0 or t.size < 3:
        return float("inf")
    sigma = MAD_TO_SIGMA * float(np.median(np.abs(residuals - np.median(residuals))))
    return sigma / math.sqrt(spread)


def robust_trend(
    series: Series,
    now: float,
    window_s: float,
    min_points: int = 4,
) -> Trend | InsufficientData:
    """The trend over the last `window_s` seconds before `now` (readings after now ignored).

    Refuses (InsufficientData) when the newest reading is older than the window, when fewer
    than `min_points` readings fall inside it, or when they cover less than half of it.
    """
    known = series.until(now)
    if len(known) == 0:
        return InsufficientData("no readings yet")
    age = now - float(known.t[-1])
    if age > window_s:
        return InsufficientData(f"the newest reading is {age / HOUR:.1f} h old")
    recent = known.since(float(known.t[-1]) - window_s)
    if len(recent) < min_points:
        return InsufficientData(
            f"only {len(recent)} readings in the last {window_s / HOUR:g} h "
            f"(at least {min_points} needed)"
        )
    t = (recent.t - recent.t[-1]) / HOUR
    span = float(t[-1] - t[0])
    if span < 0.5 * window_s / HOUR:
        return InsufficientData(
            f"readings cover only {span:.1f} h of the {window_s / HOUR:g} h window"
        )
    slope, level = theil_sen(t, recent.level)
    residuals = recent.level - (level + slope * t)
    noise = MAD_TO_SIGMA * float(np.median(np.abs(residuals)))
    accel, accelerating = _acceleration(t, recent.level)
    return Trend(
        level=level,
        at=float(recent.t[-1]),
        rate_per_h=slope,
        rate_se_per_h=_slope_se(t, residuals),
        accel_per_h2=accel,
        accelerating=accelerating and slope > 0,
        noise=noise,
        points=len(recent),
    )


def _acceleration(t: FloatArray, y: FloatArray) -> tuple[float | None, bool]:
    """Rate of the later half minus rate of the earlier half, per hour between their centres.

    Significant when the difference exceeds twice its standard error, so noise on a
    steady rise does not read as "accelerating".
    """
    half = t.size // 2
    if half < 3:
        return None, False
    early_t, late_t = t[:half], t[half:]
    early_slope, early_level = theil_sen(early_t, y[:half])
    late_slope, late_level = theil_sen(late_t, y[half:])
    gap_h = float(late_t.mean() - early_t.mean())
    if gap_h <= 0:
        return None, False
    accel = (late_slope - early_slope) / gap_h
    se = np.hypot(
        _slope_se(early_t, y[:half] - (early_level + early_slope * (early_t - early_t[-1]))),
        _slope_se(late_t, y[half:] - (late_level + late_slope * (late_t - late_t[-1]))),
    )
    return accel, bool(late_slope - early_slope > 2 * se)
