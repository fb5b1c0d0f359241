"""Line protocol for station state and collector statistics, and how the collector builds
them (pure: no store, no broker)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from alerts.channels.current import CurrentAlert
from collector.metrics import CollectorMetrics
from collector.stats import Counters, state_point, stats_point
from floodwatch.catalog import Station
from floodwatch.models import QCFlag, Reading
from floodwatch.storage.health_lines import (
    CollectorStatsPoint,
    StationStatePoint,
    check_health,
    encode_health,
    encode_health_point,
)
from forecasting.state import StateForecast

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
T0_MS = 1772366400000


def state(station_id: str = "g-1", **fields: Any) -> StationStatePoint:
    return StationStatePoint(station_id, T0, fields or {"level": 1.5})


@pytest.mark.parametrize(
    ("point", "lines"),
    [
        (state(level=412.5), [f"station_state,station_id=g-1 level=412.5 {T0_MS}"]),
        (
            state(level=1.0, alert_rank=3, offline=0, name="Bonn", next_key=None),
            [
                "station_state,station_id=g-1"
                f' level=1.0,alert_rank=3i,offline=0i,name="Bonn" {T0_MS}'
            ],
        ),
        (
            state(flag=True, other=False),
            [f"station_state,station_id=g-1 flag=true,other=false {T0_MS}"],
        ),
        # Hostile values: tag escaping, quotes and backslashes in strings.
        (
            state("a b,c=d", level=1.0),
            [f"station_state,station_id=a\\ b\\,c\\=d level=1.0 {T0_MS}"],
        ),
        (
            state(name='Pegel "Köln" \\ Rhein'),
            [f'station_state,station_id=g-1 name="Pegel \\"Köln\\" \\\\ Rhein" {T0_MS}'],
        ),
        (
            CollectorStatsPoint(
                "col-1", T0, {"received": 5, "lag_mean_s": None}, {"bad_schema": 2}
            ),
            [
                f"collector,collector=col-1 received=5i {T0_MS}",
                f"collector_rejections,collector=col-1,reason=bad_schema count=2i {T0_MS}",
            ],
        ),
        # Reasons that did not occur in the interval are not written.
        (
            CollectorStatsPoint("c", T0, {"received": 0}, {"too_old": 0, "in_future": 1}),
            [
                f"collector,collector=c received=0i {T0_MS}",
                f"collector_rejections,collector=c,reason=in_future count=1i {T0_MS}",
            ],
        ),
    ],
)
def test_encoding(point: StationStatePoint | CollectorStatsPoint, lines: list[str]) -> None:
    assert encode_health_point(point) == lines
    check_health(point)


@pytest.mark.parametrize(
    ("point", "message"),
    [
        (state("line\nbreak"), "line break"),
        (state("ends\\"), "backslash"),
        (state(""), "empty"),
        (state(level=float("nan")), "finite"),
        (state(level=float("inf")), "finite"),
        (state(name="two\nlines"), "line break"),
        (StationStatePoint("g", T0, {"bad key": 1}), "invalid field name"),
        (StationStatePoint("g", T0, {"x=1 y": 1}), "invalid field name"),
        (state(only=None), "at least one field"),
        (state(level=[1.0]), "unsupported type"),
        (StationStatePoint("g", datetime(2026, 1, 1), {"level": 1.0}), "timezone-aware"),  # noqa: DTZ001
        (CollectorStatsPoint("c", T0, {"received": 1}, {"a\nb": 1}), "line break"),
    ],
)
def test_refused_points_name_themselves(point: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message) as raised:
        check_health(point)
    assert "station state" in str(raised.value) or "collector stats" in str(raised.value)


def test_a_body_is_every_line_with_a_final_newline() -> None:
    body = encode_health([state(level=1.0), CollectorStatsPoint("c", T0, {"received": 2})])
    assert body.decode().splitlines() == [
        f"station_state,station_id=g-1 level=1.0 {T0_MS}",
        f"collector,collector=c received=2i {T0_MS}",
    ]
    assert body.endswith(b"\n")


# --- what the collector writes -----------------------------------------------------------

STATION = Station.model_validate(
    {
        "id": "g-1",
        "names": {"en": "Gauge one", "de": "Pegel eins"},
        "river": {"en": "Test"},
        "lat": 50.5,
        "lon": 7.25,
        "unit": "cm",
        "levels": [
            {"key": "a", "value": 400, "severity": "watch", "short": "A", "names": {"en": "A"}},
            {"key": "b", "value": 450, "severity": "watch", "short": "B", "names": {"en": "B"}},
            {"key": "c", "value": 600, "severity": "danger", "short": "C", "names": {"en": "C"}},
        ],
    }
)
FORECAST = StateForecast(
    T0,
    {"direction": "rising", "rate_per_h": 12.5},
    {
        "next": {
            "key": "c",
            "value": 600,
            "status": "expected",
            "expected_at": "2026-03-01T15:00:00+00:00",
        },
        "horizon": {"horizon_h": 6, "level": 640.0},
    },
)
ALERT = CurrentAlert(
    T0,
    {"key": "b", "severity": "watch", "short": "B", "value": 450},
    {"key": "c", "expected_at": "2026-03-01T15:30:00+00:00"},
    False,
)


def test_state_point_of_a_gauge_with_forecast_and_alert() -> None:
    reading = Reading("g-1", T0 - timedelta(minutes=5), 470.0)
    point = state_point(STATION, reading, FORECAST, ALERT, T0, offline_after_s=3600)
    assert (point.station_id, point.at) == ("g-1", T0)
    assert point.fields == {
        "name": "Gauge one",
        "lat": 50.5,
        "lon": 7.25,
        "unit": "cm",
        "level": 470.0,
        "reading_ts": T0_MS - 300_000,
        "age_s": 300.0,
        "qc": 0,
        "faulty": 0,
        "suspect": 0,
        "maintenance": 0,
        "offline": 0,
        # The lowest rung of each severity is its threshold line.
        "watch_value": 400.0,
        "danger_value": 600.0,
        "level_rank": 1,
        "alert_rank": 1,
        "alert_level": "b",
        "prewarning_key": "c",
        "prewarning_expected": T0_MS + 3.5 * 3_600_000,
        "trend": "rising",
        "rate_per_h": 12.5,
        "next_key": "c",
        "next_value": 600.0,
        "next_status": "expected",
        "next_expected": T0_MS + 3 * 3_600_000,
        "forecast_level": 640.0,
        "forecast_horizon_h": 6.0,
    }
    encode_health_point(point)


@pytest.mark.parametrize(
    ("level", "qc", "age_min", "alert_offline", "expected"),
    [
        (300.0, QCFlag.NONE, 5, None, {"level_rank": 0, "faulty": 0, "offline": 0}),
        (600.0, QCFlag.NONE, 5, None, {"level_rank": 3, "faulty": 0, "offline": 0}),
        # A spike reaches no rung (the engine ignores it too) and marks the gauge faulty.
        (900.0, QCFlag.SPIKE | QCFlag.JUMP, 5, None, {"level_rank": 0, "faulty": 1, "offline": 0}),
        # Held suspect by QC: not (yet) a fault, but worth a look; it reaches no rung.
        (
            900.0,
            QCFlag.SUSPECT,
            5,
            None,
            {"level_rank": 0, "faulty": 0, "suspect": 1, "offline": 0},
        ),
        # Confirmed: clean, it reaches its rung.
        (650.0, QCFlag.CONFIRMED, 5, None, {"level_rank": 3, "faulty": 0, "suspect": 0}),
        # Maintenance is not a fault, but its readings reach nothing either.
        (700.0, QCFlag.MAINTENANCE, 5, None, {"level_rank": 0, "faulty": 0, "offline": 0}),
        # Offline: silent longer than the setting, or the engine says so.
        (300.0, QCFlag.NONE, 61, None, {"level_rank": 0, "faulty": 0, "offline": 1}),
        (300.0, QCFlag.NONE, 5, True, {"level_rank": 0, "faulty": 0, "offline": 1}),
    ],
)
def test_state_flags(
    level: float, qc: QCFlag, age_min: int, alert_offline: bool | None, expected: dict[str, int]
) -> None:
    reading = Reading("g-1", T0 - timedelta(minutes=age_min), level, qc=qc)
    alert = CurrentAlert(T0, None, None, alert_offline) if alert_offline is not None else None
    fields = state_point(STATION, reading, None, alert, T0, offline_after_s=3600).fields
    assert {key: fields[key] for key in expected} == expected
    # Without a forecast or an alert: no trend fields at all, and no alert level.
    assert "trend" not in fields
    assert "next_key" not in fields
    assert (fields["alert_rank"], fields["alert_level"]) == (0, "none")


def test_stats_are_the_counts_of_one_interval() -> None:
    metrics = CollectorMetrics()
    metrics.received.inc(3)
    metrics.rejected.labels("bad_schema").inc()
    before = Counters.read(metrics)
    metrics.received.inc(10)
    metrics.accepted.inc(8)
    metrics.written.inc(8)
    metrics.rejected.labels("bad_schema").inc(2)
    metrics.rejected.labels("too_old").inc()
    metrics.lag.observe(1.0)
    metrics.lag.observe(3.0)
    metrics.spool_depth.set(7)
    point = stats_point("col", before, Counters.read(metrics), 10.0, T0)
    assert point.fields == {
        "received": 10,
        "accepted": 8,
        "written": 8,
        "spooled": 0,
        "dead_lettered": 0,
        "rejected": 3,
        "interval_s": 10.0,
        "spool_depth": 7,
        "lag_mean_s": 2.0,
    }
    assert point.rejections == {"bad_schema": 2, "too_old": 1}
    # An interval without stored readings has no lag (left out, not zero).
    idle = stats_point("col", Counters.read(metrics), Counters.read(metrics), 10.0, T0)
    assert idle.fields["lag_mean_s"] is None
    assert encode_health_point(idle)[0].startswith("collector,collector=col received=0i,")
