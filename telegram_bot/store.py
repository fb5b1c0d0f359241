"""The bot's own state in the state SQLite file: chats, their subscriptions, and the
per-chat deliveries of alert messages (the Telegram channel's fan-out of the outbox).

Tables (created on open, beside the alert engine's):

| table | holds |
|---|---|
| `bot_chats` | every chat the bot talks to: kind, language, active, dispatch, muted until |
| `bot_subscriptions` | (chat, target) → lowest severity; `station:<id>`, `river:<name>`, `all` |
| `telegram_messages` | per outbox seq and language, the rendered message (fixed at fan-out) |
| `telegram_deliveries` | one row per (seq, chat): pending / sent / failed, attempts, error |

A delivery row also keeps Telegram's message id once sent and, while a send is not
answered, the message id floor to settle it from (telegram_bot/in_doubt.py).

Who hears what (`recipients`):

* resident alerts go to active chats subscribed to the station, its river or everything,
  whose lowest severity is at or below the event's; an event without a rung (a rapid rise
  with no threshold) counts as `watch`;
* events that close an alert (all-clear, de-escalation, withdrawn pre-warning) are judged
  by the rung they close (`previous`, else `threshold`), so they reach exactly the chats
  that heard the alert;
* operator-only events (offline, faulty, maintenance) go only to dispatch chats that
  subscribe to the station, its river or everything, whatever their lowest severity;
* a muted chat gets nothing until its mute ends, except `danger` (and the closing of a
  danger alert): silencing a danger warning is never what a resident meant by "mute".
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from alerts.events import AlertEvent, EventKind
from floodwatch.catalog import Severity, Station
from floodwatch.models import from_epoch_ms, utc_now
from floodwatch.sqlite_thread import SQLiteThread
from telegram_bot.message_ids import CHANNEL_ID_BELOW

KINDS = ("private", "group", "supergroup", "channel")
SEVERITIES = ("watch", "warning", "danger")
CLOSING = frozenset({EventKind.ALL_CLEAR, EventKind.DEESCALATION, EventKind.PREWARNING_WITHDRAWN})

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS bot_chats (
        chat_id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL,             -- private | group | supergroup | channel
        language TEXT NOT NULL,
        active INTEGER NOT NULL DEFAULT 1,
        dispatch INTEGER NOT NULL DEFAULT 0,
        muted_until_ms INTEGER,
        created_at_ms INTEGER NOT NULL,
        updated_at_ms INTEGER NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS bot_subscriptions (
        chat_id INTEGER NOT NULL REFERENCES bot_chats (chat_id),
        target TEXT NOT NULL,           -- station:<id> | river:<name> | all
        station_id TEXT,
        river TEXT,
        min_severity TEXT NOT NULL,     -- watch | warning | danger
        created_at_ms INTEGER NOT NULL,
        PRIMARY KEY (chat_id, target)
    ) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS bot_subscriptions_target ON bot_subscriptions (target)",
    """CREATE TABLE IF NOT EXISTS telegram_messages (
        seq INTEGER NOT NULL,           -- alert_outbox.seq
        language TEXT NOT NULL,
        text TEXT NOT NULL,             -- Telegram HTML
        PRIMARY KEY (seq, language)
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS telegram_deliveries (
        seq INTEGER NOT NULL,
        chat_id INTEGER NOT NULL,
        language TEXT NOT NULL,
        priority INTEGER NOT NULL,      -- 3 danger, 2 warning, 1 watch, 0 the rest
        status TEXT NOT NULL,           -- pending | sent | failed
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        next_at_ms INTEGER NOT NULL,    -- not before (backoff)
        created_at_ms INTEGER NOT NULL,
        done_at_ms INTEGER,
        probe_from INTEGER,             -- set while a send's answer is not recorded
        message_id INTEGER,             -- Telegram's id of the sent message
        PRIMARY KEY (seq, chat_id)
    ) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS telegram_deliveries_pending ON telegram_deliveries "
    "(status, chat_id, priority, seq)",
)


@dataclass(frozen=True, slots=True)
class Chat:
    chat_id: int
    kind: str
    language: str
    active: bool
    dispatch: bool
    muted_until: datetime | None

    @property
    def group(self) -> bool:
        return self.kind in ("group", "supergroup")


@dataclass(frozen=True, slots=True)
class Subscription:
    """A station, a river (English name from the catalog), or everything (both None)."""

    chat_id: int
    station_id: str | None
    river: str | None
    min_severity: str


