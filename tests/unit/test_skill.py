"""Skill metrics and crossing scores against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from forecasting.skill import mae, nse, rmse, score_crossings, upward_crossings

NAN = float("nan")


@pytest.mark.parametrize(
    ("forecast", "observed", "mae_", "rmse_", "nse_"),
    [
        ([1, 2, 3], [1, 2, 3], 0.0, 0.0, 1.0),
        ([2, 2, 2], [1, 2, 3], 2 / 3, np.sqrt(2 / 3), 0.0),  # the mean: NSE 0
        ([1, 2, 5], [1, 2, 3], 2 / 3, np.sqrt(4 / 3), -1.0),
        ([1, NAN, 3, 9], [1, 2, 3, NAN], 0.0, 0.0, 1.0),  # NaN pairs ignored
    ],
)
def test_metrics(
    forecast: list[float], observed: list[float], mae_: float, rmse_: float, nse_: float
) -> None:
    f, o = np.array(forecast, dtype=float), np.array(observed, dtype=float)
    assert mae(f, o) == pytest.approx(mae_)
    assert rmse(f, o) == pytest.approx(rmse_)
    assert nse(f, o) == pytest.approx(nse_)


def test_nse_undefined_for_constant_observations() -> None:
    assert np.isnan(nse(np.array([1.0, 2.0]), np.array([3.0, 3.0])))


@pytest.mark.parametrize(
    ("name", "levels", "crossings"),
    [
        ("one clean crossing", [0, 5, 12.5, 15, 10], [2 + 4 / 3]),  # 2/3 of the way from t=2
        ("hover at the mark counts once", [0, 10, 9, 10, 9.5, 10, 0], [2.0]),
        ("re-armed below the margin", [0, 10, 7, 10], [2.0, 6.0]),
        ("never reached", [0, 9, 9.99], []),
        ("already above at the start", [12, 11, 13], [0.0]),
    ],
)
def test_upward_crossings(name: str, levels: list[float], crossings: list[float]) -> None:
    t = np.arange(len(levels), dtype=float) * 2.0
    found = upward_crossings(t, np.array(levels, dtype=float), 10.0, margin=2.0)
    assert found == pytest.approx(crossings), name


def test_score_crossings_hit_lead_steady_and_false_alarms() -> None:
    issued = np.arange(0.0, 20.0)
    called = [False] * 20
    for i in (2, 3):  # an early call that lapses: too early (crossing at 15, horizon 8)
        called[i] = True
    for i in (9, 11, 12, 13, 14):  # first correct at 9, unbroken from 11
        called[i] = True
    called[18] = True  # after the crossing, nothing follows: a false alarm
    verdicts = score_crossings(issued, called, [15.0], horizon_s=8.0)
    (score,) = verdicts.scores
    assert score.first_correct_at == 9.0
    assert score.lead_s == 6.0
    assert score.steady_lead_s == 4.0
    assert verdicts.hits == 1
    assert verdicts.misses == 0
    assert verdicts.false_alarms == ((2.0, 3.0), (18.0, 18.0))


def test_score_crossings_miss() -> None:
    verdicts = score_crossings(np.arange(10.0), [False] * 10, [5.0], horizon_s=3.0)
    assert verdicts.misses == 1
    assert verdicts.scores[0].lead_s is None
    assert verdicts.false_alarms == ()
