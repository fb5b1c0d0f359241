"""SQLiteStore beyond the shared contract: files made by earlier versions keep working."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from floodwatch.models import ForecastPoint, Reading
from floodwatch.storage.sqlite import SQLiteStore

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)

# The schema as the first release wrote it: readings only.
READINGS_ONLY_SCHEMA = """
CREATE TABLE readings (
    station_id TEXT NOT NULL,
    ts_ms INTEGER NOT NULL,
    level REAL NOT NULL,
    qc INTEGER NOT NULL,
    seq INTEGER,
    battery_v REAL,
    rssi_dbm REAL,
    PRIMARY KEY (station_id, ts_ms)
) WITHOUT ROWID
"""


def make_readings_only_file(path: Path) -> None:
    conn = sqlite3.connect(path)
    try:
        conn.execute(READINGS_ONLY_SCHEMA)
        conn.execute(
            "INSERT INTO readings (station_id, ts_ms, level, qc) VALUES (?, ?, ?, ?)",
            ("gauge-1", int(T0.timestamp() * 1000), 412.5, 0),
        )
        conn.commit()
    finally:
        conn.close()


def tables_and_indexes(path: Path) -> set[str]:
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'index')")
        return {name for (name,) in rows}
    finally:
        conn.close()


async def test_a_readings_only_file_gains_forecasts_on_open(tmp_path: Path) -> None:
    path = tmp_path / "readings.sqlite"
    make_readings_only_file(path)
    point = ForecastPoint("gauge-1", T0, T0 + 6 * HOUR, 6 * 3600, 430.0, 420.0, 441.0, "trend")

    store = SQLiteStore(path)
    await store.open()
    try:
        assert await store.query("gauge-1", T0, T0 + HOUR) == [Reading("gauge-1", T0, 412.5)]
        await store.write_forecasts([point])
        assert await store.latest_forecast_run("gauge-1") == [point]
    finally:
        await store.close()

    assert {"readings", "forecasts", "forecasts_by_issue"} <= tables_and_indexes(path)


async def test_opening_again_keeps_forecasts(tmp_path: Path) -> None:
    path = tmp_path / "readings.sqlite"
    point = ForecastPoint("gauge-1", T0, T0 + HOUR, 3600, 1.0, 0.5, 1.5, "routing")
    for _ in range(2):
        store = SQLiteStore(path)
        await store.open()
        try:
            await store.write_forecasts([point])
            assert await store.query_forecasts("gauge-1", T0, T0 + 2 * HOUR) == [point]
        finally:
            await store.close()
