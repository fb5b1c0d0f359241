"""Pure InfluxDB v1 wire formats: readings and forecasts to line protocol, /query JSON back.

Nothing here does I/O, so the InfluxDB shell stays thin and these functions are tested
with tables. Encoding sits on the hot path of every stored reading and costs a few
microseconds: plain f-strings, and tag escaping cached per station.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any, TypeVar

import orjson

from floodwatch.models import ForecastPoint, QCFlag, Reading, from_epoch_ms

MEASUREMENT = "water_level"
STATION_TAG = "station"
FIELDS = ("level", "qc", "seq", "battery_v", "rssi_dbm")

FORECAST_MEASUREMENT = "forecast"
FORECAST_STATION_TAG = "station_id"
HORIZON_TAG = "horizon_h"
FORECAST_FIELDS = ("level", "lower", "upper", "issued", "method")

T = TypeVar("T")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


class InfluxResponseError(ValueError):
    """A /query response carried an error instead of results, or was not JSON."""


# --- encoding ---------------------------------------------------------------------------


@lru_cache(maxsize=4096)
def escape_tag(value: str) -> str:
    """Escape a tag value; the cache makes this a dict lookup for known stations."""
    if not value:
        raise ValueError("a tag value must not be empty")
    if "\n" in value or "\r" in value:
        # Line protocol has no escape for line breaks: letting one through would split
        # the line and smuggle arbitrary points into the write.
        raise ValueError(f"a tag value must not contain a line break: {value!r}")
    if value.endswith("\\"):
        # A final backslash would escape the space that ends the tag set.
        raise ValueError(f"a tag value must not end with a backslash: {value!r}")
    if "," in value or " " in value or "=" in value:
        return value.replace(",", r"\,").replace(" ", r"\ ").replace("=", r"\=")
    return value


def _float(value: float, name: str) -> str:
    # InfluxDB refuses NaN and infinities for the whole request, so refuse them here
    # where the error can still name the reading.
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return repr(float(value))


def encode_reading(reading: Reading) -> str:
    """One line of line protocol (no trailing newline), timestamp in milliseconds."""
    fields = f"level={_float(reading.level, 'level')},qc={int(reading.qc)}i"
    if reading.seq is not None:
        fields += f",seq={int(reading.seq)}i"
    if reading.battery_v is not None:
        fields += f",battery_v={_float(reading.battery_v, 'battery_v')}"
    if reading.rssi_dbm is not None:
        fields += f",rssi_dbm={_float(reading.rssi_dbm, 'rssi_dbm')}"
    return f"{MEASUREMENT},{STATION_TAG}={escape_tag(reading.station_id)} {fields} {reading.ts_ms}"


def encode_readings(readings: Iterable[Reading]) -> bytes:
    """A line protocol request body; raises ValueError naming the first bad reading."""
    lines = []
    for reading in readings:
        try:
            lines.append(encode_reading(reading))
        except ValueError as exc:
            raise ValueError(
                f"reading {reading.station_id!r} at {reading.ts.isoformat()}: {exc}"
            ) from None
    lines.append("")  # a trailing newline ends the last point
    return "\n".join(lines).encode()


def chunked(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# --- forecasts --------------------------------------------------------------------------


def horizon_seconds(horizon_s: int) -> int:
    """`horizon_s` as an int; ValueError unless it is a whole number of seconds."""
    # operator.index takes ints and numpy integers but not floats, so both stores refuse
    # a fractional horizon alike (the tag could not carry it exactly).
    try:
        return operator.index(horizon_s)
    except TypeError:
        raise ValueError(
            f"horizon_s must be a whole number of seconds, got {horizon_s!r}"
        ) from None


def format_horizon_h(horizon_s: int) -> str:
    """The `horizon_h` tag: hours as the shortest decimal that reads back to `horizon_s`.

    Whole hours are plain integers ("6", "240"), so Grafana legends and hand-written
    queries say what a person would type; other horizons use the shortest float repr
    ("0.25", and "0.16666666666666666" for 10 minutes), which `parse_horizon_h` reads back
    to the exact second.
    """
    seconds = horizon_seconds(horizon_s)
    if seconds % 3600 == 0:
        return str(seconds // 3600)
    return repr(seconds / 3600)


def parse_horizon_h(text: str) -> int:
    """Seconds from a `horizon_h` tag value; raises ValueError if it is not a number."""
    try:
        hours = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"horizon_h is not a number: {text!r}") from None
    if not hours.is_finite():
        raise ValueError(f"horizon_h is not a finite number: {text!r}")
    # Decimal keeps the tag's digits exact, so rounding undoes only the float repr.
    return round(hours * 3600)


def _string_field(value: str, name: str) -> str:
    # Refused rather than escaped: line protocol does not support line breaks in field
    # values, and no forecast method needs one.
    if "\n" in value or "\r" in value:
        raise ValueError(f"{name} must not contain a line break: {value!r}")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def check_forecast(point: ForecastPoint) -> None:
    """Raise ValueError naming the point if a store must refuse it.

    The SQLite store calls this too, so it refuses exactly what InfluxDB would.
    """
    try:
        horizon_seconds(point.horizon_s)
        for name in ("level", "lower", "upper"):
            _float(getattr(point, name), name)
        _string_field(point.method, "method")
    except ValueError as exc:
        raise ValueError(f"{_describe(point)}: {exc}") from None


def _describe(point: ForecastPoint) -> str:
    return (
        f"forecast {point.station_id!r} horizon {point.horizon_s!r} s"
        f" valid at {point.valid_at.isoformat()}"
    )


def encode_forecast(point: ForecastPoint) -> str:
    """One line of line protocol (no trailing newline), timestamp = valid_at in ms."""
    tags = (
        f"{FORECAST_STATION_TAG}={escape_tag(point.station_id)},"
        f"{HORIZON_TAG}={escape_tag(format_horizon_h(point.horizon_s))}"
    )
    fields = (
        f"level={_float(point.level, 'level')},lower={_float(point.lower, 'lower')},"
        f"upper={_float(point.upper, 'upper')},issued={point.issued_ms}i,"
        f"method={_string_field(point.method, 'method')}"
    )
    return f"{FORECAST_MEASUREMENT},{tags} {fields} {point.valid_ms}"


def encode_forecasts(points: Iterable[ForecastPoint]) -> bytes:
    """A line protocol request body; raises ValueError naming the first bad point."""
    lines = []
    for point in points:
        try:
            lines.append(encode_forecast(point))
        except ValueError as exc:
            raise ValueError(f"{_describe(point)}: {exc}") from None
    lines.append("")  # a trailing newline ends the last point
    return "\n".join(lines).encode()


# --- InfluxQL ---------------------------------------------------------------------------


def quote_string(value: str) -> str:
    """An InfluxQL string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def quote_identifier(name: str) -> str:
    """An InfluxQL double-quoted identifier (database, measurement, tag names)."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def epoch_ms_ceil(moment: datetime) -> int:
    """The first whole millisecond at or after `moment`.

    Stored timestamps are whole milliseconds, so `start <= ts` and `ts < end` hold for a
    stored ts exactly when ts >= epoch_ms_ceil(start) and ts < epoch_ms_ceil(end).
    Integer arithmetic keeps microseconds exact where float seconds would not be.
    """
    if moment.tzinfo is None:
        raise ValueError("query bounds must be timezone-aware datetimes")
    return -((_EPOCH - moment) // _MS)


def station_filter(station_id: str) -> str:
    return f"{quote_identifier(STATION_TAG)} = {quote_string(station_id)}"


def _select() -> str:
    columns = ", ".join(quote_identifier(name) for name in FIELDS)
    return f"SELECT {columns} FROM {quote_identifier(MEASUREMENT)}"


def range_query(station_id: str, start: datetime, end: datetime) -> str:
    start_ms, end_ms = epoch_ms_ceil(start), epoch_ms_ceil(end)
    return (
        f"{_select()} WHERE {station_filter(station_id)}"
        f" AND time >= {start_ms}ms AND time < {end_ms}ms ORDER BY time ASC"
    )


def latest_query(station_id: str, limit: int) -> str:
    return f"{_select()} WHERE {station_filter(station_id)} ORDER BY time DESC LIMIT {int(limit)}"


def count_query(station_id: str) -> str:
    return (
        f"SELECT COUNT({quote_identifier('level')}) FROM {quote_identifier(MEASUREMENT)}"
        f" WHERE {station_filter(station_id)}"
    )


def forecast_station_filter(station_id: str) -> str:
    return f"{quote_identifier(FORECAST_STATION_TAG)} = {quote_string(station_id)}"


def _forecast_select() -> str:
    # A tag among the selected columns comes back as a column of its own, so each row
    # carries its horizon without GROUP BY.
    columns = ", ".join(quote_identifier(name) for name in (HORIZON_TAG, *FORECAST_FIELDS))
    return f"SELECT {columns} FROM {quote_identifier(FORECAST_MEASUREMENT)}"


def forecast_range_query(
    station_id: str, start: datetime, end: datetime, horizon_s: int | None = None
) -> str:
    start_ms, end_ms = epoch_ms_ceil(start), epoch_ms_ceil(end)
    where = forecast_station_filter(station_id)
    if horizon_s is not None:
        horizon = quote_string(format_horizon_h(horizon_s))
        where += f" AND {quote_identifier(HORIZON_TAG)} = {horizon}"
    return (
        f"{_forecast_select()} WHERE {where}"
        f" AND time >= {start_ms}ms AND time < {end_ms}ms ORDER BY time ASC"
    )


def latest_issue_query(station_id: str) -> str:
    return (
        f"SELECT MAX({quote_identifier('issued')}) FROM {quote_identifier(FORECAST_MEASUREMENT)}"
        f" WHERE {forecast_station_filter(station_id)}"
    )


def forecast_run_query(station_id: str, issued_ms: int) -> str:
    return (
        f"{_forecast_select()} WHERE {forecast_station_filter(station_id)}"
        f" AND {quote_identifier('issued')} = {int(issued_ms)}"
    )


# --- parsing ----------------------------------------------------------------------------


def decode_body(body: bytes) -> list[Mapping[str, Any]]:
    """The JSON documents of a /query body: one, or one per line when chunked=true."""
    try:
        return [orjson.loads(line) for line in body.splitlines() if line.strip()]
    except orjson.JSONDecodeError as exc:
        raise InfluxResponseError(f"InfluxDB sent a non-JSON /query response: {exc}") from None


def _series(documents: Iterable[Mapping[str, Any]]) -> Iterator[Mapping[str, Any]]:
    for document in documents:
        if "error" in document:
            raise InfluxResponseError(str(document["error"]))
        for result in document.get("results", ()):
            if "error" in result:
                raise InfluxResponseError(str(result["error"]))
            yield from result.get("series", ())


def check_response(documents: Iterable[Mapping[str, Any]]) -> None:
    """Raise InfluxResponseError if a response (e.g. to CREATE DATABASE) holds an error."""
    for _ in _series(documents):
        pass


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _series_readings(series: Mapping[str, Any], default_station: str | None) -> list[Reading]:
    columns: list[str] = series["columns"]
    index = {name: position for position, name in enumerate(columns)}
    station = series.get("tags", {}).get(STATION_TAG, default_station)
    station_at = index.get(STATION_TAG)
    time_at, level_at = index["time"], index.get("level")
    qc_at, seq_at = index.get("qc"), index.get("seq")
    battery_at, rssi_at = index.get("battery_v"), index.get("rssi_dbm")
    readings = []
    for row in series.get("values", ()):
        station_id = row[station_at] if station_at is not None else station
        level = row[level_at] if level_at is not None else None
        if station_id is None or level is None:
            # Points of this measurement without a level (or station) are not readings.
            continue
        qc = row[qc_at] if qc_at is not None else None
        seq = row[seq_at] if seq_at is not None else None
        readings.append(
            Reading(
                station_id=station_id,
                ts=from_epoch_ms(row[time_at]),
                level=float(level),
                seq=None if seq is None else int(seq),
                battery_v=_optional_float(row[battery_at]) if battery_at is not None else None,
                rssi_dbm=_optional_float(row[rssi_at]) if rssi_at is not None else None,
                qc=QCFlag(int(qc)) if qc is not None else QCFlag.NONE,
            )
        )
    return readings


def parse_readings(
    documents: Mapping[str, Any] | Iterable[Mapping[str, Any]],
    station_id: str | None = None,
) -> list[Reading]:
    """Readings from a /query response fetched with epoch=ms.

    The station comes from a `station` column, else the series tags, else `station_id`
    (the filter the query used). Raises InfluxResponseError if the response holds one.
    """
    if isinstance(documents, Mapping):
        documents = [documents]
    readings: list[Reading] = []
    for series in _series(documents):
        readings.extend(_series_readings(series, station_id))
    return readings


def parse_count(documents: Mapping[str, Any] | Iterable[Mapping[str, Any]]) -> int:
    """The total of a COUNT() response; no series means no points."""
    if isinstance(documents, Mapping):
        documents = [documents]
    total = 0
    for series in _series(documents):
        at = series["columns"].index("count")
        total += sum(int(row[at]) for row in series.get("values", ()) if row[at] is not None)
    return total


def parse_max(documents: Mapping[str, Any] | Iterable[Mapping[str, Any]]) -> int | None:
    """The value of a MAX() response over an integer field; None when there are no points."""
    if isinstance(documents, Mapping):
        documents = [documents]
    found: int | None = None
    for series in _series(documents):
        at = series["columns"].index("max")
        for row in series.get("values", ()):
            if row[at] is not None and (found is None or int(row[at]) > found):
                found = int(row[at])
    return found


def _series_forecasts(series: Mapping[str, Any], default_station: str) -> list[ForecastPoint]:
    index = {name: position for position, name in enumerate(series["columns"])}
    tags = series.get("tags", {})
    station_at, horizon_at = index.get(FORECAST_STATION_TAG), index.get(HORIZON_TAG)
    wanted = [index.get(name) for name in FORECAST_FIELDS]
    points = []
    for row in series.get("values", ()):
        station = row[station_at] if station_at is not None else tags.get(FORECAST_STATION_TAG)
        horizon = row[horizon_at] if horizon_at is not None else tags.get(HORIZON_TAG)
        values: list[Any] = [row[at] if at is not None else None for at in wanted]
        if horizon is None or None in values:
            # A point missing a field was not written by write_forecasts: not a forecast.
            continue
        level, lower, upper, issued, method = values
        try:
            horizon_s = parse_horizon_h(str(horizon))
        except ValueError as exc:
            raise InfluxResponseError(str(exc)) from None
        points.append(
            ForecastPoint(
                station_id=station or default_station,
                issued_at=from_epoch_ms(int(issued)),
                valid_at=from_epoch_ms(row[index["time"]]),
                horizon_s=horizon_s,
                level=float(level),
                lower=float(lower),
                upper=float(upper),
                method=str(method),
            )
        )
    return points


def parse_forecasts(
    documents: Mapping[str, Any] | Iterable[Mapping[str, Any]], station_id: str
) -> list[ForecastPoint]:
    """Forecast points from a /query response fetched with epoch=ms, in response order.

    The station comes from a `station_id` column or tag, else `station_id` (the filter the
    query used). Raises InfluxResponseError if the response holds an error.
    """
    if isinstance(documents, Mapping):
        documents = [documents]
    points: list[ForecastPoint] = []
    for series in _series(documents):
        points.extend(_series_forecasts(series, station_id))
    return points


# --- batch reads (one request for many stations) ---------------------------------------

# Stations per InfluxQL statement; one request carries as many statements as needed.
# influxd 1.6 spends time quadratic in the terms of a WHERE: for 2,000 stations, one
# statement took ~0.9 s to read the newest readings, statements of 100 stations ~0.15 s.
BATCH_STATIONS = 100


def _any_of(tag: str, station_ids: Iterable[str]) -> str:
    return " OR ".join(f"{quote_identifier(tag)} = {quote_string(sid)}" for sid in station_ids)


def _statements(station_ids: Sequence[str], statement: Callable[[Sequence[str]], str]) -> str:
    if not station_ids:
        raise ValueError("a batch query needs at least one station")
    return "; ".join(statement(chunk) for chunk in chunked(station_ids, BATCH_STATIONS))


def latest_each_query(station_ids: Sequence[str]) -> str:
    """The newest reading of each station: LIMIT applies per series, one series a station."""
    group = f"GROUP BY {quote_identifier(STATION_TAG)} ORDER BY time DESC LIMIT 1"
    return _statements(
        station_ids,
        lambda chunk: f"{_select()} WHERE ({_any_of(STATION_TAG, chunk)}) {group}",
    )


def latest_issue_each_query(station_ids: Sequence[str]) -> str:
    """Each station's newest issue time, one series a station."""
    select = (
        f"SELECT MAX({quote_identifier('issued')}) FROM {quote_identifier(FORECAST_MEASUREMENT)}"
    )
    group = f"GROUP BY {quote_identifier(FORECAST_STATION_TAG)}"
    return _statements(
        station_ids,
        lambda chunk: f"{select} WHERE ({_any_of(FORECAST_STATION_TAG, chunk)}) {group}",
    )


