"""What a catalog or threshold change means for one gauge: the decision to run, if any."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from alerts.events import AlertEvent
from alerts.gauge_state import GaugeState
from alerts.state_machine import AlertRules, Transition, on_ladder_change, on_maintenance
from alerts.thresholds import fingerprint
from floodwatch.catalog import Station

Decide = Callable[[GaugeState, Station], Transition]


def changes(
    state: GaugeState,
    station: Station,
    ladder_before: str | None,
    at: datetime,
    rules: AlertRules,
) -> Decide | None:
    """The decision to run for `station` as it is now, or None if nothing changed for it.

    `ladder_before`: the fingerprint of the ladder the gauge was last decided on (None: a
    gauge new to the engine, decided on this ladder from its first reading on). The
    decision re-checks the state it is given: the gauge may have moved meanwhile.
    """
    ladder_changed = ladder_before is not None and ladder_before != fingerprint(station)
    if not ladder_changed and state.maintenance == station.maintenance:
        return None

    def decide(current: GaugeState, now_station: Station) -> Transition:
        events: list[AlertEvent] = []
        if current.maintenance != now_station.maintenance:
            moved = on_maintenance(current, now_station, now_station.maintenance, at)
            current = moved.state
            events.extend(moved.events)
        if ladder_changed:
            moved = on_ladder_change(current, now_station, at, rules)
            current = moved.state
            events.extend(moved.events)
        return Transition(current, tuple(events))

    return decide
