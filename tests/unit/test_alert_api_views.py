"""Tables for the API's pure parts: trend, next threshold, and which CAP alerts are shown."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from alerts import api_views as views
from alerts import cap_select
from alerts.events import AlertEvent, EventKind
from alerts.gauge_state import GaugeState, Prewarning
from alerts.store import OutboxItem
from floodwatch.catalog import Station, load_catalog
from floodwatch.models import ForecastPoint, Reading
from tests.harness.alert_events import DANGER, T0, WATCH, event
from tests.harness.gauges import write_catalog

H = timedelta(hours=1)


@pytest.fixture
def station(tmp_path: Path) -> Station:
    path = tmp_path / "stations.yaml"
    write_catalog(path, 1)
    return load_catalog(path)["gauge-000"]


def run(*levels: tuple[float, float, float], issued: datetime = T0) -> list[ForecastPoint]:
    """Points at issued + 1 h, + 2 h, … with (level, lower, upper)."""
    return [
        ForecastPoint("gauge-000", issued, issued + (n + 1) * H, (n + 1) * 3600, *band, "trend")
        for n, band in enumerate(levels)
    ]


NOW_380 = Reading("gauge-000", T0, 380.0)


@pytest.mark.parametrize(
    ("points", "direction", "rate"),
    [
        (run((395, 390, 400)), "rising", 15.0),
        (run((385, 379, 391)), "steady", 5.0),
        (run((370, 365, 375)), "falling", -10.0),
    ],
)
def test_trend_is_a_direction_only_outside_the_band(
    points: list[ForecastPoint], direction: str, rate: float
) -> None:
    trend = views.trend(NOW_380, points)

    assert trend is not None
    assert trend["direction"] == direction
    assert trend["rate_per_h"] == pytest.approx(rate)


def test_no_trend_without_a_reading_a_run_or_a_run_ahead_of_the_reading() -> None:
    assert views.trend(None, run((395, 390, 400))) is None
    assert views.trend(NOW_380, []) is None
    assert views.trend(NOW_380, run((395, 390, 400), issued=T0 - 2 * H)) is None


def test_next_threshold_from_the_forecast_crossing(station: Station) -> None:
    found = views.next_threshold(station, NOW_380, run((395, 0, 0), (410, 0, 0)), None)

    assert found is not None
    assert found["key"] == "watch"
    assert found["source"] == "forecast"
    assert datetime.fromisoformat(found["expected_at"]) == T0 + H + timedelta(minutes=20)


def test_next_threshold_without_a_crossing_has_no_time(station: Station) -> None:
    found = views.next_threshold(station, NOW_380, run((390, 0, 0)), None)

    assert found is not None
    assert found["expected_at"] is None
    assert found["source"] is None


def test_next_threshold_is_above_the_rung_held_and_takes_the_prewarning(
    station: Station,
) -> None:
    # Falling back below the watch mark but still holding it (dwell): danger is next.
    state = GaugeState(active="watch", prewarning=Prewarning("danger", T0 + 5 * H, T0))

    found = views.next_threshold(station, NOW_380, [], state)

    assert found is not None
    assert found["key"] == "danger"
    assert found["source"] == "prewarning"
    assert datetime.fromisoformat(found["expected_at"]) == T0 + 5 * H


def test_no_next_threshold_above_the_top_rung(station: Station) -> None:
    assert views.next_threshold(station, Reading("gauge-000", T0, 700.0), [], None) is None


# --- CAP selection ----------------------------------------------------------------------


def outbox(*events: AlertEvent) -> list[OutboxItem]:
    return [OutboxItem(n + 1, e, e.at + timedelta(seconds=1)) for n, e in enumerate(events)]


NOW = T0 + 3 * H
HELD = GaugeState(active="danger")


def shown(history: list[OutboxItem], station: Station, state: GaugeState) -> list[str]:
    entries = cap_select.station_entries(history, station, state, sender="s", now=NOW)
    return [f"{e.event.kind.value}<{len(e.references)}" for e in entries]


def test_an_active_run_shows_its_latest_alert_referencing_the_earlier(station: Station) -> None:
    history = outbox(event(), event(minutes=10, threshold=DANGER))

    assert shown(history, station, HELD) == ["escalation<1"]
    assert shown(history, station, GaugeState()) == []  # the engine no longer holds it


def test_an_ended_run_shows_its_cancel_for_a_while(station: Station) -> None:
    history = outbox(
        event(),
        event(minutes=10, threshold=DANGER),
        event(kind=EventKind.ALL_CLEAR, minutes=60, threshold=None),
    )

    assert shown(history, station, GaugeState()) == ["all_clear<2"]
    later = cap_select.station_entries(history, station, GaugeState(), sender="s", now=NOW + 13 * H)
    assert later == []


def test_a_new_run_after_a_cancel_starts_afresh(station: Station) -> None:
    history = outbox(
        event(),
        event(kind=EventKind.ALL_CLEAR, minutes=60, threshold=None),
        event(minutes=120),
    )

    assert shown(history, station, GaugeState(active="watch")) == ["escalation<0"]


def test_streams_are_independent_and_a_lone_cancel_is_not_shown(station: Station) -> None:
    history = outbox(
        event(kind=EventKind.PREWARNING_WITHDRAWN, threshold=WATCH),  # its run is older
        event(kind=EventKind.RAPID_RISE, minutes=5, threshold=None),
        event(kind=EventKind.PREWARNING, minutes=6, threshold=DANGER, expected_in_h=2),
        event(kind=EventKind.OFFLINE, minutes=7, threshold=None),
    )
    state = GaugeState(rapid=True, prewarning=Prewarning("danger", T0 + 2 * H, T0))

    assert shown(history, station, state) == ["prewarning<0", "rapid_rise<0"]


def test_candidates_are_active_gauges_and_recent_cancels() -> None:
    cancel = event("gauge-009", EventKind.ALL_CLEAR, 170, threshold=None)
    stale = event("gauge-008", EventKind.ALL_CLEAR, -24 * 60, threshold=None)
    states = {"gauge-001": HELD, "gauge-002": GaugeState(), "gauge-003": GaugeState(rapid=True)}

    found = cap_select.candidates(states, outbox(cancel, stale), now=NOW)

    assert found == ["gauge-001", "gauge-003", "gauge-009"]