def forecast_runs_query(issued_by_station: Mapping[str, int]) -> str:
    """The points of each station's run issued at `issued_by_station[station]`.

    One statement per issue time (and per BATCH_STATIONS stations of it): stations of one
    forecaster pass share one, and a WHERE mixing several issue times with their stations
    cost influxd 1.6 seconds for 2,000 stations where these statements take a fraction.
    """
    by_issue: dict[int, list[str]] = {}
    for station_id in sorted(issued_by_station):
        by_issue.setdefault(int(issued_by_station[station_id]), []).append(station_id)
    if not by_issue:
        raise ValueError("a batch query needs at least one station")
    group = f"GROUP BY {quote_identifier(FORECAST_STATION_TAG)}"
    return "; ".join(
        f"{_forecast_select()} WHERE {quote_identifier('issued')} = {issued}"
        f" AND ({_any_of(FORECAST_STATION_TAG, chunk)}) {group}"
        for issued, stations in sorted(by_issue.items())
        for chunk in chunked(stations, BATCH_STATIONS)
    )


def parse_latest_each(
    documents: Mapping[str, Any] | Iterable[Mapping[str, Any]],
) -> dict[str, Reading]:
    """The newest reading per station from a `latest_each_query` response."""
    newest: dict[str, Reading] = {}
    for reading in parse_readings(documents):
        known = newest.get(reading.station_id)
        if known is None or reading.ts > known.ts:
            newest[reading.station_id] = reading
    return newest


