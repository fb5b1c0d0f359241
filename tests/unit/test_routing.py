"""Learning travel times and per-horizon models on a synthetic river with a known answer."""

from __future__ import annotations

import json

import numpy as np
import pytest

from floodwatch.catalog import Station
from forecasting.evaluation import hindcast
from forecasting.forecast import forecast_station
from forecasting.learn import learn_model
from forecasting.routing import (
    LearnedModel,
    UpstreamLink,
    feature_row,
    features,
    shifted,
)
from forecasting.series import Series
from forecasting.skill import rmse
from forecasting.trend import InsufficientData

STEP = 900.0
HOUR = 3600.0
T0 = 1_500_000_000.0
LAG_H = 6.0
HORIZONS = [1 * HOUR, 3 * HOUR, 6 * HOUR, 12 * HOUR]


def waves(days: float, seed: int) -> Series:
    """Flood waves of random size and width on a base level, 15-minute readings."""
    rng = np.random.default_rng(seed)
    t = T0 + STEP * np.arange(int(days * 86400 / STEP))
    level = np.full(t.size, 200.0)
    for centre in rng.uniform(t[0], t[-1], size=int(days / 3)):
        width = rng.uniform(6, 30) * HOUR
        level += rng.uniform(20, 150) * np.exp(-(((t - centre) / width) ** 2))
    return Series.of(t, level + rng.normal(0, 0.5, t.size))


def downstream_of(up: Series, lag_h: float, gain: float, seed: int) -> Series:
    rng = np.random.default_rng(seed)
    routed = np.interp(up.t - lag_h * HOUR, up.t, up.level, left=up.level[0])
    return Series.of(up.t, 50 + gain * routed + rng.normal(0, 0.5, up.t.size))


@pytest.fixture(scope="module")
def river() -> tuple[Series, Series]:
    up = waves(90, seed=1)
    return up, downstream_of(up, LAG_H, 0.8, seed=2)


def learn(down: Series, ups: dict[str, Series], **overrides: float) -> LearnedModel:
    model = learn_model(
        "down",
        down,
        ups,
        step_s=STEP,
        horizons_s=HORIZONS,
        max_lag_s=24 * HOUR,
        overrides_s=overrides,
    )
    assert isinstance(model, LearnedModel)
    return model


def test_learns_the_travel_time(river: tuple[Series, Series]) -> None:
    up, down = river
    train_end = T0 + 60 * 86400
    model = learn(down.until(train_end), {"up": up.until(train_end)})
    (link,) = model.upstream
    assert link.station_id == "up"
    assert link.lag_steps * STEP / HOUR == pytest.approx(LAG_H, abs=0.5)
    assert link.correlation is not None
    assert link.correlation > 0.8
    assert link.source == "learned"
    assert model.method == "routing"
    # Within the travel time the model knows what is coming: far better than persistence.
    for horizon in model.horizons:
        assert horizon.rmse < 0.5 * horizon.persistence_rmse


def test_routing_beats_persistence_and_trend_on_unseen_waves(
    river: tuple[Series, Series],
) -> None:
    up, down = river
    train_end = T0 + 60 * 86400
    model = learn(down.until(train_end), {"up": up.until(train_end)})
    station = Station(
        id="down",
        names={"en": "Down"},
        river={"en": "Test"},
        lat=0,
        lon=0,
        unit="cm",
        upstream=("up",),
        forecast={"horizons_h": [1, 3, 6, 12]},
    )
    issues = np.arange(train_end, float(down.t[-1]) - 12 * HOUR, 2 * HOUR)
    routed = hindcast(station, down, {"up": up}, model, issues)
    alone = hindcast(station, down, {}, None, issues)
    six = 2  # index of the 6 h horizon
    obs = routed.observed[:, six]
    assert rmse(routed.central[:, six], obs) < 0.3 * rmse(routed.persistence[:, six], obs)
    assert rmse(routed.central[:, six], obs) < 0.3 * rmse(alone.central[:, six], obs)
    # The 90 % band holds most of what happened (it was sized on the training data).
    inside = (obs >= routed.lower[:, six]) & (obs <= routed.upper[:, six])
    assert inside[np.isfinite(obs)].mean() > 0.7


def test_an_unrelated_upstream_gauge_is_left_out(river: tuple[Series, Series]) -> None:
    _, down = river
    model = learn(down, {"elsewhere": waves(90, seed=99)})
    assert model.upstream == ()
    assert model.method == "autoregressive"


def test_a_hydrologists_travel_time_overrides_the_learned_one(
    river: tuple[Series, Series],
) -> None:
    up, down = river
    model = learn(down, {"up": up}, up=3 * HOUR)
    (link,) = model.upstream
    assert link == UpstreamLink("up", 12, None, "override")


def test_too_little_history_is_refused() -> None:
    short = waves(1, seed=3)
    outcome = learn_model(
        "down",
        short.until(T0 + 6 * HOUR),
        {},
        step_s=STEP,
        horizons_s=HORIZONS,
        max_lag_s=24 * HOUR,
    )
    assert isinstance(outcome, InsufficientData)
    assert "history" in outcome.reason


def test_missing_upstream_data_falls_back_to_the_trend(river: tuple[Series, Series]) -> None:
    up, down = river
    model = learn(down, {"up": up})
    now = float(down.t[-1])
    fc = forecast_station(
        "down", (), down, {}, model, now, horizons_s=HORIZONS, trend_window_s=3 * HOUR
    )
    assert fc.method == "trend"
    with_upstream = forecast_station(
        "down", (), down, {"up": up}, model, now, horizons_s=HORIZONS, trend_window_s=3 * HOUR
    )
    assert with_upstream.method == "routing"


def test_model_survives_a_json_round_trip(river: tuple[Series, Series]) -> None:
    up, down = river
    model = learn(down, {"up": up})
    again = LearnedModel.from_dict(json.loads(json.dumps(model.to_dict())))
    assert again == model


def test_scalar_and_array_features_agree() -> None:
    rng = np.random.default_rng(5)
    own, up = rng.normal(size=200), rng.normal(size=200)
    links = [UpstreamLink("up", 7, 0.9)]
    for horizon in (1, 4, 7, 12):
        matrix = features(shifted(own), [(links[0], shifted(up))], (1, 4), 4, 0.3, horizon)
        i = 150
        row = feature_row(
            {k: own[i - k] for k in range(20)},
            [(links[0], {k: up[i - k] for k in range(20)})],
            (1, 4),
            4,
            0.3,
            horizon,
        )
        np.testing.assert_allclose(matrix[i], row)