@dataclass(frozen=True, slots=True)
class Delivery:
    """One pending message to one chat."""

    seq: int
    chat_id: int
    kind: str  # the chat's kind, for the per-group limit
    priority: int
    attempts: int
    text: str
    # Not None: an earlier send of this row got no recorded answer (a crash, a timeout);
    # settle it before sending (-1: no floor was known then).
    probe_from: int | None = None


def event_severity(event: AlertEvent) -> Severity | None:
    """The severity a chat's filter is checked against; None for operator-only events."""
    if event.operator_only:
        return None
    rung = (event.previous or event.threshold) if event.kind in CLOSING else event.threshold
    return rung.rank if rung is not None else Severity.WATCH


def priority(event: AlertEvent) -> int:
    """Sending order: danger, warning, watch, then everything else (all-clear, operators)."""
    if event.operator_only or event.kind in CLOSING or event.threshold is None:
        return 0
    return int(event.threshold.rank)


def _target(station_id: str | None, river: str | None) -> str:
    if station_id is not None and river is not None:
        raise ValueError("subscribe to a station or a river, not both")
    if station_id is not None:
        return f"station:{station_id}"
    if river is not None:
        return f"river:{river}"
    return "all"


_CHAT_COLUMNS = "chat_id, kind, language, active, dispatch, muted_until_ms"


def _chat(row: tuple[Any, ...]) -> Chat:
    chat_id, kind, language, active, dispatch, muted = row
    return Chat(
        chat_id,
        kind,
        language,
        bool(active),
        bool(dispatch),
        from_epoch_ms(muted) if muted else None,
    )


def _ms(value: datetime) -> int:
    return round(value.timestamp() * 1000)


class BotStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = SQLiteThread(path, SCHEMA, "bot-store")

    async def open(self) -> None:
        await self._db.open()
        await self._db.run(_add_columns)

    async def close(self) -> None:
        await self._db.close()

    # ----- chats and subscriptions -------------------------------------------------------

    async def upsert_chat(self, chat_id: int, kind: str, language: str) -> Chat:
        """Create or update a chat; re-activates a chat that was deactivated."""
        if kind not in KINDS:
            raise ValueError(f"unknown chat kind {kind!r}")
        return await self._db.run(_upsert_chat, chat_id, kind, language, _ms(utc_now()))

    async def chat(self, chat_id: int) -> Chat | None:
        rows = await self._db.run(
            _select, f"SELECT {_CHAT_COLUMNS} FROM bot_chats WHERE chat_id = ?", (chat_id,)
        )
        return _chat(rows[0]) if rows else None

    async def set_language(self, chat_id: int, language: str) -> None:
        await self._update_chat(chat_id, "language = ?", language)

    async def mute(self, chat_id: int, until: datetime | None) -> None:
        await self._update_chat(chat_id, "muted_until_ms = ?", _ms(until) if until else None)

    async def set_dispatch(self, chat_id: int, on: bool) -> None:
        await self._update_chat(chat_id, "dispatch = ?", int(on))

    async def deactivate(self, chat_id: int) -> None:
        """The chat blocked the bot or is gone: it gets nothing until it writes again
        (`upsert_chat`); its subscriptions are kept for that day."""
        await self._update_chat(chat_id, "active = ?", 0)

    async def _update_chat(self, chat_id: int, assignment: str, value: object) -> None:
        await self._db.run(
            _write,
            f"UPDATE bot_chats SET {assignment}, updated_at_ms = ? WHERE chat_id = ?",
            [(value, _ms(utc_now()), chat_id)],
        )

    async def subscribe(
        self,
        chat_id: int,
        *,
        station_id: str | None = None,
        river: str | None = None,
        min_severity: str = "warning",
    ) -> None:
        """Subscribe (replacing the same target's earlier subscription); the chat must
        exist (`upsert_chat`)."""
        if min_severity not in SEVERITIES:
            raise ValueError(f"min_severity must be one of {SEVERITIES}")
        row = (
            chat_id,
            _target(station_id, river),
            station_id,
            river,
            min_severity,
            _ms(utc_now()),
        )
        await self._db.run(
            _write,
            "INSERT INTO bot_subscriptions (chat_id, target, station_id, river, min_severity, "
            "created_at_ms) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (chat_id, target) DO UPDATE "
            "SET min_severity = excluded.min_severity",
            [row],
        )

    async def unsubscribe(
        self, chat_id: int, *, station_id: str | None = None, river: str | None = None
    ) -> bool:
        target = _target(station_id, river)
        return await self._db.run(_delete_subscription, chat_id, target)

    async def subscriptions(self, chat_id: int) -> list[Subscription]:
        """Stations first, then rivers, then everything; by name within each."""
        rows = await self._db.run(
            _select,
            "SELECT chat_id, station_id, river, min_severity FROM bot_subscriptions "
            "WHERE chat_id = ? ORDER BY CASE WHEN station_id IS NOT NULL THEN 0 "
            "WHEN river IS NOT NULL THEN 1 ELSE 2 END, target",
            (chat_id,),
        )
        return [Subscription(*row) for row in rows]

    async def recipients(self, event: AlertEvent, station: Station, now: datetime) -> list[Chat]:
        """The chats that must get this event (see the module's docstring), by chat id."""
        targets = ["all", f"station:{station.id}"]
        targets += [f"river:{name}" for name in sorted(set(station.river.values()))]
        rows = await self._db.run(_candidates, targets)
        severity = event_severity(event)
        now_ms = _ms(now)
        chosen: dict[int, Chat] = {}
        for *chat_row, min_severity in rows:
            chat = _chat(tuple(chat_row))
            if not chat.active:
                continue
            if severity is None:  # operator-only
                if chat.dispatch:
                    chosen[chat.chat_id] = chat
                continue
            if severity < Severity[min_severity.upper()]:
                continue
            muted = chat.muted_until is not None and _ms(chat.muted_until) > now_ms
            if muted and severity < Severity.DANGER:
                continue
            chosen[chat.chat_id] = chat
        return [chosen[key] for key in sorted(chosen)]

    # ----- the Telegram channel's deliveries --------------------------------------------

    async def fan_out(
        self, seq: int, prio: int, chats: Sequence[Chat], texts: dict[str, str]
    ) -> int:
        """One pending row per chat and the message per language, in one transaction;
        a seq fanned out before is left as it is. Returns the rows added."""
        return await self._db.run(_fan_out, seq, prio, list(chats), texts, _ms(utc_now()))

    async def due(self, now: datetime, exclude: Sequence[int], limit: int) -> list[Delivery]:
        """Per chat not in `exclude`, its next pending message (highest priority, then
        oldest), if due by `now`; in sending order (priority, then seq)."""
        return await self._db.run(_due, _ms(now), list(exclude), limit)

    async def next_due_at(self) -> datetime | None:
        rows = await self._db.run(
            _select,
            "SELECT MIN(next_at_ms) FROM telegram_deliveries WHERE status = 'pending'",
            (),
        )
        value = rows[0][0] if rows else None
        return from_epoch_ms(value) if value is not None else None

    async def mark_sending(self, seq: int, chat_id: int, floor: int | None) -> None:
        """Durably note that a send begins, with the chat's message id floor (None: none
        known); until its answer is recorded the row is in doubt."""
        await self._db.run(
            _write,
            "UPDATE telegram_deliveries SET probe_from = ? WHERE seq = ? AND chat_id = ?",
            [(-1 if floor is None else floor, seq, chat_id)],
        )

    async def mark_sent(self, seq: int, chat_id: int, message_id: int | None = None) -> None:
        await self._db.run(
            _write,
            "UPDATE telegram_deliveries SET status = 'sent', attempts = attempts + 1, "
            "last_error = NULL, done_at_ms = ?, probe_from = NULL, message_id = ? "
            "WHERE seq = ? AND chat_id = ?",
            [(_ms(utc_now()), message_id, seq, chat_id)],
        )

    async def mark_retry(
        self,
        seq: int,
        chat_id: int,
        error: str,
        not_before: datetime,
        *,
        count: bool = True,
        in_doubt: bool = False,
    ) -> None:
        """Keep the row pending until `not_before`; `count` adds an attempt. `in_doubt`:
        the send may have reached Telegram (a timeout, a lost connection), so the floor is
        kept and the next try settles it first; otherwise Telegram refused it for sure."""
        keep = "probe_from" if in_doubt else "NULL"
        await self._db.run(
            _write,
            f"UPDATE telegram_deliveries SET attempts = attempts + ?, last_error = ?, "
            f"next_at_ms = ?, probe_from = {keep} WHERE seq = ? AND chat_id = ?",
            [(int(count), error[:500], _ms(not_before), seq, chat_id)],
        )

    async def message_id_floors(self) -> dict[int, int]:
        """The highest message id recorded per id space (`telegram_bot.message_ids`)."""
        rows = await self._db.run(_floors)
        return {int(space): int(highest) for space, highest in rows if highest is not None}

    async def migrate_chat(self, old_id: int, new_id: int) -> None:
        """A group became a supergroup (Telegram gives it a new id): move its settings,
        subscriptions and pending messages to the new id."""
        await self._db.run(_migrate_chat, old_id, new_id, _ms(utc_now()))

    async def mark_failed(self, seq: int, chat_id: int, error: str) -> None:
        await self._db.run(
            _write,
            "UPDATE telegram_deliveries SET status = 'failed', attempts = attempts + 1, "
            "last_error = ?, done_at_ms = ? WHERE seq = ? AND chat_id = ?",
            [(error[:500], _ms(utc_now()), seq, chat_id)],
        )

    async def fail_chat(self, chat_id: int, error: str) -> int:
        """Every pending row of a chat that can no longer be reached; returns how many."""
        return await self._db.run(_fail_chat, chat_id, error[:500], _ms(utc_now()))

    async def delivery_counts(self) -> dict[str, int]:
        rows = await self._db.run(
            _select, "SELECT status, COUNT(*) FROM telegram_deliveries GROUP BY status", ()
        )
        return {status: int(count) for status, count in rows}


