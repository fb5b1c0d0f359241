"""Pure InfluxDB wire formats for what Grafana shows beside readings: station state and
collector statistics.

Three measurements, all written by the collector (never spooled: they are a picture of
now, and a lost one is replaced by the next):

* `station_state` (tag `station_id`): each gauge's latest state as the collector sees it,
  one point per write, timestamped when it was written. Fields that have no value (no
  forecast yet, no next threshold) are left out of the point, so dashboards read the
  newest *row* of a station (`ORDER BY time DESC LIMIT 1`), not `last()` of each field.
* `collector` (tag `collector`, the MQTT client id): counts over one interval.
* `collector_rejections` (tags `collector`, `reason`): rejected messages per reason over
  one interval; only reasons that occurred are written.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from floodwatch.storage.line_protocol import _float, _string_field, escape_tag

STATE_MEASUREMENT = "station_state"
STATS_MEASUREMENT = "collector"
REJECTIONS_MEASUREMENT = "collector_rejections"

FieldValue = float | int | bool | str


@dataclass(frozen=True, slots=True)
class StationStatePoint:
    """One gauge's state at `at`; `fields` maps field names to values (None: left out)."""

    station_id: str
    at: datetime
    fields: Mapping[str, FieldValue | None]


@dataclass(frozen=True, slots=True)
class CollectorStatsPoint:
    """One collector's counts over the `interval_s` before `at`."""

    collector: str
    at: datetime
    fields: Mapping[str, FieldValue | None]
    rejections: Mapping[str, int] = field(default_factory=dict)


HealthPoint = StationStatePoint | CollectorStatsPoint


def _ms(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise ValueError("health point times must be timezone-aware")
    return round(moment.timestamp() * 1000)


def _field_key(name: str) -> str:
    # Field keys are ours, not user input: refuse rather than escape anything odd.
    if not name or not all(c.isalnum() or c == "_" for c in name):
        raise ValueError(f"invalid field name {name!r}")
    return name


def _value(value: FieldValue, name: str) -> str:
    # bool first: it is an int subclass, and InfluxDB keeps booleans as their own type.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value}i"
    if isinstance(value, float):
        return _float(value, name)
    if isinstance(value, str):
        return _string_field(value, name)
    raise ValueError(f"{name} has an unsupported type {type(value).__name__}")


def encode_fields(fields: Mapping[str, FieldValue | None]) -> str:
    """`k=v,...` in the given order, None values left out; ValueError if nothing is left."""
    parts = [f"{_field_key(k)}={_value(v, k)}" for k, v in fields.items() if v is not None]
    if not parts:
        raise ValueError("a point needs at least one field")
    return ",".join(parts)


def _state_lines(point: StationStatePoint) -> list[str]:
    tags = f"station_id={escape_tag(point.station_id)}"
    return [f"{STATE_MEASUREMENT},{tags} {encode_fields(point.fields)} {_ms(point.at)}"]


def _stats_lines(point: CollectorStatsPoint) -> list[str]:
    collector = escape_tag(point.collector)
    at = _ms(point.at)
    lines = [f"{STATS_MEASUREMENT},collector={collector} {encode_fields(point.fields)} {at}"]
    for reason, count in sorted(point.rejections.items()):
        if count:
            tags = f"collector={collector},reason={escape_tag(reason)}"
            lines.append(f"{REJECTIONS_MEASUREMENT},{tags} count={int(count)}i {at}")
    return lines


def encode_health_point(point: HealthPoint) -> list[str]:
    """The lines of one point (no trailing newline); raises ValueError naming the point."""
    try:
        if isinstance(point, StationStatePoint):
            return _state_lines(point)
        return _stats_lines(point)
    except ValueError as exc:
        raise ValueError(f"{describe(point)}: {exc}") from None


def describe(point: HealthPoint) -> str:
    if isinstance(point, StationStatePoint):
        return f"station state {point.station_id!r} at {point.at.isoformat()}"
    return f"collector stats {point.collector!r} at {point.at.isoformat()}"


def check_health(point: HealthPoint) -> None:
    """Raise ValueError naming the point if a store must refuse it."""
    encode_health_point(point)


def encode_health(points: Iterable[HealthPoint]) -> bytes:
    """A line protocol request body; raises ValueError naming the first bad point."""
    lines = [line for point in points for line in encode_health_point(point)]
    lines.append("")  # a trailing newline ends the last point
    return "\n".join(lines).encode()


__all__ = [
    "REJECTIONS_MEASUREMENT",
    "STATE_MEASUREMENT",
    "STATS_MEASUREMENT",
    "CollectorStatsPoint",
    "HealthPoint",
    "StationStatePoint",
    "check_health",
    "encode_health",
    "encode_health_point",
]
