"""The JSON the alert HTTP API answers with, built by pure functions (alerts/api.py serves).

Trend and "next threshold" come from what is stored: the station's latest forecast run
beside its latest reading, and the engine's pre-warning, so the API needs neither the
forecaster nor the engine to be running in its process.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from alerts.channels import current
from alerts.events import AlertEvent
from alerts.gauge_state import GaugeState
from alerts.store import OutboxItem
from floodwatch.catalog import Station, Threshold
from floodwatch.models import ForecastPoint, Reading


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def reading_json(reading: Reading) -> dict[str, Any]:
    return {"ts": reading.ts.isoformat(), "level": reading.level, "qc": reading.qc.names()}


def forecast_json(run: Sequence[ForecastPoint]) -> dict[str, Any] | None:
    if not run:
        return None
    return {
        "issued_at": run[0].issued_at.isoformat(),
        "method": run[0].method,
        "points": [
            {
                "horizon_h": round(point.horizon_s / 3600, 3),
                "valid_at": point.valid_at.isoformat(),
                "level": point.level,
                "lower": point.lower,
                "upper": point.upper,
            }
            for point in run
        ],
    }


def trend(latest: Reading | None, run: Sequence[ForecastPoint]) -> dict[str, Any] | None:
    """Where the forecast's shortest horizon sees the level going from the newest reading.

    "steady" unless the whole 90 % band lies above (rising) or below (falling) the level
    now, so a noisy forecast never reads as a trend.
    """
    if latest is None or not run:
        return None
    first = min(run, key=lambda point: point.horizon_s)
    hours = (first.valid_at - latest.ts).total_seconds() / 3600
    if hours <= 0:
        return None  # the run is older than the reading's horizon: nothing to say
    direction = "steady"
    if first.lower > latest.level:
        direction = "rising"
    elif first.upper < latest.level:
        direction = "falling"
    return {
        "direction": direction,
        "rate_per_h": round((first.level - latest.level) / hours, 3),
        "issued_at": first.issued_at.isoformat(),
    }


def _next_rung(station: Station, level: float | None, state: GaugeState | None) -> int | None:
    """Index of the lowest rung above both the level now and the rung held."""
    keys = [rung.key for rung in station.levels]
    held = keys.index(state.active) if state and state.active in keys else -1
    for index, rung in enumerate(station.levels):
        if index > held and (level is None or rung.value > level):
            return index
    return None


def _crossing(
    rung: Threshold, latest: Reading | None, run: Sequence[ForecastPoint]
) -> datetime | None:
    """When the forecast level first reaches the rung, interpolated between points."""
    if latest is None:
        return None
    before_at, before = latest.ts, latest.level
    for point in sorted(run, key=lambda p: p.valid_at):
        if point.valid_at <= latest.ts:
            continue
        if point.level >= rung.value:
            share = (rung.value - before) / (point.level - before) if point.level > before else 1
            return before_at + (point.valid_at - before_at) * max(0.0, min(1.0, share))
        before_at, before = point.valid_at, point.level
    return None


def next_threshold(
    station: Station,
    latest: Reading | None,
    run: Sequence[ForecastPoint],
    state: GaugeState | None,
) -> dict[str, Any] | None:
    """The next rung up and, if expected, when: the engine's pre-warning when one is out
    for that rung, else the forecast run's crossing, else no time."""
    index = _next_rung(station, latest.level if latest else None, state)
    if index is None:
        return None
    rung = station.levels[index]
    expected, source = None, None
    warn = state.prewarning if state else None
    if warn is not None and warn.key == rung.key:
        expected, source = warn.expected_at, "prewarning"
    else:
        expected = _crossing(rung, latest, run)
        source = "forecast" if expected else None
    return {
        "key": rung.key,
        "severity": rung.severity,
        "short": rung.short,
        "value": rung.value,
        "expected_at": _iso(expected),
        "source": source,
    }


def alert_picture(
    station_id: str, station: Station | None, state: GaugeState | None, now: datetime
) -> dict[str, Any]:
    """The same picture as the retained MQTT message, with the catalog's maintenance."""
    picture = current.picture(station_id, state, station, now)
    picture.pop("updated_at")
    picture["maintenance"] = picture["maintenance"] or bool(station and station.maintenance)
    return picture


def event_json(event: AlertEvent) -> dict[str, Any]:
    document = event.to_dict()
    severity = event.severity
    document["severity"] = severity.name.lower() if severity is not None else None
    document["operator_only"] = event.operator_only
    return document


def outbox_json(item: OutboxItem) -> dict[str, Any]:
    return {
        "seq": item.seq,
        "created_at": item.created_at.isoformat(),
        "event": event_json(item.event),
    }


def station_feature(
    station: Station,
    state: GaugeState | None,
    latest: Reading | None,
    run: Sequence[ForecastPoint],
    now: datetime,
) -> dict[str, Any]:
    """One GeoJSON Feature (RFC 7946: coordinates are [longitude, latitude])."""
    picture = alert_picture(station.id, station, state, now)
    level = picture["level"]
    properties = {
        "id": station.id,
        "names": dict(station.names),
        "river": dict(station.river),
        "unit": station.unit,
        "level": latest.level if latest else None,
        "ts": latest.ts.isoformat() if latest else None,
        "qc": latest.qc.names() if latest else [],
        "trend": trend(latest, run),
        "alert_level": level,
        # Flat, so a map can colour by one property: the held rung's severity.
        "severity": level["severity"] if level else None,
        "prewarning": picture["prewarning"],
        "offline": picture["offline"],
        "faulty": picture["faulty"],
        "maintenance": picture["maintenance"],
        "next_threshold": next_threshold(station, latest, run, state),
    }
    return {
        "type": "Feature",
        "id": station.id,
        "geometry": {"type": "Point", "coordinates": [station.lon, station.lat]},
        "properties": properties,
    }


def active_alerts(
    catalog: Mapping[str, Station],
    states: Mapping[str, GaugeState],
    station_id: str | None,
    now: datetime,
) -> list[dict[str, Any]]:
    """Gauges holding a rung or a pre-warning, most severe first."""
    rank = {"danger": 3, "warning": 2, "watch": 1}
    active = []
    for sid, state in states.items():
        if station_id is not None and sid != station_id:
            continue
        if state.active is None and state.prewarning is None:
            continue
        station = catalog.get(sid)
        picture = alert_picture(sid, station, state, now)
        picture["names"] = dict(station.names) if station else {}
        picture["river"] = dict(station.river) if station else {}
        active.append(picture)

    def order(picture: dict[str, Any]) -> tuple[int, str]:
        held = picture["level"] or picture["prewarning"] or {}
        return -rank.get(held.get("severity") or "", 0), picture["station_id"]

    return sorted(active, key=order)
