"""The current alert picture of a gauge: retained on `floodwatch/alerts/{id}/current`.

Built by the MQTT channel from the engine's stored state; read by the collector, which
merges it into the retained station state. Pure and light (standard library, orjson), so
the collector can import it without loading the engine.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from alerts.gauge_state import GaugeState
    from floodwatch.catalog import Station


def _rung(station: Station | None, key: str) -> dict[str, Any]:
    """The rung as the catalog has it now; only the key if the catalog lost it."""
    rung = next((r for r in station.levels if r.key == key), None) if station else None
    return {
        "key": key,
        "severity": rung.severity if rung else None,
        "short": rung.short if rung else None,
        "value": rung.value if rung else None,
    }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def picture(
    station_id: str, state: GaugeState | None, station: Station | None, now: datetime
) -> dict[str, Any]:
    """The JSON document for one gauge; a gauge without stored state has nothing active."""
    level = prewarning = None
    if state is not None and state.active is not None:
        level = _rung(station, state.active) | {"since": _iso(state.since)}
    if state is not None and state.prewarning is not None:
        warn = state.prewarning
        prewarning = _rung(station, warn.key) | {
            "expected_at": _iso(warn.expected_at),
            "issued_at": _iso(warn.issued_at),
        }
    return {
        "station_id": station_id,
        "level": level,
        "prewarning": prewarning,
        "offline": bool(state and state.offline),
        "faulty": bool(state and state.faulty),
        "maintenance": bool(state and state.maintenance),
        "updated_at": now.isoformat(),
    }


def payload(document: Mapping[str, Any]) -> bytes:
    return orjson.dumps(document)


@dataclass(frozen=True, slots=True)
class CurrentAlert:
    """What the station state shows of a gauge's current alert picture."""

    updated_at: datetime
    level: Mapping[str, Any] | None
    prewarning: Mapping[str, Any] | None
    offline: bool


def parse(body: bytes) -> CurrentAlert | None:
    """The picture from a retained message, or None if the payload is not one."""
    try:
        document = orjson.loads(body)
        updated_at = datetime.fromisoformat(document["updated_at"])
    except (orjson.JSONDecodeError, TypeError, KeyError, ValueError):
        return None
    level, prewarning = document.get("level"), document.get("prewarning")
    if updated_at.tzinfo is None or not all(
        part is None or isinstance(part, dict) for part in (level, prewarning)
    ):
        return None
    return CurrentAlert(updated_at, level, prewarning, document.get("offline") is True)
