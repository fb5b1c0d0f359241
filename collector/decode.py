"""Decode one gauge message (topic + payload) into a Reading, or a Rejection with a reason.

Pure and cheap: this runs in the MQTT thread for every message (thousands per second), so
the happy path is one topic split, one `orjson.loads`, a few exact-type checks and one
`datetime.fromisoformat`. Everything unusual (NaN literals, bad UTF-8, huge numbers) is
diagnosed on a slower fallback path that only rejected payloads take.

Contract (DESIGN.md, "Gauge topics"): topic `floodwatch/gauges/{station_id}/level`; payload
a JSON object `{"ts", "level", "seq", "battery_v", "rssi_dbm"}` or a bare JSON number.
A JSON `null` in an optional field (`ts`, `seq`, `battery_v`, `rssi_dbm`) means "absent";
unknown keys are ignored so gauges can add fields before the collector knows them.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING

import orjson

from collector.json_nesting import is_well_formed
from floodwatch.models import QCFlag, Reading
from floodwatch.topics import INVALID_STATION, station_from_gauge_topic

if TYPE_CHECKING:
    from floodwatch.catalog import Station
    from floodwatch.settings import Settings

__all__ = ["DecodeLimits", "RejectReason", "Rejection", "decode"]


class RejectReason(StrEnum):
    """Why a gauge message was not accepted; the value is the metric label and log key."""

    BAD_TOPIC = "bad_topic"
    UNKNOWN_STATION = "unknown_station"
    TOO_LARGE = "too_large"
    NOT_UTF8 = "not_utf8"
    MALFORMED_JSON = "malformed_json"
    BAD_SCHEMA = "bad_schema"
    NOT_FINITE = "not_finite"
    BAD_TIMESTAMP = "bad_timestamp"
    IN_FUTURE = "in_future"
    TOO_OLD = "too_old"
    OUT_OF_RANGE = "out_of_range"
    # Never returned by decode(): the collector's guard counts a message whose handling
    # raised unexpectedly (a bug) under this reason, and acknowledges it.
    INTERNAL_ERROR = "internal_error"

    @property
    def description(self) -> str:
        return REASON_DESCRIPTIONS[self]


REASON_DESCRIPTIONS: Mapping[RejectReason, str] = {
    RejectReason.BAD_TOPIC: "topic is not floodwatch/gauges/{id}/level with an id of "
    "[a-z0-9-]{1,64}",
    RejectReason.UNKNOWN_STATION: "station id is not in the station catalog",
    RejectReason.TOO_LARGE: "payload is larger than FLOODWATCH_MAX_PAYLOAD_BYTES",
    RejectReason.NOT_UTF8: "payload is not valid UTF-8",
    RejectReason.MALFORMED_JSON: "payload is not valid JSON",
    RejectReason.BAD_SCHEMA: "payload is neither a number nor an object with a numeric level, "
    "or an optional field has the wrong type",
    RejectReason.NOT_FINITE: "a number is NaN or infinite (or too large for a double)",
    RejectReason.BAD_TIMESTAMP: "ts is not RFC 3339 with a UTC offset nor epoch seconds, "
    "or lies outside the years 1-9999 in UTC",
    RejectReason.IN_FUTURE: "ts is later than receipt time plus FLOODWATCH_MAX_FUTURE_S",
    RejectReason.TOO_OLD: "ts is earlier than receipt time minus FLOODWATCH_MAX_AGE_S",
    RejectReason.OUT_OF_RANGE: "level is outside the station's plausible range",
    RejectReason.INTERNAL_ERROR: "handling the message raised an unexpected error (a bug; "
    "the detail names the exception type); it was acknowledged and dropped",
}


@dataclass(frozen=True, slots=True)
class Rejection:
    """A message that was not accepted. `detail` is short and safe to log and publish."""

    station_id: str | None
    reason: RejectReason
    detail: str

    @property
    def topic_station(self) -> str:
        """The id to publish under `floodwatch/rejected/{id}`; bad topics share one bucket."""
        return self.station_id if self.station_id is not None else INVALID_STATION


@dataclass(frozen=True)
class DecodeLimits:
    max_payload_bytes: int
    max_future: timedelta
    max_age: timedelta

    @classmethod
    def from_settings(cls, settings: Settings) -> DecodeLimits:
        return cls(
            max_payload_bytes=settings.max_payload_bytes,
            max_future=settings.max_future,
            max_age=settings.max_age,
        )


def decode(
    topic: str,
    payload: bytes,
    received_at: datetime,
    catalog: Mapping[str, Station],
    limits: DecodeLimits,
) -> Reading | Rejection:
    """Turn one MQTT message into a Reading (ts in UTC) or a Rejection; never raises for
    bad input. `received_at` must be timezone-aware (a naive one is a programming error)."""
    if received_at.tzinfo is None:
        raise ValueError("received_at must be timezone-aware")
    station_id = station_from_gauge_topic(topic)
    if station_id is None:
        return Rejection(None, RejectReason.BAD_TOPIC, f"topic {_excerpt(topic)}")
    try:
        return _decode_for_station(station_id, payload, received_at, catalog, limits)
    except _Reject as reject:
        return Rejection(station_id, reject.reason, reject.detail)


class _Reject(Exception):
    """Raised by the small helpers below; deliberately not a ValueError so that the
    `except ValueError` around parsing can never swallow it."""

    def __init__(self, reason: RejectReason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1
_EXCERPT_CHARS = 80
_NON_FINITE_WORDS = frozenset({"nan", "inf", "infinity"})


def _decode_for_station(
    station_id: str,
    payload: bytes,
    received_at: datetime,
    catalog: Mapping[str, Station],
    limits: DecodeLimits,
) -> Reading:
    station = catalog.get(station_id)
    if station is None:
        raise _Reject(RejectReason.UNKNOWN_STATION, f"no station {station_id!r} in the catalog")
    # The size check comes before any look at the payload's content, so an oversized
    # message costs nothing but a len().
    if len(payload) > limits.max_payload_bytes:
        raise _Reject(
            RejectReason.TOO_LARGE,
            f"{len(payload)} bytes, limit {limits.max_payload_bytes}",
        )
    doc = _parse(payload)
    seq: int | None = None
    battery_v: float | None = None
    rssi_dbm: float | None = None
    # Exact type checks throughout: faster than isinstance, and they keep bool (an int
    # subclass) out of numeric fields.
    if type(doc) is dict:
        level = _level(doc.get("level"))
        ts = _timestamp(doc.get("ts"), received_at)
        seq = _optional_int(doc.get("seq"), "seq")
        battery_v = _optional_number(doc.get("battery_v"), "battery_v")
        rssi_dbm = _optional_number(doc.get("rssi_dbm"), "rssi_dbm")
    elif type(doc) is float or type(doc) is int:
        level = _number(doc, "level")
        ts = _utc(received_at)
    else:
        raise _Reject(
            RejectReason.BAD_SCHEMA,
            f"payload is a JSON {_json_type(doc)}; expected an object with 'level' or a number",
        )
    _check_time_window(ts, received_at, limits)
    low, high = station.range
    if not low <= level <= high:
        raise _Reject(
            RejectReason.OUT_OF_RANGE,
            f"level {level:g} {station.unit} outside [{low:g}, {high:g}]",
        )
    return Reading(
        station_id=station_id,
        ts=ts,
        level=level,
        seq=seq,
        battery_v=battery_v,
        rssi_dbm=rssi_dbm,
        qc=QCFlag.MAINTENANCE if station.maintenance else QCFlag.NONE,
        received_at=received_at,
    )


# --- parsing ------------------------------------------------------------------------


def _parse(payload: bytes) -> object:
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError:
        return _parse_slowly(payload)


def _parse_slowly(payload: bytes) -> object:
    """Diagnose what orjson refused. orjson rejects NaN/Infinity literals and numbers that
    overflow a double, which the contract calls `not_finite`, not `malformed_json`;
    Python's json accepts both, so it tells the two apart (and its result is usable)."""
    try:
        text = bytes(payload).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _Reject(
            RejectReason.NOT_UTF8, f"invalid UTF-8 at byte {exc.start}: {_excerpt(payload)}"
        ) from None
    if text.strip().lstrip("+-").lower() in _NON_FINITE_WORDS:
        raise _Reject(RejectReason.NOT_FINITE, f"payload {_excerpt(text)}")
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        # Too deep for a recursive parser. A reading is a flat object, so a well-formed
        # document this deep is the wrong shape; only a broken one is malformed.
        if is_well_formed(text):
            raise _Reject(
                RejectReason.BAD_SCHEMA, "JSON nested too deeply to be a reading"
            ) from None
        raise _Reject(RejectReason.MALFORMED_JSON, "JSON nested too deeply") from None
    except json.JSONDecodeError as exc:
        raise _Reject(
            RejectReason.MALFORMED_JSON, f"{exc.msg} at char {exc.pos}: {_excerpt(text)}"
        ) from None
    except ValueError as exc:  # e.g. an integer literal beyond Python's digit limit
        raise _Reject(RejectReason.MALFORMED_JSON, _excerpt(str(exc))) from None


