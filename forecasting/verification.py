"""Scoring a hindcast: skill per horizon against two baselines, and every threshold crossing
with the lead time of its first correct forecast (pure; used by bench/forecast_eval.py,
the real-data tests and the backtest)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from floodwatch.catalog import Station, Threshold
from forecasting.evaluation import Hindcast
from forecasting.series import Series
from forecasting.skill import (
    CrossingVerdicts,
    armed_at,
    mae,
    nse,
    rmse,
    score_crossings,
    upward_crossings,
)


@dataclass(frozen=True, slots=True)
class HorizonSkill:
    horizon_h: float
    cases: int
    nse: float
    nse_persistence: float
    nse_linear: float
    mae: float
    mae_persistence: float
    mae_linear: float
    rmse: float
    rmse_persistence: float
    rmse_linear: float
    band_coverage: float  # share of outcomes inside the forecast's 90 % band


@dataclass(frozen=True, slots=True)
class ThresholdVerdict:
    threshold: Threshold
    verdicts: CrossingVerdicts


def horizon_skill(hindcast: Hindcast) -> list[HorizonSkill]:
    """Skill on the cases where the forecaster, both baselines and the gauge all had a value,
    so the three are compared on exactly the same cases."""
    out = []
    for j, horizon_s in enumerate(hindcast.horizons_s):
        obs = hindcast.observed[:, j]
        model, pers, lin = hindcast.central[:, j], hindcast.persistence[:, j], hindcast.linear[:, j]
        ok = np.isfinite(obs) & np.isfinite(model) & np.isfinite(pers) & np.isfinite(lin)
        o, m, p, li = obs[ok], model[ok], pers[ok], lin[ok]
        inside = (o >= hindcast.lower[ok, j]) & (o <= hindcast.upper[ok, j])
        out.append(
            HorizonSkill(
                horizon_h=horizon_s / 3600,
                cases=int(ok.sum()),
                nse=nse(m, o),
                nse_persistence=nse(p, o),
                nse_linear=nse(li, o),
                mae=mae(m, o),
                mae_persistence=mae(p, o),
                mae_linear=mae(li, o),
                rmse=rmse(m, o),
                rmse_persistence=rmse(p, o),
                rmse_linear=rmse(li, o),
                band_coverage=float(inside.mean()) if inside.size else float("nan"),
            )
        )
    return out


def threshold_verdicts(
    station: Station,
    hindcast: Hindcast,
    observed: Series,
    ladder: Sequence[Threshold] | None = None,
) -> list[ThresholdVerdict]:
    """For each rung: actual upward crossings inside the hindcast period, and how the
    "expected within the horizon" calls scored against them."""
    if hindcast.issued.size == 0:
        return []
    start, end = float(hindcast.issued[0]), float(hindcast.issued[-1])
    max_horizon = hindcast.horizons_s[-1]
    # Crossings up to one horizon past the last issue can still be called by late forecasts,
    # but only crossings inside the issue period are scored (a later one had no chance).
    seen = observed.window(start - max_horizon, end + max_horizon)
    out = []
    for rung in ladder if ladder is not None else station.levels:
        crossings = [
            c
            for c in upward_crossings(seen.t, seen.level, rung.value, station.clear_margin)
            if start < c <= end
        ]
        armed = armed_at(hindcast.issued, seen.t, seen.level, rung.value, station.clear_margin)
        called = [
            bool(is_armed)
            and any(o.key == rung.key and o.status == "expected" for o in forecast.outlooks)
            for forecast, is_armed in zip(hindcast.forecasts, armed, strict=True)
        ]
        out.append(
            ThresholdVerdict(rung, score_crossings(hindcast.issued, called, crossings, max_horizon))
        )
    return out
