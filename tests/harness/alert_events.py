"""Alert events and a committed outbox for the delivery and API tests (no engine needed)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from alerts.events import AlertEvent, EventKind, ThresholdRef, make_event_id
from alerts.gauge_state import GaugeState, Prewarning
from alerts.store import AlertStore, OutboxItem

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

# The ladder of tests/harness/gauges.py's write_catalog.
WATCH = ThresholdRef("watch", 400.0, "watch", "W", {"en": "Watch"})
DANGER = ThresholdRef("danger", 600.0, "danger", "D", {"en": "Danger"})


def event(
    station_id: str = "gauge-000",
    kind: EventKind = EventKind.ESCALATION,
    minutes: float = 0,
    *,
    threshold: ThresholdRef | None = WATCH,
    level: float | None = 412.0,
    expected_in_h: float | None = None,
    detail: str | None = None,
) -> AlertEvent:
    at = T0 + timedelta(minutes=minutes)
    expected = at + timedelta(hours=expected_in_h) if expected_in_h is not None else None
    return AlertEvent(
        event_id=make_event_id(station_id, kind, threshold.key if threshold else None, at),
        station_id=station_id,
        kind=kind,
        at=at,
        threshold=threshold,
        level=level,
        unit="cm",
        rate_per_h=6.0,
        direction="rising",
        expected_at=expected,
        earliest=expected - timedelta(hours=1) if expected else None,
        latest=expected + timedelta(hours=1) if expected else None,
        detail=detail,
    )


def state_after(events: list[AlertEvent], state: GaugeState | None = None) -> GaugeState:
    """A plausible state for a gauge after these events (the engine's real one is richer)."""
    state = state or GaugeState()
    for item in events:
        if item.kind is EventKind.ESCALATION and item.threshold:
            state = replace(state, active=item.threshold.key, since=item.at, last_level=item.level)
        elif item.kind is EventKind.ALL_CLEAR:
            state = replace(state, active=None, since=item.at)
        elif item.kind is EventKind.PREWARNING and item.threshold and item.expected_at:
            state = replace(
                state, prewarning=Prewarning(item.threshold.key, item.expected_at, item.at)
            )
        elif item.kind is EventKind.OFFLINE:
            state = replace(state, offline=True)
        state = replace(state, last_at=item.at)
    return state


async def commit(store: AlertStore, *events: AlertEvent) -> list[OutboxItem]:
    """Commit events per station in order, each with a state that follows from them."""
    added: list[OutboxItem] = []
    by_station: dict[str, list[AlertEvent]] = {}
    for item in events:
        by_station.setdefault(item.station_id, []).append(item)
    states = await store.load_states()
    for station_id, station_events in by_station.items():
        state = state_after(station_events, states.get(station_id))
        added += await store.commit(station_id, state, station_events)
    return added