def _reject_constant(name: str) -> object:
    raise _Reject(RejectReason.NOT_FINITE, f"JSON contains {name}")


# --- fields -------------------------------------------------------------------------


def _level(value: object) -> float:
    if value is None:
        raise _Reject(RejectReason.BAD_SCHEMA, "object has no numeric 'level'")
    return _number(value, "level")


def _number(value: object, name: str) -> float:
    if type(value) is float:
        number = value
    elif type(value) is int:
        try:
            number = float(value)
        except OverflowError:
            raise _Reject(RejectReason.NOT_FINITE, f"{name} overflows a double") from None
    else:
        raise _Reject(RejectReason.BAD_SCHEMA, f"{name} must be a number, got {_json_type(value)}")
    if not math.isfinite(number):
        raise _Reject(RejectReason.NOT_FINITE, f"{name} is {number}")
    return number


def _optional_number(value: object, name: str) -> float | None:
    return None if value is None else _number(value, name)


def _optional_int(value: object, name: str) -> int | None:
    if value is None:
        return None
    if type(value) is not int:
        raise _Reject(
            RejectReason.BAD_SCHEMA, f"{name} must be an integer, got {_json_type(value)}"
        )
    # Storage keeps seq as a signed 64-bit integer.
    if not _INT64_MIN <= value <= _INT64_MAX:
        raise _Reject(RejectReason.BAD_SCHEMA, f"{name} does not fit in 64 bits")
    return value


