"""Level time series as numpy arrays, and their resampling onto a regular grid.

Times are float epoch seconds (UTC) so the maths stays in plain arrays; only QC-clean
readings enter a series, because a flagged reading is exactly what a forecast must not
follow.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt

from floodwatch.models import Reading

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Series:
    """Observed levels of one gauge, oldest first, timestamps strictly increasing."""

    t: FloatArray
    level: FloatArray

    def __post_init__(self) -> None:
        if self.t.shape != self.level.shape or self.t.ndim != 1:
            raise ValueError("Series needs two 1-D arrays of equal length")

    def __len__(self) -> int:
        return int(self.t.size)

    @classmethod
    def of(cls, t: npt.ArrayLike, level: npt.ArrayLike) -> Series:
        """From arrays already in time order (no sorting or de-duplication)."""
        return cls(np.asarray(t, dtype=np.float64), np.asarray(level, dtype=np.float64))

    @classmethod
    def empty(cls) -> Series:
        return cls(np.empty(0), np.empty(0))

    @classmethod
    def from_pairs(cls, pairs: Iterable[tuple[float, float]]) -> Series:
        """From (epoch seconds, level) pairs in any order; a repeated time keeps the last."""
        data = np.asarray(list(pairs), dtype=np.float64).reshape(-1, 2)
        return cls._sorted_unique(data[:, 0], data[:, 1])

    @classmethod
    def from_readings(cls, readings: Iterable[Reading]) -> Series:
        """The QC-clean readings only, with non-finite levels dropped."""
        return cls.from_pairs((r.ts.timestamp(), r.level) for r in readings if r.is_clean)

    @classmethod
    def _sorted_unique(cls, t: FloatArray, level: FloatArray) -> Series:
        keep = np.isfinite(t) & np.isfinite(level)
        t, level = t[keep], level[keep]
        order = np.argsort(t, kind="stable")
        t, level = t[order], level[order]
        if t.size > 1:
            last_of_run = np.append(t[1:] != t[:-1], True)
            t, level = t[last_of_run], level[last_of_run]
        return cls(np.ascontiguousarray(t), np.ascontiguousarray(level))

    def until(self, moment: float) -> Series:
        """Readings at or before `moment`: what a live forecaster would have known."""
        end = int(np.searchsorted(self.t, moment, side="right"))
        return Series(self.t[:end], self.level[:end])

    def since(self, moment: float) -> Series:
        start = int(np.searchsorted(self.t, moment, side="left"))
        return Series(self.t[start:], self.level[start:])

    def window(self, start: float, end: float) -> Series:
        """start <= t <= end."""
        lo = int(np.searchsorted(self.t, start, side="left"))
        hi = int(np.searchsorted(self.t, end, side="right"))
        return Series(self.t[lo:hi], self.level[lo:hi])

    def append(self, other: Series) -> Series:
        if len(other) == 0:
            return self
        return Series._sorted_unique(
            np.concatenate([self.t, other.t]), np.concatenate([self.level, other.level])
        )

    @property
    def last_time(self) -> datetime | None:
        return datetime.fromtimestamp(float(self.t[-1]), UTC) if self.t.size else None

    def typical_step(self) -> float | None:
        """Median spacing in seconds: the gauge's reporting interval."""
        if self.t.size < 2:
            return None
        return float(np.median(np.diff(self.t)))


def on_grid(series: Series, grid: FloatArray, max_gap: float) -> FloatArray:
    """Levels at the grid times by linear interpolation; NaN where the gap is too wide.

    A grid time counts as covered when the readings on both sides of it are at most
    `max_gap` seconds apart (or one lies exactly on it), so a gauge that went silent for a
    day is not painted over with a straight line.
    """
    out = np.full(grid.shape, np.nan)
    if len(series) == 0:
        return out
    t, level = series.t, series.level
    right = np.searchsorted(t, grid, side="left")
    inside = (right > 0) & (right < t.size)
    exact = (right < t.size) & (t[np.minimum(right, t.size - 1)] == grid)
    left_t = t[np.clip(right - 1, 0, t.size - 1)]
    right_t = t[np.clip(right, 0, t.size - 1)]
    covered = exact | (inside & (right_t - left_t <= max_gap))
    out[covered] = np.interp(grid[covered], t, level)
    return out


def regular_grid(start: float, end: float, step: float) -> FloatArray:
    """Multiples of `step` from the first at or after `start` to the last at or before `end`."""
    first = np.ceil(start / step) * step
    last = np.floor(end / step) * step
    if last < first:
        return np.empty(0)
    count = round(float((last - first) / step)) + 1
    grid: FloatArray = first + step * np.arange(count, dtype=np.float64)
    return grid
