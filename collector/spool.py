"""The durable local spool: readings the store could not take yet.

A reading is acknowledged to the broker only once it is in the store or here, so the
spool must survive a kill -9: SQLite in WAL mode with synchronous=FULL, one transaction
per batch. It drains oldest first. A batch the store refuses outright (not merely
unreachable) moves to a dead-letter table so it cannot block the readings behind it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

from floodwatch.models import QCFlag, Reading, from_epoch_ms

_SCHEMA = """
CREATE TABLE IF NOT EXISTS spool (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    station_id TEXT NOT NULL, ts_ms INTEGER NOT NULL, level REAL NOT NULL, qc INTEGER NOT NULL,
    seq INTEGER, battery_v REAL, rssi_dbm REAL, received_ms INTEGER
);
CREATE TABLE IF NOT EXISTS dead (
    id INTEGER PRIMARY KEY,
    station_id TEXT NOT NULL, ts_ms INTEGER NOT NULL, level REAL NOT NULL, qc INTEGER NOT NULL,
    seq INTEGER, battery_v REAL, rssi_dbm REAL, received_ms INTEGER, reason TEXT NOT NULL
);
"""
_COLUMNS = "station_id, ts_ms, level, qc, seq, battery_v, rssi_dbm, received_ms"

SpoolRow = tuple[int, Reading]


def _to_row(reading: Reading) -> tuple[object, ...]:
    received = reading.received_at
    return (
        reading.station_id,
        reading.ts_ms,
        reading.level,
        int(reading.qc),
        reading.seq,
        reading.battery_v,
        reading.rssi_dbm,
        round(received.timestamp() * 1000) if received else None,
    )


def _from_row(row: Sequence[object]) -> SpoolRow:
    rowid, station_id, ts_ms, level, qc, seq, battery_v, rssi_dbm, received_ms = row
    reading = Reading(
        station_id=str(station_id),
        ts=from_epoch_ms(int(ts_ms)),  # type: ignore[call-overload]
        level=float(level),  # type: ignore[arg-type]
        seq=seq,  # type: ignore[arg-type]
        battery_v=battery_v,  # type: ignore[arg-type]
        rssi_dbm=rssi_dbm,  # type: ignore[arg-type]
        qc=QCFlag(int(qc)),  # type: ignore[call-overload]
        received_at=from_epoch_ms(int(received_ms)) if received_ms is not None else None,  # type: ignore[call-overload]
    )
    return int(rowid), reading  # type: ignore[call-overload]


class Spool:
    """Blocking SQLite spool; the collector calls it from one dedicated worker thread."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        # FULL: an acknowledged reading must survive the machine losing power, not only kill -9.
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def append(self, readings: Sequence[Reading]) -> None:
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany(
                f"INSERT INTO spool ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [_to_row(reading) for reading in readings],
            )

    def peek(self, limit: int) -> list[SpoolRow]:
        cursor = self._db.execute(
            f"SELECT id, {_COLUMNS} FROM spool ORDER BY id LIMIT ?",
            (limit,),
        )
        return [_from_row(row) for row in cursor.fetchall()]

    def remove_through(self, last_id: int) -> None:
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute("DELETE FROM spool WHERE id <= ?", (last_id,))

    def bury_through(self, last_id: int, reason: str) -> int:
        """Move rows up to last_id into the dead-letter table; returns how many moved."""
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            moved = self._db.execute(
                f"INSERT INTO dead (id, {_COLUMNS}, reason) "
                f"SELECT id, {_COLUMNS}, ? FROM spool WHERE id <= ?",
                (reason[:500], last_id),
            ).rowcount
            self._db.execute("DELETE FROM spool WHERE id <= ?", (last_id,))
        return moved

    def bury(self, readings: Sequence[Reading], reason: str) -> None:
        """Keep readings the store refused, for an operator to inspect."""
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany(
                f"INSERT INTO dead ({_COLUMNS}, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(*_to_row(reading), reason[:500]) for reading in readings],
            )

    def depth(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM spool").fetchone()[0])

    def dead_count(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM dead").fetchone()[0])