# --- time ---------------------------------------------------------------------------


def _timestamp(value: object, received_at: datetime) -> datetime:
    if value is None:
        return _utc(received_at)
    if type(value) is str:
        return _parse_rfc3339(value)
    if type(value) is float or type(value) is int:
        return _from_epoch(_number(value, "ts"))
    raise _Reject(
        RejectReason.BAD_TIMESTAMP,
        f"ts must be an RFC 3339 string or epoch seconds, got {_json_type(value)}",
    )


def _parse_rfc3339(text: str) -> datetime:
    parsed = _fromisoformat(text)
    if parsed is None:
        raise _Reject(RejectReason.BAD_TIMESTAMP, f"ts {_excerpt(text)} is not RFC 3339")
    if parsed.tzinfo is None:
        raise _Reject(
            RejectReason.BAD_TIMESTAMP,
            f"ts {_excerpt(text)} has no UTC offset (add Z or +hh:mm)",
        )
    return _utc(parsed)


# RFC 3339 allows a leap second (second 60), which datetime cannot hold.
_LEAP_SECOND = re.compile(r"(\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d:)60(?:\.\d+)?(.*)")
_LAST_MICROSECOND = 999_999


def _fromisoformat(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        pass
    # RFC 3339 allows a lower-case 't' and 'z', which fromisoformat refuses.
    try:
        return datetime.fromisoformat(text.upper())
    except ValueError:
        pass
    leap = _LEAP_SECOND.fullmatch(text)
    if leap is None:
        return None
    # 23:59:60 is stored as 23:59:59.999999: the reading keeps its order, a microsecond
    # early (the store keys readings by time, so it cannot be 00:00:00 of the next day).
    moment = _fromisoformat(f"{leap.group(1)}59{leap.group(2)}")
    return None if moment is None else moment.replace(microsecond=_LAST_MICROSECOND)


def _from_epoch(seconds: float) -> datetime:
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, ValueError, OSError):
        raise _Reject(
            RejectReason.BAD_TIMESTAMP,
            f"ts {seconds:g} is out of range for epoch seconds (milliseconds sent?)",
        ) from None


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is UTC:
        return moment
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        # 9999-12-31T23:00:00-01:00 or 0001-01-01T00:00:00+03:00 (an unset gauge clock):
        # valid RFC 3339, but outside the years 1-9999 once in UTC.
        raise _Reject(
            RejectReason.BAD_TIMESTAMP,
            f"ts {moment.isoformat()} cannot be represented in UTC (years 1-9999)",
        ) from None


def _check_time_window(ts: datetime, received_at: datetime, limits: DecodeLimits) -> None:
    if ts > received_at + limits.max_future:
        ahead = (ts - received_at).total_seconds()
        raise _Reject(
            RejectReason.IN_FUTURE,
            f"ts {ts.isoformat()} is {ahead:.0f} s after receipt "
            f"(limit {limits.max_future.total_seconds():.0f} s)",
        )
    if ts < received_at - limits.max_age:
        behind = (received_at - ts).total_seconds()
        raise _Reject(
            RejectReason.TOO_OLD,
            f"ts {ts.isoformat()} is {behind / 3600:.1f} h before receipt "
            f"(limit {limits.max_age.total_seconds() / 3600:.1f} h)",
        )


# --- logging helpers ----------------------------------------------------------------


def _excerpt(value: bytes | str) -> str:
    """A repr of the start of a payload or topic, at most ~80 characters, so a hostile or
    huge message can never flood the logs or smuggle control characters into them."""
    shown = repr(value[:_EXCERPT_CHARS])
    if len(shown) > _EXCERPT_CHARS or len(value) > _EXCERPT_CHARS:
        shown = shown[: _EXCERPT_CHARS - 3] + "..."
    return shown


_JSON_TYPE_NAMES: Mapping[type, str] = {
    bool: "boolean",
    int: "number",
    float: "number",
    str: "string",
    list: "array",
    dict: "object",
    type(None): "null",
}


def _json_type(value: object) -> str:
    return _JSON_TYPE_NAMES.get(type(value), type(value).__name__)
