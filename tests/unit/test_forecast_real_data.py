"""The forecaster on real floods (../shared/data), replayed as if live: the issue's goals.

Models learn only from data before each period; each forecast sees only the readings up
to its issue time (forecasting/real_floods.py, shared with bench/forecast_eval.py).
"""

from __future__ import annotations

from datetime import datetime

import pytest

from forecasting.real_floods import PERIODS, Period, PeriodResult, StationResult, evaluate_period
from forecasting.skill import CrossingScore
from tests.harness.shared_data import require_data_dir

HOUR = 3600.0
DAY = 86400.0


def period(name: str) -> Period:
    (found,) = [p for p in PERIODS if p.name.startswith(name)]
    return found


_results: dict[str, PeriodResult] = {}


def result(name: str) -> PeriodResult:
    if name not in _results:
        _results[name] = evaluate_period(period(name), require_data_dir())
    return _results[name]


def station(outcome: PeriodResult, station_id: str) -> StationResult:
    (found,) = [s for s in outcome.stations if s.station.id == station_id]
    return found


def crossing(outcome: PeriodResult, station_id: str, key: str, day: str) -> CrossingScore:
    verdict = next(v for v in station(outcome, station_id).verdicts if v.threshold.key == key)
    start = datetime.fromisoformat(day + "T00:00+00:00").timestamp()
    (score,) = [s for s in verdict.verdicts.scores if start <= s.crossing_at < start + DAY]
    return score


@pytest.mark.parametrize(
    ("station_id", "key", "day"),
    [
        ("rhein-duesseldorf", "mark-i", "2018-01-05"),  # crossed 18:07 UTC
        ("rhein-mainz", "mark-ii", "2018-01-07"),  # crossed 05:45 UTC, peak 639 cm
    ],
)
def test_rhine_2018_marks_forecast_at_least_6_hours_ahead(
    station_id: str, key: str, day: str
) -> None:
    score = crossing(result("Rhine, January 2018"), station_id, key, day)
    assert score.lead_s is not None, "the crossing was never forecast"
    assert score.lead_s >= 6 * HOUR


@pytest.mark.parametrize("name", ["Rhine, January 2018", "Rhine, June 2016"])
def test_nash_sutcliffe_at_6_hours_beats_persistence_on_the_rhine(name: str) -> None:
    for outcome in result(name).stations:
        six = next(s for s in outcome.skill if s.horizon_h == 6)
        assert six.cases > 500, outcome.station.id
        assert six.nse > six.nse_persistence, outcome.station.id
        assert six.mae < six.mae_persistence, outcome.station.id


@pytest.mark.parametrize(
    ("station_id", "key", "day"),
    [
        ("amur-khabarovsk", "nya", "2013-08-02"),
        ("amur-khabarovsk", "oya", "2013-08-15"),
        ("amur-komsomolsk-na-amure", "oya", "2013-08-24"),
    ],
)
def test_amur_2013_crossings_are_forecast(station_id: str, key: str, day: str) -> None:
    score = crossing(result("Amur, 2013"), station_id, key, day)
    assert score.lead_s is not None, "the crossing was never forecast"
    assert score.lead_s >= 0.5 * DAY


@pytest.mark.parametrize("name", ["Rhine, 2018 low water", "Calder"])
def test_no_crossing_is_forecast_in_the_controls(name: str) -> None:
    outcome = result(name)
    rungs = [v for s in outcome.stations for v in s.verdicts]
    assert rungs, "a control without thresholds would prove nothing"
    assert all(not v.verdicts.scores for v in rungs), "the control period has a real crossing"
    assert outcome.false_alarms == 0
