"""Learned forecast models, kept in the state SQLite file so a restart does not relearn.

Each row remembers when the model was learned and a fingerprint of the catalog settings it
was learned under (the station's upstream gauges and forecast settings): a hydrologist
changing a travel time or an upstream list makes the stored model stale at once. A failed
attempt is stored too (no model, the reason), so a restart does not repeat a year-long
query only to fail the same way before the next relearn is due.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from floodwatch.catalog import Station
from floodwatch.models import from_epoch_ms
from floodwatch.sqlite_thread import SQLiteThread
from forecasting.routing import LearnedModel

_SCHEMA = """
CREATE TABLE IF NOT EXISTS forecast_models (
    station_id TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    learned_at_ms INTEGER NOT NULL,
    model TEXT,    -- LearnedModel.to_dict() as JSON; NULL when learning failed
    reason TEXT    -- why learning failed
) WITHOUT ROWID
"""
_COLUMNS = "station_id, fingerprint, learned_at_ms, model, reason"


def _numbers_as_floats(value: Any) -> Any:
    """YAML `1` and `1.0` are the same setting; without this a catalog re-saved by another
    tool would make every stored model stale."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, dict):
        return {key: _numbers_as_floats(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_numbers_as_floats(item) for item in value]
    return value


def fingerprint(station: Station) -> str:
    """What a model depends on in the catalog, hashed."""
    forecast = _numbers_as_floats(station.forecast.model_dump())
    settings = {"upstream": list(station.upstream), "forecast": forecast}
    return hashlib.sha256(orjson.dumps(settings, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class StoredModel:
    station_id: str
    fingerprint: str
    learned_at: datetime
    model: LearnedModel | None
    reason: str | None = None  # why there is no model

    def is_current(self, station: Station, now: datetime, max_age: timedelta) -> bool:
        return self.fingerprint == fingerprint(station) and now - self.learned_at < max_age


class ModelStore:
    """The `forecast_models` table in the state file, on its own worker thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = SQLiteThread(path, (_SCHEMA,), "model-store")

    async def open(self) -> None:
        await self._db.open()

    async def close(self) -> None:
        await self._db.close()

    async def save(self, record: StoredModel) -> None:
        await self._db.run(_save, _row(record))

    async def load(self, station_id: str) -> StoredModel | None:
        rows = await self._db.run(_select, "WHERE station_id = ?", (station_id,))
        return rows[0] if rows else None

    async def load_all(self, station_ids: Sequence[str] = ()) -> list[StoredModel]:
        rows = await self._db.run(_select, "", ())
        wanted = set(station_ids)
        return [row for row in rows if not wanted or row.station_id in wanted]


def _save(conn: sqlite3.Connection, row: tuple[Any, ...]) -> None:
    conn.execute(f"INSERT OR REPLACE INTO forecast_models ({_COLUMNS}) VALUES (?, ?, ?, ?, ?)", row)


def _select(conn: sqlite3.Connection, where: str, params: tuple[Any, ...]) -> list[StoredModel]:
    sql = f"SELECT {_COLUMNS} FROM forecast_models {where}"
    return [_record(row) for row in conn.execute(sql, params).fetchall()]


def _row(record: StoredModel) -> tuple[Any, ...]:
    model = orjson.dumps(record.model.to_dict()).decode() if record.model else None
    learned_ms = round(record.learned_at.timestamp() * 1000)
    return (record.station_id, record.fingerprint, learned_ms, model, record.reason)


def _record(row: tuple[Any, ...]) -> StoredModel:
    station_id, print_, learned_ms, model, reason = row
    try:
        parsed = LearnedModel.from_dict(orjson.loads(model)) if model is not None else None
    except (ValueError, KeyError, TypeError) as exc:
        # Written by another version, or damaged: stale, so it is simply learned again.
        return StoredModel(station_id, "", from_epoch_ms(learned_ms), None, f"unreadable: {exc}")
    return StoredModel(station_id, print_, from_epoch_ms(learned_ms), parsed, reason)
