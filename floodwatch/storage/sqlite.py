"""The embedded store of readings, forecasts and alert events: one SQLite file, used when no
InfluxDB URL is set.

The connection lives on its own worker thread (floodwatch/sqlite_thread.py), so the event
loop never waits on the disk.
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from floodwatch.errors import StoreRejected
from floodwatch.models import AlertRecord, ForecastPoint, QCFlag, Reading, from_epoch_ms
from floodwatch.sqlite_thread import SQLiteThread, write_rows
from floodwatch.storage.alert_lines import check_alert
from floodwatch.storage.health_lines import HealthPoint, check_health
from floodwatch.storage.line_protocol import check_forecast, epoch_ms_ceil, horizon_seconds

# Run on every open; IF NOT EXISTS adds what a file made by an older version lacks.
_SCHEMA = (
    """
    CREATE TABLE IF NOT EXISTS readings (
        station_id TEXT NOT NULL,
        ts_ms INTEGER NOT NULL,
        level REAL NOT NULL,
        qc INTEGER NOT NULL,
        seq INTEGER,
        battery_v REAL,
        rssi_dbm REAL,
        PRIMARY KEY (station_id, ts_ms)
    ) WITHOUT ROWID
    """,
    """
    CREATE TABLE IF NOT EXISTS forecasts (
        station_id TEXT NOT NULL,
        horizon_s INTEGER NOT NULL,
        valid_ms INTEGER NOT NULL,
        issued_ms INTEGER NOT NULL,
        level REAL NOT NULL,
        lower REAL NOT NULL,
        upper REAL NOT NULL,
        method TEXT NOT NULL,
        PRIMARY KEY (station_id, horizon_s, valid_ms)
    ) WITHOUT ROWID
    """,
    # latest_forecast_run looks up a station's newest issue time, then that run's points.
    "CREATE INDEX IF NOT EXISTS forecasts_by_issue ON forecasts (station_id, issued_ms)",
    """
    CREATE TABLE IF NOT EXISTS alert_events (
        event_id TEXT PRIMARY KEY,
        station_id TEXT NOT NULL,
        at_ms INTEGER NOT NULL,
        kind TEXT NOT NULL,
        severity TEXT,
        title TEXT NOT NULL,
        text TEXT NOT NULL,
        level REAL,
        threshold REAL,
        threshold_key TEXT
    ) WITHOUT ROWID
    """,
    "CREATE INDEX IF NOT EXISTS alert_events_by_time ON alert_events (at_ms)",
    "CREATE INDEX IF NOT EXISTS alert_events_by_station ON alert_events (station_id, at_ms)",
)

# An upsert rather than INSERT OR REPLACE: InfluxDB merges the fields of a point written
# twice, so an optional field missing from the rewrite keeps its earlier value there, and
# the contract suite holds both stores to that same behaviour.
_UPSERT = """
INSERT INTO readings (station_id, ts_ms, level, qc, seq, battery_v, rssi_dbm)
VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (station_id, ts_ms) DO UPDATE SET
    level = excluded.level,
    qc = excluded.qc,
    seq = coalesce(excluded.seq, seq),
    battery_v = coalesce(excluded.battery_v, battery_v),
    rssi_dbm = coalesce(excluded.rssi_dbm, rssi_dbm)
"""

_COLUMNS = "station_id, ts_ms, level, qc, seq, battery_v, rssi_dbm"

# Unlike readings, a rewritten forecast point is replaced whole: every field is always set.
_UPSERT_FORECAST = """
INSERT INTO forecasts (station_id, horizon_s, valid_ms, issued_ms, level, lower, upper, method)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (station_id, horizon_s, valid_ms) DO UPDATE SET
    issued_ms = excluded.issued_ms,
    level = excluded.level,
    lower = excluded.lower,
    upper = excluded.upper,
    method = excluded.method
"""

_FORECAST_COLUMNS = "station_id, horizon_s, valid_ms, issued_ms, level, lower, upper, method"

# An alert event is deterministic for its id, so a rewrite (a redelivery) replaces it whole.
_UPSERT_ALERT = """
INSERT OR REPLACE INTO alert_events
    (event_id, station_id, at_ms, kind, severity, title, text, level, threshold, threshold_key)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""

_ALERT_COLUMNS = (
    "event_id, station_id, at_ms, kind, severity, title, text, level, threshold, threshold_key"
)

Row = tuple[str, int, float, int, int | None, float | None, float | None]
ForecastRow = tuple[str, int, int, int, float, float, float, str]
AlertRow = tuple[str, str, int, str, str | None, str, str, float | None, float | None, str | None]


class _InvalidData(ValueError):
    pass


