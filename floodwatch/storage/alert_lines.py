"""Pure InfluxDB v1 wire formats for alert events (measurement `alert`).

Kept apart from line_protocol.py (readings and forecasts), whose escaping and parsing
helpers it reuses. Both stores call `check_alert`, so SQLite refuses exactly what InfluxDB
would.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from floodwatch.models import AlertRecord, from_epoch_ms
from floodwatch.storage.line_protocol import (
    InfluxResponseError,
    _float,
    _series,
    _string_field,
    epoch_ms_ceil,
    escape_tag,
    quote_identifier,
    quote_string,
)

ALERT_MEASUREMENT = "alert"
ALERT_TAGS = ("station_id", "kind", "severity")
ALERT_FIELDS = ("event_id", "title", "text", "level", "threshold", "threshold_key")
# A tag cannot be empty, and Grafana filters read better with a word than a missing tag.
NO_SEVERITY = "none"


def _describe(record: AlertRecord) -> str:
    return f"alert event {record.event_id!r}"


def _fields(record: AlertRecord) -> str:
    fields = (
        f"event_id={_string_field(record.event_id, 'event_id')},"
        f"title={_string_field(record.title, 'title')},"
        f"text={_string_field(record.text, 'text')}"
    )
    if record.level is not None:
        fields += f",level={_float(record.level, 'level')}"
    if record.threshold is not None:
        fields += f",threshold={_float(record.threshold, 'threshold')}"
    if record.threshold_key is not None:
        fields += f",threshold_key={_string_field(record.threshold_key, 'threshold_key')}"
    return fields


def encode_alert(record: AlertRecord) -> str:
    """One line of line protocol (no trailing newline), timestamp = event time in ms."""
    tags = (
        f"station_id={escape_tag(record.station_id)},kind={escape_tag(record.kind)},"
        f"severity={escape_tag(record.severity or NO_SEVERITY)}"
    )
    return f"{ALERT_MEASUREMENT},{tags} {_fields(record)} {record.at_ms}"


def check_alert(record: AlertRecord) -> None:
    """Raise ValueError naming the event if a store must refuse it."""
    try:
        encode_alert(record)
    except ValueError as exc:
        raise ValueError(f"{_describe(record)}: {exc}") from None


def encode_alerts(records: Iterable[AlertRecord]) -> bytes:
    """A line protocol request body; raises ValueError naming the first bad event."""
    lines = []
    for record in records:
        try:
            lines.append(encode_alert(record))
        except ValueError as exc:
            raise ValueError(f"{_describe(record)}: {exc}") from None
    lines.append("")  # a trailing newline ends the last point
    return "\n".join(lines).encode()


def alert_range_query(station_id: str | None, start: datetime, end: datetime) -> str:
    start_ms, end_ms = epoch_ms_ceil(start), epoch_ms_ceil(end)
    # Tags among the selected columns come back as columns of their own.
    columns = ", ".join(quote_identifier(name) for name in (*ALERT_TAGS, *ALERT_FIELDS))
    where = f"time >= {start_ms}ms AND time < {end_ms}ms"
    if station_id is not None:
        where = f"{quote_identifier('station_id')} = {quote_string(station_id)} AND {where}"
    return (
        f"SELECT {columns} FROM {quote_identifier(ALERT_MEASUREMENT)}"
        f" WHERE {where} ORDER BY time ASC"
    )


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _series_alerts(series: Mapping[str, Any]) -> list[AlertRecord]:
    index = {name: position for position, name in enumerate(series["columns"])}
    tags = series.get("tags", {})

    def value(row: list[Any], name: str) -> Any:
        at = index.get(name)
        return row[at] if at is not None else tags.get(name)

    records = []
    for row in series.get("values", ()):
        event_id, station_id, kind = (value(row, n) for n in ("event_id", "station_id", "kind"))
        if event_id is None or station_id is None or kind is None:
            continue  # not written by write_alert_events
        severity = value(row, "severity")
        records.append(
            AlertRecord(
                event_id=str(event_id),
                station_id=str(station_id),
                at=from_epoch_ms(row[index["time"]]),
                kind=str(kind),
                severity=None if severity in (None, NO_SEVERITY) else str(severity),
                title=str(value(row, "title") or ""),
                text=str(value(row, "text") or ""),
                level=_optional_float(value(row, "level")),
                threshold=_optional_float(value(row, "threshold")),
                threshold_key=value(row, "threshold_key"),
            )
        )
    return records


def parse_alerts(documents: Mapping[str, Any] | Iterable[Mapping[str, Any]]) -> list[AlertRecord]:
    """Alert events from a /query response fetched with epoch=ms, by time then event id.

    Raises InfluxResponseError if the response holds an error.
    """
    if isinstance(documents, Mapping):
        documents = [documents]
    records: list[AlertRecord] = []
    for series in _series(documents):
        records.extend(_series_alerts(series))
    records.sort(key=lambda record: (record.at_ms, record.event_id))
    return records


__all__ = [
    "ALERT_MEASUREMENT",
    "InfluxResponseError",
    "alert_range_query",
    "check_alert",
    "encode_alert",
    "encode_alerts",
    "parse_alerts",
]
