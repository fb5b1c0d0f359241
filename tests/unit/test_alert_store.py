"""The alert state store against a real SQLite file: atomic commits, idempotent events,
per-channel delivery, newest-first listings, overrides with their audit trail."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from alerts.events import AlertEvent, EventKind, make_event_id
from alerts.gauge_state import GaugeState
from alerts.store import AlertStore, AuditEntry, StaleChange
from floodwatch.errors import StoreUnavailable

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def event(station_id: str, minute: int, kind: EventKind = EventKind.ESCALATION) -> AlertEvent:
    at = T0 + timedelta(minutes=minute)
    return AlertEvent(
        event_id=make_event_id(station_id, kind, "watch", at),
        station_id=station_id,
        kind=kind,
        at=at,
        level=400.0 + minute,
        unit="cm",
    )


def state(level: float, active: str | None = "watch") -> GaugeState:
    return GaugeState(active=active, since=T0, last_level=level, last_at=T0)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[AlertStore]:
    opened = AlertStore(tmp_path / "state.sqlite")
    await opened.open()
    yield opened
    await opened.close()


async def test_commit_stores_state_and_events_and_reloads_them(
    store: AlertStore, tmp_path: Path
) -> None:
    items = await store.commit("g1", state(410), [event("g1", 0), event("g1", 1)])
    assert [item.event.event_id for item in items] == [
        event("g1", 0).event_id,
        event("g1", 1).event_id,
    ]
    assert items[0].seq < items[1].seq
    await store.close()
    reopened = AlertStore(tmp_path / "state.sqlite")
    await reopened.open()
    try:
        assert await reopened.load_states() == {"g1": state(410)}
        pending = await reopened.pending("mqtt")
        assert [item.event for item in pending] == [event("g1", 0), event("g1", 1)]
        assert pending[0].created_at.tzinfo is not None
    finally:
        await reopened.close()
    await store.open()  # for the fixture's close


async def test_commit_is_atomic_when_an_event_insert_fails(
    store: AlertStore, tmp_path: Path
) -> None:
    await store.commit("g1", state(390, active=None), [])
    # A real failure in the middle of the transaction: the state row is already written
    # when the second event's insert is refused.
    bad = event("g1", 1)
    with sqlite3.connect(tmp_path / "state.sqlite") as conn:
        conn.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON alert_outbox "
            f"WHEN NEW.event_id = '{bad.event_id}' BEGIN SELECT RAISE(ABORT, 'disk full'); END"
        )
    with pytest.raises(StoreUnavailable, match="disk full"):
        await store.commit("g1", state(420), [event("g1", 0), bad])
    assert await store.load_states() == {"g1": state(390, active=None)}
    assert await store.recent_events() == []


async def test_an_event_id_already_stored_is_skipped(store: AlertStore) -> None:
    first = await store.commit("g1", state(410), [event("g1", 0)])
    again = await store.commit("g1", state(411), [event("g1", 0), event("g1", 5)])
    assert len(first) == 1
    assert [item.event.event_id for item in again] == [event("g1", 5).event_id]
    assert len(await store.recent_events()) == 2
    assert (await store.load_states())["g1"] == state(411)


async def test_pending_and_delivery_are_per_channel(store: AlertStore) -> None:
    items = await store.commit("g1", state(410), [event("g1", m) for m in range(5)])
    seqs = [item.seq for item in items]
    await store.mark_delivered("mqtt", seqs[:3])
    await store.mark_delivered("mqtt", seqs[:1])  # marking twice is harmless
    assert [item.seq for item in await store.pending("mqtt")] == seqs[3:]
    assert [item.seq for item in await store.pending("influx")] == seqs
    assert [item.seq for item in await store.pending("influx", limit=2)] == seqs[:2]
    # A delivery out of order does not hide the older item still pending.
    await store.mark_delivered("influx", [seqs[1]])
    assert [item.seq for item in await store.pending("influx")] == [seqs[0], *seqs[2:]]
    await store.mark_delivered("mqtt", seqs[3:])
    assert await store.pending("mqtt") == []
    later = await store.commit("g2", state(500), [event("g2", 9)])
    assert [item.seq for item in await store.pending("mqtt")] == [later[0].seq]
    # A channel seen for the first time gets every event, the oldest first.
    assert [item.seq for item in await store.pending("telegram")] == [*seqs, later[0].seq]


async def test_recent_events_newest_first_and_per_station(store: AlertStore) -> None:
    await store.commit("g1", state(410), [event("g1", 0)])
    await store.commit("g2", state(410), [event("g2", 1)])
    await store.commit("g1", state(420), [event("g1", 2)])
    newest = await store.recent_events()
    assert [item.event.at.minute for item in newest] == [2, 1, 0]
    assert [item.event.station_id for item in await store.recent_events(station_id="g1")] == [
        "g1",
        "g1",
    ]
    assert len(await store.recent_events(limit=1)) == 1


def change(field: str, old: str | None, new: str | None, by: str = "anna") -> AuditEntry:
    return AuditEntry(T0, by, "g1", field, old, new)


async def test_overrides_audit_and_version(store: AlertStore) -> None:
    assert await store.overrides() == {}
    assert await store.changes_version() == 0
    await store.record_change(change("levels.watch.value", "400", "380"))
    first = await store.changes_version()
    await store.record_changes(
        [change("clear_margin", "0", "5", by="bob"), change("maintenance", "off", "on", by="bob")]
    )
    assert await store.changes_version() > first
    assert await store.overrides() == {
        "g1": {"levels": {"watch": 380.0}, "clear_margin": 5.0, "maintenance": True}
    }
    await store.record_change(change("levels.watch.value", "380", None))  # back to the catalog
    assert await store.overrides() == {"g1": {"clear_margin": 5.0, "maintenance": True}}
    audit = await store.audit()
    assert [(e.field, e.old, e.new, e.by) for e in audit] == [
        ("levels.watch.value", "380", None, "anna"),
        ("maintenance", "off", "on", "bob"),
        ("clear_margin", "0", "5", "bob"),
        ("levels.watch.value", "400", "380", "anna"),
    ]
    assert await store.audit("other") == []
    assert len(await store.audit("g1", limit=2)) == 2


async def test_a_change_checked_against_an_older_version_is_refused(store: AlertStore) -> None:
    version = await store.changes_version()
    await store.record_change(change("clear_margin", "0", "5"))
    with pytest.raises(StaleChange):
        await store.record_change(change("clear_margin", "0", "7"), if_version=version)
    assert await store.overrides() == {"g1": {"clear_margin": 5.0}}
    assert len(await store.audit()) == 1


async def test_ladder_fingerprint_is_kept_with_the_state(store: AlertStore) -> None:
    await store.commit("g1", state(410), [], ladder="abc")
    await store.commit("g1", state(411), [])  # without one, the last stays
    await store.commit("g2", state(411), [])
    assert await store.ladders() == {"g1": "abc"}