class SQLiteStore:
    """`ReadingStore` in a SQLite file (WAL); the parent directory is created if missing."""

    def __init__(self, path: Path | str) -> None:
        self._path = Path(path)
        self.description = f"SQLite {self._path}"
        self._db = SQLiteThread(self._path, _SCHEMA, "sqlite-store")

    def __repr__(self) -> str:
        return f"SQLiteStore({str(self._path)!r})"

    # --- lifecycle ----------------------------------------------------------------------

    async def open(self) -> None:
        await self._db.open()

    async def close(self) -> None:
        await self._db.close()

    async def ping(self) -> None:
        await self._db.run(_ping)

    # --- data ---------------------------------------------------------------------------

    async def write(self, readings: Sequence[Reading]) -> None:
        if not readings:
            return
        try:
            await self._db.run(write_rows, _UPSERT, _row, readings)
        except _InvalidData as exc:
            raise StoreRejected(f"{self.description}: {exc}") from None

    async def query(self, station_id: str, start: datetime, end: datetime) -> list[Reading]:
        start_ms, end_ms = epoch_ms_ceil(start), epoch_ms_ceil(end)
        sql = (
            f"SELECT {_COLUMNS} FROM readings"
            " WHERE station_id = ? AND ts_ms >= ? AND ts_ms < ? ORDER BY ts_ms"
        )
        return await self._db.run(_select, sql, (station_id, start_ms, end_ms))

    async def latest(self, station_id: str, limit: int = 1) -> list[Reading]:
        if limit < 1:
            return []  # SQLite reads a negative LIMIT as "no limit"
        sql = f"SELECT {_COLUMNS} FROM readings WHERE station_id = ? ORDER BY ts_ms DESC LIMIT ?"
        readings = await self._db.run(_select, sql, (station_id, limit))
        readings.reverse()
        return readings

    async def count(self, station_id: str) -> int:
        return await self._db.run(_count, station_id)

    async def write_forecasts(self, points: Sequence[ForecastPoint]) -> None:
        if not points:
            return
        try:
            await self._db.run(write_rows, _UPSERT_FORECAST, _forecast_row, points)
        except _InvalidData as exc:
            raise StoreRejected(f"{self.description}: {exc}") from None

    async def query_forecasts(
        self, station_id: str, start: datetime, end: datetime, horizon_s: int | None = None
    ) -> list[ForecastPoint]:
        start_ms, end_ms = epoch_ms_ceil(start), epoch_ms_ceil(end)
        where = "station_id = ? AND valid_ms >= ? AND valid_ms < ?"
        params: tuple[Any, ...] = (station_id, start_ms, end_ms)
        if horizon_s is not None:
            where += " AND horizon_s = ?"
            params += (horizon_seconds(horizon_s),)
        sql = (
            f"SELECT {_FORECAST_COLUMNS} FROM forecasts WHERE {where} ORDER BY valid_ms, horizon_s"
        )
        return await self._db.run(_select_forecasts, sql, params)

    async def latest_forecast_run(self, station_id: str) -> list[ForecastPoint]:
        sql = (
            f"SELECT {_FORECAST_COLUMNS} FROM forecasts WHERE station_id = ? AND issued_ms ="
            " (SELECT max(issued_ms) FROM forecasts WHERE station_id = ?)"
            " ORDER BY horizon_s, valid_ms"
        )
        return await self._db.run(_select_forecasts, sql, (station_id, station_id))

    async def latest_each(self, station_ids: Sequence[str]) -> dict[str, Reading]:
        # The ids go in as one JSON array, so any number of stations is one parameter.
        sql = (
            f"SELECT {_qualified('r', _COLUMNS)} FROM json_each(?) AS s"
            " JOIN readings AS r ON r.station_id = s.value"
            " AND r.ts_ms = (SELECT max(ts_ms) FROM readings WHERE station_id = s.value)"
        )
        readings = await self._db.run(_select, sql, (_json_ids(station_ids),))
        return {reading.station_id: reading for reading in readings}

    async def latest_forecast_runs(
        self, station_ids: Sequence[str]
    ) -> dict[str, list[ForecastPoint]]:
        sql = (
            f"SELECT {_qualified('f', _FORECAST_COLUMNS)} FROM json_each(?) AS s"
            " JOIN forecasts AS f ON f.station_id = s.value AND f.issued_ms ="
            " (SELECT max(issued_ms) FROM forecasts WHERE station_id = s.value)"
            " ORDER BY f.station_id, f.horizon_s, f.valid_ms"
        )
        points = await self._db.run(_select_forecasts, sql, (_json_ids(station_ids),))
        runs: dict[str, list[ForecastPoint]] = {}
        for point in points:
            runs.setdefault(point.station_id, []).append(point)
        return runs

    async def write_alert_events(self, records: Sequence[AlertRecord]) -> None:
        if not records:
            return
        try:
            await self._db.run(write_rows, _UPSERT_ALERT, _alert_row, records)
        except _InvalidData as exc:
            raise StoreRejected(f"{self.description}: {exc}") from None

    async def write_health(self, points: Sequence[HealthPoint]) -> None:
        # No Grafana reads the embedded store, so station state and collector statistics
        # are checked (a caller learns of a bad point as with InfluxDB) and not kept.
        try:
            for point in points:
                check_health(point)
        except ValueError as exc:
            raise StoreRejected(f"{self.description}: {exc}") from None

    async def query_alert_events(
        self, station_id: str | None, start: datetime, end: datetime
    ) -> list[AlertRecord]:
        where = "at_ms >= ? AND at_ms < ?"
        params: tuple[Any, ...] = (epoch_ms_ceil(start), epoch_ms_ceil(end))
        if station_id is not None:
            where = "station_id = ? AND " + where
            params = (station_id, *params)
        sql = f"SELECT {_ALERT_COLUMNS} FROM alert_events WHERE {where} ORDER BY at_ms, event_id"
        return await self._db.run(_select_alerts, sql, params)


