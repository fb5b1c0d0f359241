"""How early a pre-warning came: pure functions over a gauge's events and readings.

The definitions are the backtest's (alerts/backtest_score.py): a crossing is the moment
the level reached the rung from below, interpolated between two readings; the lead is the
crossing time minus when the pre-warning in force at the crossing (for this rung or a
higher one, not withdrawn, downgraded or left unrefreshed for a whole forecast horizon)
was first issued.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from alerts.events import AlertEvent, EventKind

PREWARNINGS = (EventKind.PREWARNING, EventKind.PREWARNING_UPDATE)


def crossing_time(
    before: tuple[datetime, float], after: tuple[datetime, float], value: float
) -> datetime:
    """When the level passed `value` between two readings (the later one at or above it)."""
    (t0, level0), (t1, level1) = before, after
    if level0 >= value or level1 <= level0:
        return t1
    return t0 + (t1 - t0) * ((value - level0) / (level1 - level0))


def rung_index(event: AlertEvent, keys: Sequence[str]) -> int:
    if event.threshold is None or event.threshold.key not in keys:
        return -1
    return list(keys).index(event.threshold.key)


def prewarned_since(
    events: Sequence[AlertEvent],
    keys: Sequence[str],
    rung: int,
    crossed_at: datetime,
    horizon: timedelta,
) -> datetime | None:
    """When residents were first told of rung `rung` (or a higher one) in the pre-warning
    in force at `crossed_at`; None if none was (a miss). `events`: one gauge's, in order."""
    since: datetime | None = None
    last: datetime | None = None
    for event in events:
        if event.at > crossed_at:
            break
        index = rung_index(event, keys)
        if event.kind in PREWARNINGS and index >= rung:
            if since is None or last is None or event.at - last > horizon:
                since = event.at  # a new episode (the previous one had expired)
            last = event.at
        elif event.kind in PREWARNINGS or event.kind is EventKind.PREWARNING_WITHDRAWN:
            since = last = None  # withdrawn, or lowered below this rung
        elif event.kind is EventKind.ESCALATION and index >= rung and event.at < crossed_at:
            since = last = None  # an earlier crossing: that pre-warning came true
    if last is None or crossed_at - last > horizon:
        return None
    return since


def lead(
    events: Sequence[AlertEvent],
    keys: Sequence[str],
    rung: int,
    crossed_at: datetime,
    horizon: timedelta,
) -> timedelta | None:
    since = prewarned_since(events, keys, rung, crossed_at, horizon)
    return None if since is None else crossed_at - since
