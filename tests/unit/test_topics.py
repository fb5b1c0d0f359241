from __future__ import annotations

import pytest

from floodwatch import topics


@pytest.mark.parametrize(
    ("topic", "station"),
    [
        ("floodwatch/gauges/rhein-mainz/level", "rhein-mainz"),
        ("floodwatch/gauges/a/level", "a"),
        ("floodwatch/gauges/" + "x" * 64 + "/level", "x" * 64),
        ("floodwatch/gauges/" + "x" * 65 + "/level", None),
        ("floodwatch/gauges/Rhein/level", None),
        ("floodwatch/gauges/rhein_mainz/level", None),
        ("floodwatch/gauges//level", None),
        ("floodwatch/gauges/a/b/level", None),
        ("floodwatch/gauges/a/flow", None),
        ("other/gauges/a/level", None),
    ],
)
def test_station_from_gauge_topic(topic: str, station: str | None) -> None:
    assert topics.station_from_gauge_topic(topic) == station


def test_topic_builders_follow_the_design() -> None:
    assert topics.gauge_level("g-1") == "floodwatch/gauges/g-1/level"
    assert topics.rejected("g-1") == "floodwatch/rejected/g-1"
    assert topics.clean_reading("g-1") == "floodwatch/readings/g-1"
    assert topics.station_state("g-1") == "floodwatch/stations/g-1/state"
    assert topics.alert("g-1") == "floodwatch/alerts/g-1"
    assert topics.shared("grp", topics.GAUGE_LEVEL_FILTER) == "$share/grp/floodwatch/gauges/+/level"


def test_forecast_topics() -> None:
    assert topics.forecast("g-1") == "floodwatch/forecasts/g-1"
    assert topics.FORECASTS_FILTER == "floodwatch/forecasts/+"
    assert topics.CLEAN_READINGS_FILTER == "floodwatch/readings/+"


@pytest.mark.parametrize(
    ("topic", "kind", "station"),
    [
        ("floodwatch/forecasts/rhein-mainz", "forecasts", "rhein-mainz"),
        ("floodwatch/readings/rhein-mainz", "readings", "rhein-mainz"),
        ("floodwatch/readings/rhein-mainz", "forecasts", None),
        ("floodwatch/forecasts/Rhein", "forecasts", None),
        ("floodwatch/forecasts/a/b", "forecasts", None),
        ("other/forecasts/a", "forecasts", None),
    ],
)
def test_station_from_topic(topic: str, kind: str, station: str | None) -> None:
    assert topics.station_from_topic(topic, kind) == station


def test_alert_topics() -> None:
    assert topics.alert("g-1") == "floodwatch/alerts/g-1"
    assert topics.alert_current("g-1") == "floodwatch/alerts/g-1/current"
    assert topics.ALERTS_FILTER == "floodwatch/alerts/+"
    assert topics.ALERTS_CURRENT_FILTER == "floodwatch/alerts/+/current"


@pytest.mark.parametrize(
    ("topic", "station"),
    [
        ("floodwatch/alerts/rhein-mainz/current", "rhein-mainz"),
        ("floodwatch/alerts/rhein-mainz", None),
        ("floodwatch/alerts/Rhein/current", None),
        ("floodwatch/alerts/a/state", None),
        ("floodwatch/alerts/a/b/current", None),
        ("other/alerts/a/current", None),
    ],
)
def test_station_from_alert_current_topic(topic: str, station: str | None) -> None:
    assert topics.station_from_alert_current_topic(topic) == station
