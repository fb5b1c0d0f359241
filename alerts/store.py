"""The alert engine's durable state: gauge states, the outbox, deliveries, overrides, audit.

Tables live in the state SQLite file (WAL) beside the forecaster's models, so the CLI and
the bot can read and edit them while the engine runs. The outbox is the contract between
deciding and sending: an event is inserted in the same transaction as the state change
that produced it, and every channel ("mqtt", "influx", "telegram", ...) takes what it has
not delivered yet in `seq` order and records (channel, seq) once sent. A crash anywhere
loses nothing and, as the delivery record is written only after sending, re-sends at most
the one batch in flight (channels make that idempotent with the event id).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from alerts import store_sql as sql
from alerts.events import AlertEvent
from alerts.gauge_state import GaugeState
from floodwatch.errors import ConfigError
from floodwatch.models import from_epoch_ms, utc_now
from floodwatch.sqlite_thread import SQLiteThread


@dataclass(frozen=True, slots=True)
class OutboxItem:
    seq: int
    event: AlertEvent
    created_at: datetime


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One hydrologist's change; `new` None means the override was removed (back to the
    catalog value)."""

    at: datetime
    by: str
    station_id: str
    field: str  # levels.<key>.value | clear_margin | maintenance
    old: str | None
    new: str | None


class StaleChange(ConfigError):
    """Another edit was stored after the one being made was checked; check it again."""


class AlertStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = SQLiteThread(path, sql.SCHEMA, "alert-store")
        # Per channel, a seq below which everything is known to be delivered, so `pending`
        # does not walk the whole outbox history each time.
        self._floor: dict[str, int] = {}

    async def open(self) -> None:
        await self._db.open()

    async def close(self) -> None:
        await self._db.close()

    async def load_states(self) -> dict[str, GaugeState]:
        rows = await self._db.run(sql.select, "SELECT station_id, state FROM alert_state", ())
        return {sid: GaugeState.from_dict(orjson.loads(state)) for sid, state in rows}

    async def ladders(self) -> dict[str, str]:
        """The ladder fingerprint each stored state was last decided on."""
        query = "SELECT station_id, ladder FROM alert_state WHERE ladder IS NOT NULL"
        return dict(await self._db.run(sql.select, query, ()))

    async def commit(
        self,
        station_id: str,
        state: GaugeState,
        events: Sequence[AlertEvent],
        *,
        ladder: str | None = None,
    ) -> list[OutboxItem]:
        """Store the state and its events in one transaction; an event id already in the
        outbox is skipped. Returns the items added. `ladder` (optional) is kept with the
        state so a restart can tell whether the thresholds changed meanwhile."""
        state_json = orjson.dumps(state.to_dict()).decode()
        rows = [(e.event_id, e.station_id, orjson.dumps(e.to_dict()).decode()) for e in events]
        now = utc_now()
        seqs = await self._db.run(sql.commit, station_id, state_json, ladder, rows, _ms(now))
        return [
            OutboxItem(seq, event, now)
            for seq, event in zip(seqs, events, strict=True)
            if seq is not None
        ]

    async def pending(self, channel: str, limit: int = 500) -> list[OutboxItem]:
        """Events not yet delivered on `channel`, oldest first."""
        rows, floor = await self._db.run(sql.pending, channel, self._floor.get(channel, 0), limit)
        self._floor[channel] = max(floor, self._floor.get(channel, 0))
        return _items(rows)

    async def register_channel(self, channel: str) -> int:
        """For a channel that must not deliver the past (residents never get old alerts):
        the first time it is registered, everything already in the outbox counts as
        delivered on it. Returns the first seq it is responsible for; later calls return
        the same seq and only restore the in-memory floor. Channels that never call this
        (mqtt, influx) still take every event, as before."""
        first = await self._db.run(sql.register_channel, channel, _ms(utc_now()))
        self._floor[channel] = max(first, self._floor.get(channel, 0))
        return first

    async def mark_delivered(self, channel: str, seqs: Sequence[int]) -> None:
        now = _ms(utc_now())
        await self._db.run(sql.mark, [(channel, seq, now) for seq in seqs])

    async def recent_events(
        self, limit: int = 100, station_id: str | None = None
    ) -> list[OutboxItem]:
        """Newest first."""
        where, params = _station_filter(station_id)
        query = f"SELECT seq, event, created_at_ms FROM alert_outbox {where} ORDER BY seq DESC"
        return _items(await self._db.run(sql.select, f"{query} LIMIT ?", (*params, limit)))

    async def record_change(self, entry: AuditEntry, *, if_version: int | None = None) -> None:
        """Store the override `entry` describes and its audit row in one transaction.

        With `if_version`, refuse (StaleChange) if another change was stored since that
        version: the change was validated against overrides that no longer hold.
        """
        await self.record_changes([entry], if_version=if_version)

    async def record_changes(
        self, entries: Sequence[AuditEntry], *, if_version: int | None = None
    ) -> None:
        """Several changes (overrides and audit rows) in one transaction."""
        rows = [
            (
                (_ms(e.at), e.by, e.station_id, e.field, e.old, e.new),
                None if e.new is None else orjson.dumps(parse_override(e)).decode(),
            )
            for e in entries
        ]
        try:
            await self._db.run(sql.record_changes, rows, if_version)
        except sql.VersionMoved:
            raise StaleChange(
                "the thresholds were changed meanwhile; check and try again"
            ) from None

    async def audit(self, station_id: str | None = None, limit: int = 100) -> list[AuditEntry]:
        """Newest first."""
        where, params = _station_filter(station_id)
        query = (
            f"SELECT at_ms, by, station_id, field, old, new FROM alert_audit {where} "
            "ORDER BY id DESC LIMIT ?"
        )
        rows = await self._db.run(sql.select, query, (*params, limit))
        return [
            AuditEntry(from_epoch_ms(at), by, sid, f, old, new) for at, by, sid, f, old, new in rows
        ]

    async def overrides(self) -> dict[str, dict[str, Any]]:
        """Per station: {"levels": {key: value}, "clear_margin": x, "maintenance": bool},
        each key present only when overridden."""
        return (await self.snapshot())[0]

    async def changes_version(self) -> int:
        """Grows with every override write (the audit row's id), in any process."""
        return await self._db.run(sql.version)

    async def snapshot(self) -> tuple[dict[str, dict[str, Any]], int]:
        """Overrides and the version they belong to, read together."""
        return await self._db.run(sql.snapshot)


def parse_override(entry: AuditEntry) -> float | bool:
    """The typed override value an audit entry's `new` text stands for."""
    assert entry.new is not None
    if entry.field == "maintenance":
        return entry.new == "on"
    return float(entry.new)


def _ms(at: datetime) -> int:
    return round(at.timestamp() * 1000)


def _station_filter(station_id: str | None) -> tuple[str, tuple[Any, ...]]:
    return ("WHERE station_id = ?", (station_id,)) if station_id else ("", ())


def _items(rows: list[sql.OutboxRow]) -> list[OutboxItem]:
    return [
        OutboxItem(seq, AlertEvent.from_dict(orjson.loads(event)), from_epoch_ms(created))
        for seq, event, created in rows
    ]