# ----- jobs on the worker thread ---------------------------------------------------------


def _select(conn: sqlite3.Connection, sql: str, params: tuple[Any, ...]) -> list[Any]:
    return conn.execute(sql, params).fetchall()


class _transaction:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, _exc: object, _tb: object) -> None:
        self.conn.execute("ROLLBACK" if exc_type is not None else "COMMIT")


def _write(conn: sqlite3.Connection, sql: str, rows: Sequence[tuple[Any, ...]]) -> None:
    with _transaction(conn):
        conn.executemany(sql, rows)


def _upsert_chat(
    conn: sqlite3.Connection, chat_id: int, kind: str, language: str, now_ms: int
) -> Chat:
    with _transaction(conn):
        conn.execute(
            "INSERT INTO bot_chats (chat_id, kind, language, active, dispatch, muted_until_ms, "
            "created_at_ms, updated_at_ms) VALUES (?, ?, ?, 1, 0, NULL, ?, ?) "
            "ON CONFLICT (chat_id) DO UPDATE SET kind = excluded.kind, "
            "language = excluded.language, active = 1, updated_at_ms = excluded.updated_at_ms",
            (chat_id, kind, language, now_ms, now_ms),
        )
        row = conn.execute(
            f"SELECT {_CHAT_COLUMNS} FROM bot_chats WHERE chat_id = ?", (chat_id,)
        ).fetchone()
    return _chat(row)


def _delete_subscription(conn: sqlite3.Connection, chat_id: int, target: str) -> bool:
    with _transaction(conn):
        cursor = conn.execute(
            "DELETE FROM bot_subscriptions WHERE chat_id = ? AND target = ?", (chat_id, target)
        )
    return cursor.rowcount > 0


def _candidates(conn: sqlite3.Connection, targets: Sequence[str]) -> list[Any]:
    marks = ", ".join("?" for _ in targets)
    return conn.execute(
        f"SELECT c.chat_id, c.kind, c.language, c.active, c.dispatch, c.muted_until_ms, "
        f"s.min_severity FROM bot_subscriptions s JOIN bot_chats c ON c.chat_id = s.chat_id "
        f"WHERE s.target IN ({marks}) AND c.active = 1",
        tuple(targets),
    ).fetchall()


def _fan_out(
    conn: sqlite3.Connection,
    seq: int,
    prio: int,
    chats: Sequence[Chat],
    texts: dict[str, str],
    now_ms: int,
) -> int:
    with _transaction(conn):
        conn.executemany(
            "INSERT INTO telegram_messages (seq, language, text) VALUES (?, ?, ?) "
            "ON CONFLICT (seq, language) DO NOTHING",
            [(seq, language, text) for language, text in texts.items()],
        )
        before = conn.total_changes
        conn.executemany(
            "INSERT INTO telegram_deliveries (seq, chat_id, language, priority, status, "
            "next_at_ms, created_at_ms) VALUES (?, ?, ?, ?, 'pending', ?, ?) "
            "ON CONFLICT (seq, chat_id) DO NOTHING",
            [(seq, chat.chat_id, chat.language, prio, now_ms, now_ms) for chat in chats],
        )
        return conn.total_changes - before


