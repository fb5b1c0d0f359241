"""Subscriptions and who hears what (telegram_bot/store.py), on a real SQLite file."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from alerts.events import EventKind
from floodwatch.models import utc_now
from telegram_bot.store import BotStore, event_severity, priority
from tests.unit.alert_samples import KHABAROVSK, MAINZ, ref, sample_event

WARNING_RUNG = ref(MAINZ.levels[0])  # mark I, warning
DANGER_RUNG = ref(MAINZ.levels[1])  # mark II, danger


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[BotStore]:
    bot_store = BotStore(tmp_path / "state.sqlite")
    await bot_store.open()
    yield bot_store
    await bot_store.close()


def escalation(rung: object = WARNING_RUNG, station: object = MAINZ) -> object:
    return sample_event(EventKind.ESCALATION, station, threshold=rung)  # type: ignore[arg-type]


async def ids(store: BotStore, event: object, station: object = MAINZ) -> list[int]:
    chats = await store.recipients(event, station, utc_now())  # type: ignore[arg-type]
    return [chat.chat_id for chat in chats]


async def test_chat_round_trip_and_reactivation(store: BotStore) -> None:
    chat = await store.upsert_chat(1, "private", "ru")
    assert (chat.chat_id, chat.kind, chat.language, chat.active, chat.dispatch) == (
        1,
        "private",
        "ru",
        True,
        False,
    )
    await store.set_language(1, "en")
    await store.set_dispatch(1, True)
    until = utc_now() + timedelta(hours=1)
    await store.mute(1, until)
    await store.deactivate(1)
    stored = await store.chat(1)
    assert stored is not None
    assert (stored.language, stored.dispatch, stored.active) == ("en", True, False)
    assert stored.muted_until is not None
    assert abs((stored.muted_until - until).total_seconds()) < 0.01
    again = await store.upsert_chat(1, "private", "en")
    assert again.active
    assert await store.chat(2) is None


async def test_subscribe_replaces_same_target_and_unsubscribes(store: BotStore) -> None:
    await store.upsert_chat(1, "private", "en")
    await store.subscribe(1, station_id="rhein-mainz", min_severity="watch")
    await store.subscribe(1, station_id="rhein-mainz", min_severity="danger")
    await store.subscribe(1, river="Rhine")
    await store.subscribe(1)
    subs = await store.subscriptions(1)
    assert [(s.station_id, s.river, s.min_severity) for s in subs] == [
        ("rhein-mainz", None, "danger"),
        (None, "Rhine", "warning"),
        (None, None, "warning"),
    ]
    assert await store.unsubscribe(1, river="Rhine")
    assert not await store.unsubscribe(1, river="Rhine")
    assert len(await store.subscriptions(1)) == 2
    with pytest.raises(ValueError, match="min_severity"):
        await store.subscribe(1, min_severity="loud")
    with pytest.raises(ValueError, match="not both"):
        await store.subscribe(1, station_id="x", river="y")


async def test_recipients_by_station_river_all_and_severity(store: BotStore) -> None:
    river = MAINZ.river["en"]
    for chat_id in range(1, 8):
        await store.upsert_chat(chat_id, "private", "en")
    await store.subscribe(1, station_id="rhein-mainz", min_severity="warning")
    await store.subscribe(2, station_id="rhein-mainz", min_severity="danger")
    await store.subscribe(3, river=river, min_severity="watch")
    await store.subscribe(4)  # everything, warning and up
    await store.subscribe(5, station_id="amur-khabarovsk", min_severity="watch")
    await store.subscribe(6, river="Amur", min_severity="watch")
    await store.subscribe(7, station_id="rhein-mainz")
    await store.subscribe(7, river=river)  # two matching subscriptions: one message
    await store.deactivate(7)
    assert await ids(store, escalation(WARNING_RUNG)) == [1, 3, 4]
    assert await ids(store, escalation(DANGER_RUNG)) == [1, 2, 3, 4]
    await store.upsert_chat(7, "private", "en")  # writes again: active again
    assert await ids(store, escalation(DANGER_RUNG)) == [1, 2, 3, 4, 7]
    amur = sample_event(EventKind.ESCALATION, KHABAROVSK, threshold=ref(KHABAROVSK.levels[0]))
    assert await ids(store, amur, KHABAROVSK) == [4, 5, 6]


@pytest.mark.parametrize(
    ("kind", "fields", "expected"),
    [
        # Closing events go to whoever heard the rung they close.
        (EventKind.ALL_CLEAR, {"previous": DANGER_RUNG, "threshold": None}, [1, 2]),
        (EventKind.ALL_CLEAR, {"previous": WARNING_RUNG, "threshold": None}, [1]),
        # As the state machine words it: the rung left is the threshold.
        (EventKind.ALL_CLEAR, {"previous": None, "threshold": DANGER_RUNG}, [1, 2]),
        (EventKind.DEESCALATION, {"previous": DANGER_RUNG, "threshold": WARNING_RUNG}, [1, 2]),
        (EventKind.PREWARNING_WITHDRAWN, {"threshold": DANGER_RUNG}, [1, 2]),
        (EventKind.PREWARNING, {"threshold": WARNING_RUNG}, [1]),
        # A rapid rise with no rung counts as watch.
        (EventKind.RAPID_RISE, {"threshold": None}, [3]),
    ],
)
async def test_recipients_of_closing_and_other_events(
    store: BotStore, kind: EventKind, fields: dict[str, object], expected: list[int]
) -> None:
    for chat_id, severity in ((1, "warning"), (2, "danger"), (3, "watch")):
        await store.upsert_chat(chat_id, "private", "en")
        await store.subscribe(chat_id, station_id="rhein-mainz", min_severity=severity)
    event = replace(sample_event(kind, MAINZ), **fields)  # type: ignore[arg-type]
    got = await ids(store, event)
    assert set(expected) <= set(got)
    assert set(got) - set(expected) <= {3}  # watch subscribers hear everything
    if kind is not EventKind.RAPID_RISE:
        assert 3 in got


async def test_muted_chats_get_only_danger(store: BotStore) -> None:
    await store.upsert_chat(1, "private", "en")
    await store.subscribe(1, min_severity="watch")
    await store.mute(1, utc_now() + timedelta(hours=2))
    assert await ids(store, escalation(WARNING_RUNG)) == []
    assert await ids(store, escalation(DANGER_RUNG)) == [1]
    closing = replace(
        sample_event(EventKind.ALL_CLEAR, MAINZ), previous=DANGER_RUNG, threshold=None
    )
    assert await ids(store, closing) == [1]
    await store.mute(1, utc_now() - timedelta(seconds=1))  # the mute is over
    assert await ids(store, escalation(WARNING_RUNG)) == [1]
    await store.mute(1, None)
    assert await ids(store, escalation(WARNING_RUNG)) == [1]


@pytest.mark.parametrize("kind", [k for k in EventKind if k.operator_only])
async def test_operator_events_only_to_dispatch_chats(store: BotStore, kind: EventKind) -> None:
    await store.upsert_chat(1, "private", "en")
    await store.subscribe(1, min_severity="watch")
    await store.upsert_chat(-100, "supergroup", "ru")
    await store.subscribe(-100, river=MAINZ.river["en"], min_severity="danger")
    await store.set_dispatch(-100, True)
    await store.upsert_chat(-200, "group", "en")  # dispatch, but not subscribed here
    await store.subscribe(-200, station_id="amur-khabarovsk")
    await store.set_dispatch(-200, True)
    event = sample_event(kind, MAINZ)
    assert event_severity(event) is None
    assert priority(event) == 0
    assert await ids(store, event) == [-100]


def test_priority_order() -> None:
    assert priority(escalation(DANGER_RUNG)) > priority(escalation(WARNING_RUNG))  # type: ignore[arg-type]
    watch = replace(ref(MAINZ.levels[0]), severity="watch")
    assert priority(escalation(WARNING_RUNG)) > priority(escalation(watch)) > 0  # type: ignore[arg-type]
    clear = replace(sample_event(EventKind.ALL_CLEAR, MAINZ), previous=DANGER_RUNG)
    assert priority(clear) == 0


async def test_message_id_floors_per_id_space(store: BotStore) -> None:
    chats = [
        await store.upsert_chat(1, "private", "en"),
        await store.upsert_chat(2, "private", "en"),
        await store.upsert_chat(-1_001_000_000_001, "supergroup", "en"),
    ]
    await store.fan_out(1, 3, chats, {"en": "<b>danger</b>"})
    assert await store.message_id_floors() == {}
    await store.mark_sent(1, 1, 17)
    await store.mark_sent(1, 2, 12)
    await store.mark_sent(1, -1_001_000_000_001, 4)
    assert await store.message_id_floors() == {0: 17, -1_001_000_000_001: 4}


async def test_send_in_doubt_until_answered(store: BotStore) -> None:
    chat = await store.upsert_chat(1, "private", "en")
    await store.fan_out(1, 3, [chat], {"en": "alert"})
    [row] = await store.due(utc_now(), [], 10)
    assert row.probe_from is None
    await store.mark_sending(1, 1, 41)
    [row] = await store.due(utc_now(), [], 10)
    assert row.probe_from == 41  # a crash now leaves it in doubt
    later = utc_now() - timedelta(seconds=1)
    await store.mark_retry(1, 1, "timeout", later, in_doubt=True)
    [row] = await store.due(utc_now(), [], 10)
    assert row.probe_from == 41  # no answer: still in doubt
    await store.mark_retry(1, 1, "429", later, count=False)
    [row] = await store.due(utc_now(), [], 10)
    assert row.probe_from is None  # Telegram answered "no": not sent, nothing to settle
    await store.mark_sending(1, 1, None)
    [row] = await store.due(utc_now(), [], 10)
    assert row.probe_from == -1


async def test_old_state_file_gets_the_new_columns(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    conn = sqlite3.connect(path)
    conn.execute(
        "CREATE TABLE telegram_deliveries (seq INTEGER NOT NULL, chat_id INTEGER NOT NULL, "
        "language TEXT NOT NULL, priority INTEGER NOT NULL, status TEXT NOT NULL, "
        "attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT, next_at_ms INTEGER NOT NULL, "
        "created_at_ms INTEGER NOT NULL, done_at_ms INTEGER, PRIMARY KEY (seq, chat_id)) "
        "WITHOUT ROWID"
    )
    conn.execute(
        "INSERT INTO telegram_deliveries (seq, chat_id, language, priority, status, "
        "next_at_ms, created_at_ms) VALUES (1, 1, 'en', 3, 'pending', 0, 0)"
    )
    conn.commit()
    conn.close()
    store = BotStore(path)
    await store.open()
    try:
        await store.mark_sent(1, 1, 5)
        assert await store.message_id_floors() == {0: 5}
    finally:
        await store.close()
    # Opening again finds the columns there and changes nothing.
    store = BotStore(path)
    await store.open()
    await store.close()


async def test_migrate_chat_moves_everything_pending(store: BotStore) -> None:
    old, new = -4001, -1_004_001_000_000
    chat = await store.upsert_chat(old, "group", "ru")
    await store.subscribe(old, river="Rhine", min_severity="watch")
    await store.set_dispatch(old, True)
    await store.fan_out(1, 2, [chat], {"ru": "тревога"})
    await store.fan_out(2, 2, [chat], {"ru": "ещё"})
    await store.mark_sent(1, old, 9)
    await store.migrate_chat(old, new)
    moved = await store.chat(new)
    assert moved is not None
    assert (moved.kind, moved.language, moved.dispatch, moved.active) == (
        "supergroup",
        "ru",
        True,
        True,
    )
    assert [(s.river, s.min_severity) for s in await store.subscriptions(new)] == [
        ("Rhine", "watch")
    ]
    assert await store.subscriptions(old) == []
    due = await store.due(utc_now(), [], 10)
    assert [(d.seq, d.chat_id, d.text) for d in due] == [(2, new, "ещё")]  # not the sent one
    counts = await store.delivery_counts()
    assert counts == {"sent": 1, "failed": 1, "pending": 1}
