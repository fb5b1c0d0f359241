"""The alert store's tables and the jobs that run on its SQLite worker thread.

Plain rows in and out (strings, numbers, JSON text); alerts/store.py turns them into
events, states and audit entries. Every write is one explicit transaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

import orjson

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS alert_state (
        station_id TEXT PRIMARY KEY,
        state TEXT NOT NULL,          -- GaugeState.to_dict() as JSON
        ladder TEXT,                  -- fingerprint of the ladder the state was decided on
        updated_at_ms INTEGER NOT NULL
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS alert_outbox (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        event_id TEXT NOT NULL UNIQUE,
        station_id TEXT NOT NULL,
        event TEXT NOT NULL,          -- AlertEvent.to_dict() as JSON
        created_at_ms INTEGER NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS alert_outbox_station ON alert_outbox (station_id, seq)",
    """CREATE TABLE IF NOT EXISTS alert_deliveries (
        channel TEXT NOT NULL,
        seq INTEGER NOT NULL,
        delivered_at_ms INTEGER NOT NULL,
        PRIMARY KEY (channel, seq)
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS alert_channels (
        channel TEXT PRIMARY KEY,
        first_seq INTEGER NOT NULL,   -- the first outbox seq the channel is responsible for
        registered_at_ms INTEGER NOT NULL
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS alert_overrides (
        station_id TEXT NOT NULL,
        field TEXT NOT NULL,          -- levels.<key>.value | clear_margin | maintenance
        value TEXT NOT NULL,          -- JSON
        PRIMARY KEY (station_id, field)
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS alert_audit (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at_ms INTEGER NOT NULL,
        by TEXT NOT NULL,
        station_id TEXT NOT NULL,
        field TEXT NOT NULL,
        old TEXT,
        new TEXT
    )""",
)

# (event_id, station_id, event JSON)
EventRow = tuple[str, str, str]
# (seq, event JSON, created_at_ms)
OutboxRow = tuple[int, str, int]
# (at_ms, by, station_id, field, old, new)
AuditRow = tuple[int, str, str, str, str | None, str | None]


class VersionMoved(Exception):
    """The overrides changed since the version a change was checked against."""


def select(conn: sqlite3.Connection, sql: str, params: tuple[Any, ...]) -> list[Any]:
    return conn.execute(sql, params).fetchall()


def commit(
    conn: sqlite3.Connection,
    station_id: str,
    state_json: str,
    ladder: str | None,
    events: Sequence[EventRow],
    now_ms: int,
) -> list[int | None]:
    """Upsert the state, insert the events; per event its new seq, or None if its id was
    already in the outbox."""
    with _transaction(conn):
        conn.execute(
            "INSERT INTO alert_state (station_id, state, ladder, updated_at_ms) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (station_id) DO UPDATE SET "
            "state = excluded.state, ladder = COALESCE(excluded.ladder, alert_state.ladder), "
            "updated_at_ms = excluded.updated_at_ms",
            (station_id, state_json, ladder, now_ms),
        )
        seqs: list[int | None] = []
        for event_id, event_station, event_json in events:
            cursor = conn.execute(
                "INSERT INTO alert_outbox (event_id, station_id, event, created_at_ms) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (event_id) DO NOTHING",
                (event_id, event_station, event_json, now_ms),
            )
            seqs.append(cursor.lastrowid if cursor.rowcount == 1 else None)
    return seqs


def pending(
    conn: sqlite3.Connection, channel: str, floor: int, limit: int
) -> tuple[list[OutboxRow], int]:
    """Undelivered rows from `floor` on, and the new floor: the seq below which every
    event is known to be delivered on `channel`."""
    conn.execute("BEGIN")  # the rows and the newest seq from one snapshot
    try:
        rows = conn.execute(
            "SELECT o.seq, o.event, o.created_at_ms FROM alert_outbox o WHERE o.seq >= ? "
            "AND NOT EXISTS (SELECT 1 FROM alert_deliveries d "
            "WHERE d.channel = ? AND d.seq = o.seq) ORDER BY o.seq LIMIT ?",
            (floor, channel, limit),
        ).fetchall()
        newest = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM alert_outbox").fetchone()[0]
    finally:
        conn.execute("COMMIT")
    # Seqs are given out under the write lock, in commit order: an event committed later
    # always gets a higher seq than any seen here.
    return rows, rows[0][0] if rows else int(newest) + 1


def mark(conn: sqlite3.Connection, rows: Sequence[tuple[str, int, int]]) -> None:
    with _transaction(conn):
        conn.executemany(
            "INSERT INTO alert_deliveries (channel, seq, delivered_at_ms) VALUES (?, ?, ?) "
            "ON CONFLICT (channel, seq) DO NOTHING",
            rows,
        )


def register_channel(conn: sqlite3.Connection, channel: str, now_ms: int) -> int:
    """The channel's first seq: recorded as the outbox's end the first time it is seen."""
    with _transaction(conn):
        conn.execute(
            "INSERT INTO alert_channels (channel, first_seq, registered_at_ms) "
            "SELECT ?, COALESCE(MAX(seq), 0) + 1, ? FROM alert_outbox "
            "WHERE true ON CONFLICT (channel) DO NOTHING",
            (channel, now_ms),
        )
        row = conn.execute(
            "SELECT first_seq FROM alert_channels WHERE channel = ?", (channel,)
        ).fetchone()
    return int(row[0])


def version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT COALESCE(MAX(id), 0) FROM alert_audit").fetchone()[0])


def snapshot(conn: sqlite3.Connection) -> tuple[dict[str, dict[str, Any]], int]:
    """Overrides per station ({"levels": {key: v}, "clear_margin": v, "maintenance": v})
    and the version they belong to, from one read snapshot."""
    conn.execute("BEGIN")
    try:
        rows = conn.execute("SELECT station_id, field, value FROM alert_overrides").fetchall()
        current = version(conn)
    finally:
        conn.execute("COMMIT")
    overrides: dict[str, dict[str, Any]] = {}
    for station_id, field, value in rows:
        station = overrides.setdefault(station_id, {})
        if field.startswith("levels."):
            key = field.removeprefix("levels.").removesuffix(".value")
            station.setdefault("levels", {})[key] = orjson.loads(value)
        else:
            station[field] = orjson.loads(value)
    return overrides, current


def record_changes(
    conn: sqlite3.Connection,
    changes: Sequence[tuple[AuditRow, str | None]],
    if_version: int | None,
) -> None:
    """Per change: its audit row and the override's JSON value (None: remove it)."""
    with _transaction(conn):
        if if_version is not None and version(conn) != if_version:
            raise VersionMoved
        for row, value in changes:
            _, _, station_id, field, _, _ = row
            if value is None:
                conn.execute(
                    "DELETE FROM alert_overrides WHERE station_id = ? AND field = ?",
                    (station_id, field),
                )
            else:
                conn.execute(
                    "INSERT INTO alert_overrides (station_id, field, value) VALUES (?, ?, ?) "
                    "ON CONFLICT (station_id, field) DO UPDATE SET value = excluded.value",
                    (station_id, field, value),
                )
            conn.execute(
                "INSERT INTO alert_audit (at_ms, by, station_id, field, old, new) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                row,
            )


class _transaction:
    """BEGIN IMMEDIATE (the write lock first, so checks inside hold), COMMIT or ROLLBACK."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, _exc: object, _tb: object) -> None:
        self.conn.execute("ROLLBACK" if exc_type is not None else "COMMIT")