def _due(
    conn: sqlite3.Connection, now_ms: int, exclude: Sequence[int], limit: int
) -> list[Delivery]:
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS busy_chats (chat_id INTEGER PRIMARY KEY)")
    conn.execute("DELETE FROM busy_chats")
    conn.executemany("INSERT OR IGNORE INTO busy_chats VALUES (?)", [(c,) for c in exclude])
    rows = conn.execute(
        "WITH heads AS (SELECT d.seq, d.chat_id, d.language, d.priority, d.attempts, "
        "d.next_at_ms, d.probe_from, ROW_NUMBER() OVER (PARTITION BY d.chat_id "
        "ORDER BY d.priority DESC, d.seq) AS n FROM telegram_deliveries d "
        "WHERE d.status = 'pending' AND d.chat_id NOT IN (SELECT chat_id FROM busy_chats)) "
        "SELECT h.seq, h.chat_id, COALESCE(c.kind, 'private'), h.priority, h.attempts, m.text, "
        "h.probe_from "
        "FROM heads h LEFT JOIN bot_chats c ON c.chat_id = h.chat_id "
        "JOIN telegram_messages m ON m.seq = h.seq AND m.language = h.language "
        "WHERE h.n = 1 AND h.next_at_ms <= ? ORDER BY h.priority DESC, h.seq, h.chat_id "
        "LIMIT ?",
        (now_ms, limit),
    ).fetchall()
    return [Delivery(*row) for row in rows]


def _fail_chat(conn: sqlite3.Connection, chat_id: int, error: str, now_ms: int) -> int:
    with _transaction(conn):
        cursor = conn.execute(
            "UPDATE telegram_deliveries SET status = 'failed', last_error = ?, done_at_ms = ? "
            "WHERE chat_id = ? AND status = 'pending'",
            (error, now_ms, chat_id),
        )
    return cursor.rowcount


# Columns added after the first release: a state file made before them gets them on open.
ADDED_COLUMNS = {"telegram_deliveries": ("probe_from INTEGER", "message_id INTEGER")}


def _add_columns(conn: sqlite3.Connection) -> None:
    for table, columns in ADDED_COLUMNS.items():
        present = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        for column in columns:
            if column.split()[0] not in present:
                conn.execute(f"ALTER TABLE {table} ADD COLUMN {column}")


def _floors(conn: sqlite3.Connection) -> list[Any]:
    return conn.execute(
        "SELECT CASE WHEN chat_id <= ? THEN chat_id ELSE 0 END AS space, MAX(message_id) "
        "FROM telegram_deliveries WHERE message_id IS NOT NULL GROUP BY space",
        (CHANNEL_ID_BELOW,),
    ).fetchall()


def _migrate_chat(conn: sqlite3.Connection, old_id: int, new_id: int, now_ms: int) -> None:
    with _transaction(conn):
        conn.execute(
            "INSERT INTO bot_chats (chat_id, kind, language, active, dispatch, muted_until_ms, "
            "created_at_ms, updated_at_ms) SELECT ?, 'supergroup', language, active, dispatch, "
            "muted_until_ms, created_at_ms, ? FROM bot_chats WHERE chat_id = ? "
            "ON CONFLICT (chat_id) DO UPDATE SET dispatch = MAX(dispatch, excluded.dispatch), "
            "active = 1, updated_at_ms = excluded.updated_at_ms",
            (new_id, now_ms, old_id),
        )
        conn.execute(
            "INSERT OR IGNORE INTO bot_subscriptions (chat_id, target, station_id, river, "
            "min_severity, created_at_ms) SELECT ?, target, station_id, river, min_severity, "
            "created_at_ms FROM bot_subscriptions WHERE chat_id = ?",
            (new_id, old_id),
        )
        conn.execute(
            "INSERT OR IGNORE INTO telegram_deliveries (seq, chat_id, language, priority, "
            "status, attempts, next_at_ms, created_at_ms) SELECT seq, ?, language, priority, "
            "'pending', attempts, next_at_ms, created_at_ms FROM telegram_deliveries "
            "WHERE chat_id = ? AND status = 'pending'",
            (new_id, old_id),
        )
        conn.execute(
            "UPDATE telegram_deliveries SET status = 'failed', done_at_ms = ?, "
            "last_error = ? WHERE chat_id = ? AND status = 'pending'",
            (now_ms, f"migrated to {new_id}", old_id),
        )
        conn.execute("DELETE FROM bot_subscriptions WHERE chat_id = ?", (old_id,))
        conn.execute(
            "UPDATE bot_chats SET active = 0, updated_at_ms = ? WHERE chat_id = ?",
            (now_ms, old_id),
        )
