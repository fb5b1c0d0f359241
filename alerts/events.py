"""Alert events: what the engine decides and every channel delivers.

An event is immutable and carries everything a message needs (gauge, level with unit,
trend, the threshold's local name and value, the expected time), so channels and message
templates never look anything up, and an event stored in the outbox renders the same
after a restart or a catalog change.
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from floodwatch.catalog import Severity


class EventKind(enum.StrEnum):
    ESCALATION = "escalation"  # the level reached a higher rung of the ladder
    DEESCALATION = "deescalation"  # fell below a rung (margin and dwell), still above another
    ALL_CLEAR = "all_clear"  # fell below the lowest rung (margin and dwell)
    PREWARNING = "prewarning"  # the forecast expects a rung above the current one
    PREWARNING_UPDATE = "prewarning_update"  # the expected time moved a lot
    PREWARNING_WITHDRAWN = "prewarning_withdrawn"  # the forecast no longer supports it
    RAPID_RISE = "rapid_rise"  # rising faster than the station's max_rise_per_hour
    OFFLINE = "offline"  # no reading for longer than allowed
    ONLINE = "online"  # readings again after being offline
    FAULTY = "faulty"  # readings flagged by quality control
    # a reading at or above a rung that quality control still holds suspect: dispatchers
    # verify now; residents are told once the next reading confirms it
    UNCONFIRMED = "unconfirmed"
    FAULT_CLEARED = "fault_cleared"
    MAINTENANCE_ON = "maintenance_on"
    MAINTENANCE_OFF = "maintenance_off"

    @property
    def operator_only(self) -> bool:
        """Gauge health is for dispatchers and operators, never sent to residents."""
        return self in OPERATOR_ONLY


OPERATOR_ONLY = frozenset(
    {
        EventKind.OFFLINE,
        EventKind.ONLINE,
        EventKind.FAULTY,
        EventKind.UNCONFIRMED,
        EventKind.FAULT_CLEARED,
        EventKind.MAINTENANCE_ON,
        EventKind.MAINTENANCE_OFF,
    }
)


@dataclass(frozen=True, slots=True)
class ThresholdRef:
    """The rung an event is about, copied from the catalog at the time of the event."""

    key: str
    value: float
    severity: str  # watch | warning | danger
    short: str  # local short name: НЯ, ОЯ, I, II
    names: dict[str, str]  # per language

    @property
    def rank(self) -> Severity:
        return Severity[self.severity.upper()]


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """One decision of the alert engine. `event_id` is unique and deterministic (station,
    kind, rung, time), so an event decided twice from the same reading is one event."""

    event_id: str
    station_id: str
    kind: EventKind
    at: datetime  # when it happened (the reading's or forecast's time), UTC
    threshold: ThresholdRef | None = None  # the rung entered, left or expected
    previous: ThresholdRef | None = None  # the rung before (escalation, de-escalation)
    level: float | None = None  # observed level, station unit
    unit: str = ""
    rate_per_h: float | None = None
    direction: str | None = None  # rising | falling | steady
    expected_at: datetime | None = None  # pre-warnings: when the rung is expected
    earliest: datetime | None = None
    latest: datetime | None = None
    detail: str | None = None  # operator events: why (QC flags, silence duration)
    # unconfirmed: the last trusted reading before the move quality control holds
    from_level: float | None = None
    from_at: datetime | None = None

    @property
    def operator_only(self) -> bool:
        return self.kind.operator_only

    @property
    def severity(self) -> Severity | None:
        """The severity residents filter on: the rung's (None for all-clear and gauge health)."""
        if self.kind is EventKind.ALL_CLEAR or self.threshold is None:
            return None
        return self.threshold.rank

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["kind"] = self.kind.value
        for name in _TIMES:
            value = getattr(self, name)
            data[name] = value.isoformat() if value is not None else None
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AlertEvent:
        values = dict(data)
        values["kind"] = EventKind(values["kind"])
        for name in _TIMES:
            if values.get(name) is not None:
                values[name] = datetime.fromisoformat(values[name])
        for name in ("threshold", "previous"):
            if values.get(name) is not None:
                values[name] = ThresholdRef(**values[name])
        return cls(**values)


_TIMES = ("at", "expected_at", "earliest", "latest", "from_at")


def make_event_id(station_id: str, kind: EventKind, key: str | None, at: datetime) -> str:
    return f"{station_id}:{kind.value}:{key or '-'}:{round(at.timestamp() * 1000)}"
