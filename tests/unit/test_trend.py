"""The robust trend: a table of river behaviours, and the cases where it must refuse."""

from __future__ import annotations

import numpy as np
import pytest

from forecasting.series import Series
from forecasting.trend import InsufficientData, Trend, robust_trend, theil_sen

T0 = 1_500_000_000.0
STEP = 900.0  # 15 minutes
WINDOW = 3 * 3600.0


def gauge(levels: list[float] | np.ndarray, step: float = STEP) -> Series:
    levels = np.asarray(levels, dtype=float)
    return Series.of(T0 + step * np.arange(levels.size), levels)


def line(rate_per_h: float, n: int = 13, start: float = 100.0) -> np.ndarray:
    return start + rate_per_h * np.arange(n) * STEP / 3600


def noisy(values: np.ndarray, sigma: float, seed: int = 7) -> np.ndarray:
    return values + np.random.default_rng(seed).normal(0, sigma, values.size)


def with_spike(values: np.ndarray, index: int, size: float) -> np.ndarray:
    out = values.copy()
    out[index] += size
    return out


def last_time(series: Series) -> float:
    return float(series.t[-1])


@pytest.mark.parametrize(
    ("name", "levels", "rate", "tolerance", "direction"),
    [
        ("steady", line(0.0), 0.0, 1e-9, "steady"),
        ("rising 4 cm/h", line(4.0), 4.0, 1e-9, "rising"),
        ("falling 2.5 cm/h", line(-2.5), -2.5, 1e-9, "falling"),
        ("noisy rise", noisy(line(6.0, n=25), 1.0), 6.0, 0.8, "rising"),
        ("single spike on a rise", with_spike(line(3.0), 6, 150.0), 3.0, 1e-9, "rising"),
        ("spike as newest reading", with_spike(line(3.0), 12, -80.0), 3.0, 0.5, "rising"),
        ("flat-lining gauge", np.full(13, 412.0), 0.0, 1e-9, "steady"),
        ("noise without a trend", noisy(np.full(25, 50.0), 0.5), 0.0, 0.4, "steady"),
    ],
)
def test_rate_and_direction(
    name: str, levels: np.ndarray, rate: float, tolerance: float, direction: str
) -> None:
    series = gauge(levels)
    trend = robust_trend(series, last_time(series), WINDOW)
    assert isinstance(trend, Trend), name
    assert trend.rate_per_h == pytest.approx(rate, abs=tolerance), name
    assert trend.direction == direction, name


def test_spike_does_not_move_the_level_now() -> None:
    series = gauge(with_spike(line(2.0), 12, 200.0))
    trend = robust_trend(series, last_time(series), WINDOW)
    assert isinstance(trend, Trend)
    expected_now = 100.0 + 2.0 * 12 * STEP / 3600
    assert trend.level == pytest.approx(expected_now, abs=1.0)


def test_gap_inside_the_window_is_bridged() -> None:
    levels = line(5.0)
    series = gauge(levels)
    keep = np.r_[0:4, 9:13]  # 1 h 15 min missing in the middle
    gappy = Series.of(series.t[keep], series.level[keep])
    trend = robust_trend(gappy, last_time(gappy), WINDOW)
    assert isinstance(trend, Trend)
    assert trend.rate_per_h == pytest.approx(5.0)
    assert trend.points == 8


@pytest.mark.parametrize(
    ("name", "series", "now_offset", "reason"),
    [
        ("no readings", Series.empty(), 0.0, "no readings"),
        ("one reading", gauge([100.0]), 0.0, "only 1 readings"),
        ("three readings", gauge([1.0, 2.0, 3.0]), 0.0, "only 3 readings"),
        ("gauge silent for 5 h", gauge(line(1.0)), 5 * 3600.0, "newest reading is 5.0 h old"),
        ("readings bunched in 1 h", gauge(line(1.0, n=5)), 0.0, "cover only 1.0 h"),
    ],
)
def test_refuses_to_guess(name: str, series: Series, now_offset: float, reason: str) -> None:
    now = (last_time(series) if len(series) else T0) + now_offset
    trend = robust_trend(series, now, WINDOW)
    assert isinstance(trend, InsufficientData), name
    assert reason in trend.reason, name


def test_readings_after_now_are_not_seen() -> None:
    rising_then_flat = np.r_[line(4.0), np.full(12, 200.0)]
    series = gauge(rising_then_flat)
    now = T0 + 12 * STEP
    trend = robust_trend(series, now, WINDOW)
    assert isinstance(trend, Trend)
    assert trend.rate_per_h == pytest.approx(4.0)
    assert trend.at == now


@pytest.mark.parametrize(
    ("name", "levels", "accelerating"),
    [
        ("quickening rise", 100 + 0.5 * np.arange(25) ** 2 / 4, True),
        ("steady rise", noisy(line(4.0, n=25), 0.3), False),
        ("slowing rise", 100 + 10 * np.sqrt(np.arange(25)), False),
        ("quickening fall", 100 - 0.5 * np.arange(25) ** 2 / 4, False),
    ],
)
def test_acceleration(name: str, levels: np.ndarray, accelerating: bool) -> None:
    series = gauge(levels)
    trend = robust_trend(series, last_time(series), 6 * 3600.0)
    assert isinstance(trend, Trend)
    assert trend.accelerating is accelerating, name


def test_theil_sen_ignores_a_minority_of_outliers() -> None:
    t = np.arange(10.0)
    y = 2.0 * t + 1.0
    y[[2, 7]] = [500.0, -500.0]
    slope, level_at_last = theil_sen(t, y)
    assert slope == pytest.approx(2.0)
    assert level_at_last == pytest.approx(19.0)