def _json_ids(station_ids: Sequence[str]) -> str:
    return json.dumps(list(dict.fromkeys(station_ids)))


def _qualified(alias: str, columns: str) -> str:
    return ", ".join(f"{alias}.{column.strip()}" for column in columns.split(","))


def _ping(conn: sqlite3.Connection) -> None:
    conn.execute("SELECT 1").fetchone()


def _select(conn: sqlite3.Connection, sql: str, params: tuple[Any, ...]) -> list[Reading]:
    return [_reading(row) for row in conn.execute(sql, params).fetchall()]


def _select_forecasts(
    conn: sqlite3.Connection, sql: str, params: tuple[Any, ...]
) -> list[ForecastPoint]:
    return [_forecast_point(row) for row in conn.execute(sql, params).fetchall()]


def _count(conn: sqlite3.Connection, station_id: str) -> int:
    sql = "SELECT count(*) FROM readings WHERE station_id = ?"
    (count,) = conn.execute(sql, (station_id,)).fetchone()
    return int(count)


def _check_finite(reading: Reading) -> None:
    # SQLite would store NaN as NULL and InfluxDB refuses it: reject it here too so that
    # both stores behave alike.
    for name, value in (
        ("level", reading.level),
        ("battery_v", reading.battery_v),
        ("rssi_dbm", reading.rssi_dbm),
    ):
        if value is not None and not math.isfinite(value):
            raise _InvalidData(
                f"reading {reading.station_id!r} at {reading.ts.isoformat()}: "
                f"{name} must be a finite number, got {value!r}"
            )


def _row(reading: Reading) -> Row:
    _check_finite(reading)
    return (
        reading.station_id,
        reading.ts_ms,
        float(reading.level),
        int(reading.qc),
        None if reading.seq is None else int(reading.seq),
        None if reading.battery_v is None else float(reading.battery_v),
        None if reading.rssi_dbm is None else float(reading.rssi_dbm),
    )


def _reading(row: Row) -> Reading:
    station_id, ts_ms, level, qc, seq, battery_v, rssi_dbm = row
    return Reading(
        station_id=station_id,
        ts=from_epoch_ms(ts_ms),
        level=level,
        seq=seq,
        battery_v=battery_v,
        rssi_dbm=rssi_dbm,
        qc=QCFlag(qc),
    )


def _forecast_row(point: ForecastPoint) -> ForecastRow:
    try:
        check_forecast(point)
    except ValueError as exc:
        raise _InvalidData(str(exc)) from None
    return (
        point.station_id,
        int(point.horizon_s),
        point.valid_ms,
        point.issued_ms,
        float(point.level),
        float(point.lower),
        float(point.upper),
        point.method,
    )


def _forecast_point(row: ForecastRow) -> ForecastPoint:
    station_id, horizon_s, valid_ms, issued_ms, level, lower, upper, method = row
    return ForecastPoint(
        station_id=station_id,
        issued_at=from_epoch_ms(issued_ms),
        valid_at=from_epoch_ms(valid_ms),
        horizon_s=horizon_s,
        level=level,
        lower=lower,
        upper=upper,
        method=method,
    )


def _select_alerts(
    conn: sqlite3.Connection, sql: str, params: tuple[Any, ...]
) -> list[AlertRecord]:
    return [_alert_record(row) for row in conn.execute(sql, params).fetchall()]


def _alert_row(record: AlertRecord) -> AlertRow:
    try:
        check_alert(record)
    except ValueError as exc:
        raise _InvalidData(str(exc)) from None
    return (
        record.event_id,
        record.station_id,
        record.at_ms,
        record.kind,
        record.severity,
        record.title,
        record.text,
        None if record.level is None else float(record.level),
        None if record.threshold is None else float(record.threshold),
        record.threshold_key,
    )


def _alert_record(row: AlertRow) -> AlertRecord:
    event_id, station_id, at_ms, kind, severity, title, text, level, threshold, key = row
    return AlertRecord(
        event_id=event_id,
        station_id=station_id,
        at=from_epoch_ms(at_ms),
        kind=kind,
        severity=severity,
        title=title,
        text=text,
        level=level,
        threshold=threshold,
        threshold_key=key,
    )
