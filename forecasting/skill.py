"""Forecast skill metrics as pure functions over arrays (NaN pairs are ignored).

Formulas:
- MAE = mean |f − o|; RMSE = sqrt(mean (f − o)²) (e.g. Wilks, Statistical Methods in the
  Atmospheric Sciences, 3rd ed., §8.3).
- Nash–Sutcliffe efficiency NSE = 1 − Σ(o − f)² / Σ(o − ō)² (Nash & Sutcliffe 1970,
  J. Hydrol. 10:282); 1 is perfect, 0 is no better than the mean of the observations.
- Crossing forecasts are scored as a 2×2 contingency table (hit, miss, false alarm;
  Wilks §8.2); lead time is the crossing time minus the issue time of the first forecast
  that correctly called it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from forecasting.series import FloatArray


def _pairs(forecast: FloatArray, observed: FloatArray) -> tuple[FloatArray, FloatArray]:
    ok = np.isfinite(forecast) & np.isfinite(observed)
    return forecast[ok], observed[ok]


def mae(forecast: FloatArray, observed: FloatArray) -> float:
    f, o = _pairs(forecast, observed)
    return float(np.mean(np.abs(f - o))) if f.size else float("nan")


def rmse(forecast: FloatArray, observed: FloatArray) -> float:
    f, o = _pairs(forecast, observed)
    return float(np.sqrt(np.mean((f - o) ** 2))) if f.size else float("nan")


def nse(forecast: FloatArray, observed: FloatArray) -> float:
    f, o = _pairs(forecast, observed)
    if f.size < 2:
        return float("nan")
    variance = float(np.sum((o - o.mean()) ** 2))
    if variance == 0:
        return float("nan")
    return 1.0 - float(np.sum((o - f) ** 2)) / variance


def upward_crossings(t: FloatArray, level: FloatArray, value: float, margin: float) -> list[float]:
    """Times the level reached `value` from below, re-armed only after falling below
    `value − margin` (the catalog's clear margin), so hovering counts once."""
    crossings = []
    armed = True
    for i in range(level.size):
        if armed and level[i] >= value:
            if i > 0 and level[i - 1] < value and level[i] != level[i - 1]:
                frac = (value - level[i - 1]) / (level[i] - level[i - 1])
                crossings.append(float(t[i - 1] + frac * (t[i] - t[i - 1])))
            else:
                crossings.append(float(t[i]))
            armed = False
        elif not armed and level[i] < value - margin:
            armed = True
    return crossings


def armed_at(
    moments: FloatArray, t: FloatArray, level: FloatArray, value: float, margin: float
) -> FloatArray:
    """Whether a new crossing of `value` could still happen at each moment: true until the
    level reaches it, false again until it falls below `value − margin`. A call made while
    the gauge is still at the mark (hovering after a crossing) forecasts nothing new."""
    state = np.ones(level.size, dtype=bool)
    armed = True
    for i in range(level.size):
        if armed and level[i] >= value:
            armed = False
        elif not armed and level[i] < value - margin:
            armed = True
        state[i] = armed
    index = np.searchsorted(t, moments, side="right") - 1
    result: FloatArray = np.where(index >= 0, state[np.clip(index, 0, None)], True)
    return result


@dataclass(frozen=True, slots=True)
class CrossingScore:
    crossing_at: float
    first_correct_at: float | None  # issue time of the first forecast calling it
    steady_from: float | None  # from here on, every forecast until the crossing called it

    @property
    def lead_s(self) -> float | None:
        return None if self.first_correct_at is None else self.crossing_at - self.first_correct_at

    @property
    def steady_lead_s(self) -> float | None:
        return None if self.steady_from is None else self.crossing_at - self.steady_from


@dataclass(frozen=True, slots=True)
class CrossingVerdicts:
    scores: tuple[CrossingScore, ...]
    false_alarms: tuple[tuple[float, float], ...]  # (first, last) issue time of each episode

    @property
    def hits(self) -> int:
        return sum(1 for s in self.scores if s.first_correct_at is not None)

    @property
    def misses(self) -> int:
        return len(self.scores) - self.hits


def score_crossings(
    issued: FloatArray,
    called: Sequence[bool],
    crossings: Sequence[float],
    horizon_s: float,
) -> CrossingVerdicts:
    """Score "will cross within the horizon" calls against the actual crossings.

    A call issued at t is correct when a crossing happens in (t, t + horizon]. Calls that
    are not correct form false-alarm episodes (consecutive wrong calls count once). A call
    issued after the level already crossed is not a forecast and is not passed in here.
    """
    called_arr = np.asarray(called, dtype=bool)
    cross = np.asarray(sorted(crossings))
    correct = np.zeros(issued.size, dtype=bool)
    scores = []
    for c in cross:
        window = (issued < c) & (issued >= c - horizon_s)
        hit = window & called_arr
        correct |= hit
        first = float(issued[hit][0]) if hit.any() else None
        steady = None
        idx = np.nonzero(window)[0]
        if idx.size and called_arr[idx[-1]]:
            run_start = idx[-1]
            while run_start > idx[0] and called_arr[run_start - 1]:
                run_start -= 1
            steady = float(issued[run_start])
        scores.append(CrossingScore(float(c), first, steady))
    wrong = called_arr & ~correct
    episodes: list[tuple[float, float]] = []
    i = 0
    while i < wrong.size:
        if wrong[i]:
            j = i
            while j + 1 < wrong.size and wrong[j + 1]:
                j += 1
            episodes.append((float(issued[i]), float(issued[j])))
            i = j + 1
        else:
            i += 1
    return CrossingVerdicts(tuple(scores), tuple(episodes))
