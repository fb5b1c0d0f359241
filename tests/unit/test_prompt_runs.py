"""When a reading gets its station forecast at once instead of at the next scheduled pass."""

from __future__ import annotations

import numpy as np
import pytest

from floodwatch.catalog import Station, Threshold
from forecasting.forecast import Z90, StationForecast, outlooks, trend_path
from forecasting.prompt import band_at, needs_prompt_run
from forecasting.trend import Trend

T0 = 1_800_000_000.0
HOUR = 3600.0
MINUTE = 60.0
HORIZONS = [1 * HOUR, 2 * HOUR, 3 * HOUR, 6 * HOUR]


def station(max_rise: float | None = None) -> Station:
    return Station(
        id="gauge-a",
        names={"en": "A"},
        river={"en": "River"},
        lat=50.0,
        lon=8.0,
        unit="cm",
        levels=(
            Threshold(key="watch", value=400, severity="watch", short="W", names={"en": "W"}),
            Threshold(key="danger", value=600, severity="danger", short="D", names={"en": "D"}),
        ),
        max_rise_per_hour=max_rise,
    )


def forecast(level: float, rate: float, noise: float = 1.0, se: float = 0.5) -> StationForecast:
    """The trend forecast a pass would make from a trend at T0."""
    trend = Trend(level, T0, rate, se, None, False, noise, 12)
    path = trend_path(trend, HORIZONS)
    ladder = station().levels
    return StationForecast(
        "gauge-a", T0, trend, "trend", tuple(path), outlooks(trend, path, ladder)
    )


INSUFFICIENT = StationForecast("gauge-a", T0, None, "none", insufficient="no readings yet")


@pytest.mark.parametrize(
    ("last", "level", "ts", "max_rise", "expected"),
    [
        pytest.param(None, 300.0, T0, None, True, id="no forecast yet"),
        pytest.param(INSUFFICIENT, 300.0, T0, None, True, id="last forecast had too little data"),
        pytest.param(forecast(300, 10), 305.0, T0 + 30 * MINUTE, None, False, id="on the path"),
        pytest.param(forecast(300, 10), 306.5, T0 + 30 * MINUTE, None, False, id="inside band"),
        pytest.param(forecast(300, 10), 312.0, T0 + 30 * MINUTE, None, True, id="above band"),
        pytest.param(forecast(300, 10), 296.0, T0 + 30 * MINUTE, None, True, id="below band"),
        pytest.param(forecast(300, 0), 300.5, T0 + 5 * MINUTE, None, False, id="steady, noise"),
        pytest.param(forecast(300, 0), 304.0, T0 + 5 * MINUTE, None, True, id="steady, jumps"),
        pytest.param(forecast(300, 0), 300.0, T0 + 7 * HOUR, None, True, id="past last horizon"),
        pytest.param(forecast(300, 10), 500.0, T0, None, False, id="not newer than last"),
        pytest.param(forecast(300, 10), 900.0, T0 - HOUR, None, False, id="late upload"),
        pytest.param(
            forecast(385, 10), 392.0, T0 + 40 * MINUTE, None, True, id="within 1 h of rung"
        ),
        pytest.param(
            forecast(385, 10), 388.5, T0 + 20 * MINUTE, None, False, id="over 1 h from rung"
        ),
        pytest.param(forecast(399, 0.5, noise=2), 400.5, T0 + 5 * MINUTE, None, True, id="crossed"),
        pytest.param(
            forecast(401, -0.5, noise=2), 399.5, T0 + 5 * MINUTE, None, True, id="fell below"
        ),
        pytest.param(forecast(300, 10), 306.0, T0 + 30 * MINUTE, 5.0, True, id="rose > limit"),
        pytest.param(forecast(300, 10), 304.0, T0 + 30 * MINUTE, 5.0, False, id="rose < limit"),
        pytest.param(
            forecast(300, 10), 306.0, T0 + 30 * MINUTE, 10.0, False, id="under a high limit"
        ),
    ],
)
def test_needs_prompt_run(
    last: StationForecast | None, level: float, ts: float, max_rise: float | None, expected: bool
) -> None:
    assert needs_prompt_run(last, level, ts, station(max_rise)) is expected


def test_band_widens_from_the_noise_at_the_newest_reading_to_the_first_horizon() -> None:
    last = forecast(300, 10)
    assert band_at(last, T0) == pytest.approx((300.0 - Z90, 300.0 + Z90))
    first = last.horizons[0]
    assert band_at(last, first.valid_at) == pytest.approx((first.lower, first.upper))
    low, high = band_at(last, T0 + 30 * MINUTE) or (0.0, 0.0)
    assert low < 305.0 < high
    assert band_at(last, last.horizons[-1].valid_at + 1) is None
    assert band_at(INSUFFICIENT, T0) is None


def test_a_fast_rise_never_waits_for_the_tick() -> None:
    """A river rising 60 cm/h where the last forecast said 10 cm/h: prompt within minutes."""
    last = forecast(300, 10)
    first_outside = next(
        minute
        for minute in range(1, 61)
        if needs_prompt_run(last, 300 + minute, T0 + minute * MINUTE, station())
    )
    assert first_outside <= 5


@pytest.mark.parametrize("minutes", [0, 1, 30, 60, 61, 90, 120, 150, 180, 270, 359, 360])
def test_band_is_linear_between_the_horizons(minutes: int) -> None:
    last = forecast(300, 10)
    assert last.trend is not None
    times = [T0, *(h.valid_at for h in last.horizons)]
    lower = [300 - Z90 * last.trend.noise, *(h.lower for h in last.horizons)]
    upper = [300 + Z90 * last.trend.noise, *(h.upper for h in last.horizons)]
    t = T0 + minutes * MINUTE
    expected = (float(np.interp(t, times, lower)), float(np.interp(t, times, upper)))
    assert band_at(last, t) == pytest.approx(expected)
