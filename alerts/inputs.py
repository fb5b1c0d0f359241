"""What the alert engine reads from MQTT, parsed: pure functions, no I/O.

Three topics feed the engine:
- `floodwatch/readings/{id}`: QC-clean readings (the collector's `reading_payload`; a
  CONFIRMED one was suspect and is now trusted);
- `floodwatch/flagged/{id}`: every reading quality control did not pass clean (suspect,
  spike, jump, flatline, maintenance), QoS 1, so none can go unseen;
- `floodwatch/forecasts/{id}`: the forecaster's retained summary.
The retained `floodwatch/stations/{id}/state`, which carried flagged readings before they
had a topic of their own, is ignored (a persistent session may still be subscribed).
A payload that does not parse raises BadInput; the engine counts and drops it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from alerts.forecast_view import ForecastView, from_summary
from floodwatch import topics
from floodwatch.models import QCFlag

STATE_FILTER = f"{topics.PREFIX}/stations/+/state"
_FLAGS = {flag.name.lower(): flag for flag in QCFlag if flag and flag.name}
_TRUSTED = QCFlag.CONFIRMED


class BadInput(ValueError):
    """A message the engine cannot use; the text says why."""


@dataclass(frozen=True, slots=True)
class ReadingInput:
    station_id: str
    level: float
    at: datetime
    qc: QCFlag = QCFlag.NONE


@dataclass(frozen=True, slots=True)
class ForecastInput:
    station_id: str
    issued_at: datetime
    view: ForecastView


Input = ReadingInput | ForecastInput


def station_from_state_topic(topic: str) -> str | None:
    parts = topic.split("/")
    if len(parts) != 4 or parts[0] != topics.PREFIX or parts[1] != "stations":
        return None
    if parts[3] != "state" or not topics.STATION_ID_RE.match(parts[2]):
        return None
    return parts[2]


def parse(topic: str, payload: bytes) -> Input | None:
    """The input a message carries; None when it carries nothing for the engine."""
    if (station_id := topics.station_from_topic(topic, "readings")) is not None:
        return _reading(station_id, _document(payload), clean=True)
    if (station_id := topics.station_from_topic(topic, "flagged")) is not None:
        return _reading(station_id, _document(payload), clean=False)
    if (station_id := topics.station_from_topic(topic, "forecasts")) is not None:
        return _forecast(station_id, _document(payload))
    if station_from_state_topic(topic) is not None:
        return None  # flagged readings have their own topic now
    raise BadInput(f"unexpected topic {topic!r}")


def _document(payload: bytes) -> dict[str, Any]:
    try:
        document = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise BadInput(f"not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise BadInput("not a JSON object")
    return document


def _time(value: object, name: str) -> datetime:
    try:
        at = datetime.fromisoformat(str(value))
    except ValueError:
        raise BadInput(f"{name}: {value!r} is not an RFC 3339 time") from None
    if at.tzinfo is None:
        raise BadInput(f"{name}: {value!r} has no UTC offset")
    return at


def _reading(station_id: str, document: dict[str, Any], *, clean: bool) -> ReadingInput:
    if document.get("station_id", station_id) != station_id:
        raise BadInput("station_id differs from the topic")
    level = document.get("level")
    if isinstance(level, bool) or not isinstance(level, int | float):
        raise BadInput(f"level: {level!r} is not a number")
    qc = _flags(document.get("qc", []))
    if clean and qc & ~_TRUSTED:
        raise BadInput("a flagged reading on the clean readings topic")
    if not clean and not qc & ~_TRUSTED:
        raise BadInput("a clean reading on the flagged readings topic")
    return ReadingInput(station_id, float(level), _time(document.get("ts"), "ts"), qc)


def _flags(names: object) -> QCFlag:
    if not isinstance(names, list):
        raise BadInput(f"qc: {names!r} is not a list")
    flags = QCFlag.NONE
    for name in names:
        flag = _FLAGS.get(str(name))
        if flag is None:
            raise BadInput(f"qc: unknown flag {name!r}")
        flags |= flag
    return flags


def _forecast(station_id: str, document: dict[str, Any]) -> ForecastInput:
    if document.get("station_id", station_id) != station_id:
        raise BadInput("station_id differs from the topic")
    try:
        view = from_summary(document)
    except (KeyError, TypeError, ValueError) as exc:
        raise BadInput(f"not a forecast summary: {exc!r}") from None
    return ForecastInput(station_id, _time(document.get("issued_at"), "issued_at"), view)
