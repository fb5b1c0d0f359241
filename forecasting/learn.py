"""Learning a station's forecast model from its history (pure: arrays in, model out)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from forecasting.routing import (
    MIN_SAMPLES,
    LearnedModel,
    TrainingSet,
    UpstreamLink,
    features,
    fit_horizon,
    learn_lag,
    own_lags_for,
    shifted,
    training_set,
)
from forecasting.series import Series
from forecasting.trend import InsufficientData


def learn_links(
    data: TrainingSet,
    short_lag: int,
    max_lag: int,
    overrides: Mapping[str, int],
) -> list[UpstreamLink]:
    """Travel time to each upstream gauge: a hydrologist's override, else the learned lag.

    An upstream gauge whose changes do not correlate positively with this one's at any lag
    (a gauge on another branch, a broken record) is left out rather than fitted to noise.
    """
    links = []
    for sid, up in data.upstream.items():
        if sid in overrides:
            links.append(UpstreamLink(sid, overrides[sid], None, "override"))
            continue
        found = learn_lag(data.own, up, short_lag, max_lag)
        if found is not None and found[1] > 0.2:
            links.append(UpstreamLink(sid, found[0], round(found[1], 3)))
    return links


def learn_model(
    station_id: str,
    observed: Series,
    upstream: Mapping[str, Series],
    *,
    step_s: float,
    horizons_s: Sequence[float],
    max_lag_s: float,
    overrides_s: Mapping[str, float] | None = None,
) -> LearnedModel | InsufficientData:
    """Fit the per-horizon models on everything in `observed` (callers pass only the past)."""
    if len(observed) < MIN_SAMPLES:
        return InsufficientData(f"only {len(observed)} readings of history to learn from")
    data = training_set(observed, upstream, step_s, max_gap_s=3 * step_s)
    own_lags = own_lags_for(step_s)
    short_lag = own_lags[min(1, len(own_lags) - 1)]
    overrides = {sid: round(s / step_s) for sid, s in (overrides_s or {}).items()}
    links = learn_links(data, short_lag, max(1, round(max_lag_s / step_s)), overrides)
    mean_level = float(np.nanmean(data.own))
    own = shifted(data.own)
    ups = [(link, shifted(data.upstream[link.station_id])) for link in links]
    models = []
    for horizon_s in horizons_s:
        h = max(1, round(horizon_s / step_s))
        x = features(own, ups, own_lags, short_lag, mean_level, h)
        target = np.full(data.own.shape, np.nan)
        target[:-h] = data.own[h:] - data.own[:-h]
        model = fit_horizon(x, target, h)
        if model is None:
            return InsufficientData(
                f"fewer than {MIN_SAMPLES} complete samples for the {horizon_s / 3600:g} h horizon"
            )
        models.append(model)
    return LearnedModel(
        station_id=station_id,
        step_s=step_s,
        own_lags=own_lags,
        short_lag=short_lag,
        mean_level=mean_level,
        upstream=tuple(links),
        horizons=tuple(models),
        trained_from=float(observed.t[0]),
        trained_to=float(observed.t[-1]),
        samples=int(np.isfinite(data.own).sum()),
    )
