"""Sample alert events on real catalog gauges, for the message and CAP tests."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import floodwatch
from alerts.events import AlertEvent, EventKind, ThresholdRef, make_event_id
from floodwatch.catalog import Station, Threshold, load_catalog

CATALOGS = Path(floodwatch.__file__).parent / "catalogs"
MAINZ = load_catalog(CATALOGS / "rhine.yaml")["rhein-mainz"]  # marks I (warning), II (danger)
KHABAROVSK = load_catalog(CATALOGS / "amur.yaml")["amur-khabarovsk"]  # НЯ (warning), ОЯ (danger)

AT = datetime(2018, 1, 5, 12, 0, tzinfo=UTC)
EXPECTED = datetime(2018, 1, 5, 18, 0, tzinfo=UTC)  # 19:00 in Berlin, 04:00 next day in Khabarovsk
RESIDENT_KINDS = [kind for kind in EventKind if not kind.operator_only]
OPERATOR_KINDS = [kind for kind in EventKind if kind.operator_only]


def ref(threshold: Threshold) -> ThresholdRef:
    return ThresholdRef(
        threshold.key, threshold.value, threshold.severity, threshold.short, dict(threshold.names)
    )


def sample_event(kind: EventKind, station: Station = MAINZ, **changes: Any) -> AlertEvent:
    """A plausible event of each kind on a gauge with at least two rungs."""
    low, high = ref(station.levels[0]), ref(station.levels[-1])
    rungs: dict[EventKind, tuple[ThresholdRef | None, ThresholdRef | None, float, str]] = {
        EventKind.ESCALATION: (high, low, high.value + 12, "rising"),
        EventKind.DEESCALATION: (low, high, (low.value + high.value) // 2, "falling"),
        EventKind.ALL_CLEAR: (low, None, low.value - 15, "falling"),
        EventKind.PREWARNING: (high, None, high.value - 40, "rising"),
        EventKind.PREWARNING_UPDATE: (high, None, high.value - 30, "rising"),
        EventKind.PREWARNING_WITHDRAWN: (high, None, high.value - 60, "falling"),
        EventKind.RAPID_RISE: (low, None, low.value - 30, "rising"),
    }
    threshold, previous, level, direction = rungs.get(kind, (None, None, 500.0, "steady"))
    forecast = kind in (EventKind.PREWARNING, EventKind.PREWARNING_UPDATE)
    at = changes.get("at", AT)
    event = AlertEvent(
        event_id=make_event_id(station.id, kind, threshold.key if threshold else None, at),
        station_id=station.id,
        kind=kind,
        at=at,
        threshold=threshold,
        previous=previous,
        level=level,
        unit=station.unit,
        rate_per_h=-4.0 if direction == "falling" else 6.0 if direction == "rising" else 0.0,
        direction=direction,
        expected_at=EXPECTED if forecast else None,
        earliest=EXPECTED - timedelta(hours=1) if forecast else None,
        latest=EXPECTED + timedelta(hours=4, minutes=30) if forecast else None,
        detail="no reading for 3 h" if kind.operator_only else None,
    )
    return dataclasses.replace(event, **changes)


def station_like(station: Station, **changes: Any) -> Station:
    """The station with some fields replaced, validated like a catalog entry."""
    return Station.model_validate({**station.model_dump(), **changes})