def parse_max_each(documents: Mapping[str, Any] | Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """{station: MAX()} from a response grouped by the forecast station tag."""
    if isinstance(documents, Mapping):
        documents = [documents]
    found: dict[str, int] = {}
    for series in _series(documents):
        station_id = series.get("tags", {}).get(FORECAST_STATION_TAG)
        at = series["columns"].index("max")
        for row in series.get("values", ()):
            if station_id and row[at] is not None:
                found[station_id] = max(int(row[at]), found.get(station_id, int(row[at])))
    return found


def parse_forecast_runs(
    documents: Mapping[str, Any] | Iterable[Mapping[str, Any]],
    issued_by_station: Mapping[str, int],
) -> dict[str, list[ForecastPoint]]:
    """{station: its run's points by horizon, valid time} from a `forecast_runs_query`
    response; a point of another issue time or station than asked for is dropped."""
    if isinstance(documents, Mapping):
        documents = [documents]
    runs: dict[str, list[ForecastPoint]] = {}
    for series in _series(documents):
        for point in _series_forecasts(series, ""):
            if issued_by_station.get(point.station_id) == point.issued_ms:
                runs.setdefault(point.station_id, []).append(point)
    for points in runs.values():
        points.sort(key=lambda point: (point.horizon_s, point.valid_at))
    return runs
