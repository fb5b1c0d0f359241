"""Series building and resampling onto a regular grid."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from floodwatch.models import QCFlag, Reading
from forecasting.series import Series, on_grid, regular_grid


def test_from_pairs_sorts_drops_non_finite_and_keeps_last_duplicate() -> None:
    series = Series.from_pairs([(30.0, 3.0), (10.0, 1.0), (20.0, float("nan")), (30.0, 4.0)])
    assert series.t.tolist() == [10.0, 30.0]
    assert series.level.tolist() == [1.0, 4.0]


def test_from_readings_keeps_only_clean_readings() -> None:
    start = datetime(2018, 1, 1, tzinfo=UTC)
    readings = [
        Reading("g", start, 100.0),
        Reading("g", start + timedelta(minutes=15), 900.0, qc=QCFlag.SPIKE),
        Reading("g", start + timedelta(minutes=30), 101.0),
        Reading("g", start + timedelta(minutes=45), 101.0, qc=QCFlag.MAINTENANCE),
    ]
    series = Series.from_readings(readings)
    assert series.level.tolist() == [100.0, 101.0]


def test_until_since_window_boundaries() -> None:
    series = Series.of(np.array([0.0, 10.0, 20.0, 30.0]), np.array([1.0, 2.0, 3.0, 4.0]))
    assert series.until(20.0).t.tolist() == [0.0, 10.0, 20.0]
    assert series.since(10.0).t.tolist() == [10.0, 20.0, 30.0]
    assert series.window(5.0, 20.0).t.tolist() == [10.0, 20.0]


@pytest.mark.parametrize(
    ("name", "grid", "max_gap", "expected"),
    [
        ("exact and between", [0.0, 5.0, 10.0], 10.0, [0.0, 5.0, 10.0]),
        ("before the first reading", [-5.0], 10.0, [np.nan]),
        ("after the last reading", [45.0], 10.0, [np.nan]),
        ("inside a gap wider than allowed", [25.0], 10.0, [np.nan]),
        ("inside a gap that is allowed", [25.0], 20.0, [25.0]),
        ("exactly on a reading beside a gap", [20.0], 10.0, [20.0]),
    ],
)
def test_on_grid(name: str, grid: list[float], max_gap: float, expected: list[float]) -> None:
    series = Series.of(np.array([0.0, 10.0, 20.0, 40.0]), np.array([0.0, 10.0, 20.0, 40.0]))
    np.testing.assert_allclose(on_grid(series, np.array(grid), max_gap), expected, err_msg=name)


def test_regular_grid_aligns_to_multiples_of_the_step() -> None:
    assert regular_grid(905.0, 3700.0, 900.0).tolist() == [1800.0, 2700.0, 3600.0]
    assert regular_grid(10.0, 20.0, 900.0).size == 0
