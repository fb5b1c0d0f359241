"""Forecast paths, threshold outlooks and the choice between model, trend and refusal."""

from __future__ import annotations

import numpy as np
import pytest

from floodwatch.catalog import Threshold
from forecasting.forecast import (
    HorizonForecast,
    first_crossing,
    forecast_station,
    outlooks,
    trend_path,
)
from forecasting.publish import summary, to_points
from forecasting.series import Series
from forecasting.trend import Trend

T0 = 1_500_000_000.0
HOUR = 3600.0
HORIZONS = [1 * HOUR, 3 * HOUR, 6 * HOUR, 12 * HOUR]


def rung(key: str, value: float, severity: str = "warning") -> Threshold:
    return Threshold(key=key, value=value, severity=severity, short=key, names={"en": key})


LADDER = (rung("watch", 120.0, "watch"), rung("warn", 150.0), rung("danger", 400.0, "danger"))


def trend(level: float, rate: float, noise: float = 0.0, se: float = 0.0) -> Trend:
    return Trend(level, T0, rate, se, None, False, noise, 13)


def test_trend_path_is_the_straight_line_with_a_widening_band() -> None:
    path = trend_path(trend(100.0, 5.0, noise=1.0, se=0.1), HORIZONS)
    assert [p.level for p in path] == pytest.approx([105.0, 115.0, 130.0, 160.0])
    widths = [p.upper - p.lower for p in path]
    assert widths == sorted(widths)
    assert all(p.lower < p.level < p.upper for p in path)
    assert path[2].valid_at == T0 + 6 * HOUR


@pytest.mark.parametrize(
    ("levels", "value", "expected"),
    [
        ([100, 110, 130], 120, 1.5),
        ([100, 110, 130], 100, 0.0),
        ([100, 110, 130], 131, None),
        ([100, 90, 80], 101, None),
    ],
)
def test_first_crossing(levels: list[float], value: float, expected: float | None) -> None:
    times = np.array([0.0, 1.0, 2.0])
    assert first_crossing(times, np.array(levels, dtype=float), value) == expected


def path_of(levels: list[tuple[float, float, float]]) -> list[HorizonForecast]:
    return [
        HorizonForecast(h, T0 + h, level, lower, upper)
        for h, (level, lower, upper) in zip(HORIZONS, levels, strict=True)
    ]


def test_outlook_statuses() -> None:
    now = trend(125.0, 5.0)
    path = path_of([(130, 128, 132), (140, 135, 146), (155, 145, 165), (170, 150, 190)])
    watch, warn, danger = outlooks(now, path, LADDER)
    assert watch.status == "reached"
    assert warn.status == "expected"
    # central path reaches 150 between 3 h (140) and 6 h (155): at 5 h
    assert warn.expected_at == pytest.approx(T0 + 5 * HOUR)
    assert warn.earliest is not None
    assert warn.expected_at is not None
    assert warn.earliest < warn.expected_at
    assert warn.latest == pytest.approx(T0 + 12 * HOUR)
    assert danger.status == "not_expected"
    assert danger.expected_at is None


def test_outlook_possible_when_only_the_band_reaches_it() -> None:
    path = path_of([(101, 99, 103), (103, 98, 110), (106, 96, 130), (110, 94, 160)])
    outlook = outlooks(trend(100.0, 1.0), path, LADDER)[1]
    assert outlook.status == "possible"
    assert outlook.expected_at is None
    assert outlook.earliest is not None


def rising(n: int = 40, rate_per_h: float = 4.0) -> Series:
    t = T0 + 900.0 * np.arange(n)
    return Series.of(t, 100.0 + rate_per_h * (t - T0) / HOUR)


def test_forecast_station_extrapolates_the_trend_without_a_model() -> None:
    observed = rising()
    now = float(observed.t[-1])
    fc = forecast_station(
        "g", LADDER, observed, {}, None, now, horizons_s=HORIZONS, trend_window_s=3 * HOUR
    )
    assert fc.method == "trend"
    assert fc.insufficient is None
    assert fc.trend is not None
    assert fc.trend.rate_per_h == pytest.approx(4.0)
    level_now = 100.0 + 4.0 * 39 / 4
    assert fc.horizons[-1].level == pytest.approx(level_now + 48.0)
    warn = fc.outlooks[1]
    assert warn.status == "expected"
    assert warn.expected_at == pytest.approx(now + (150.0 - level_now) / 4.0 * HOUR)


def test_forecast_station_refuses_with_too_little_data() -> None:
    observed = rising(n=2)
    fc = forecast_station(
        "g",
        LADDER,
        observed,
        {},
        None,
        float(observed.t[-1]),
        horizons_s=HORIZONS,
        trend_window_s=3 * HOUR,
    )
    assert fc.method == "none"
    assert fc.horizons == ()
    assert fc.outlooks == ()
    assert fc.insufficient is not None
    assert "readings" in fc.insufficient
    document = summary(fc)
    assert document["trend"] is None
    assert document["horizons"] == []
    assert document["insufficient"] == fc.insufficient
    assert to_points(fc) == []


def test_summary_and_points_describe_the_same_forecast() -> None:
    observed = rising()
    fc = forecast_station(
        "g",
        LADDER,
        observed,
        {},
        None,
        float(observed.t[-1]),
        horizons_s=HORIZONS,
        trend_window_s=3 * HOUR,
    )
    document = summary(fc)
    points = to_points(fc)
    assert [p["horizon_h"] for p in document["horizons"]] == [1, 3, 6, 12]
    assert [p.horizon_s for p in points] == [3600, 10800, 21600, 43200]
    assert document["next"]["key"] == "warn"
    assert document["next"]["status"] == "expected"
    assert document["trend"]["direction"] == "rising"
    assert points[0].level == pytest.approx(document["horizons"][0]["level"], abs=1e-3)
    assert points[0].valid_at.tzinfo is not None
