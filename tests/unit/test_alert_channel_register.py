"""AlertStore.register_channel: a channel that starts at the outbox's end."""

from __future__ import annotations

from pathlib import Path

from alerts.store import AlertStore
from tests.harness.alert_events import event, state_after


async def test_registered_channel_starts_at_the_end(tmp_path: Path) -> None:
    store = AlertStore(tmp_path / "state.sqlite")
    await store.open()
    try:
        old = [event("gauge-000", minutes=i) for i in range(3)]
        for item in old:
            await store.commit(item.station_id, state_after([item]), [item])
        first = await store.register_channel("telegram")
        assert first == 4
        assert await store.pending("telegram") == []
        assert len(await store.pending("mqtt")) == 3  # unregistered channels: everything
        new = event("gauge-000", minutes=10)
        await store.commit(new.station_id, state_after([new]), [new])
        assert [item.seq for item in await store.pending("telegram")] == [4]
    finally:
        await store.close()
    # Registered once: a restart (a new store object) keeps the same start.
    again = AlertStore(tmp_path / "state.sqlite")
    await again.open()
    try:
        assert await again.register_channel("telegram") == 4
        assert [item.seq for item in await again.pending("telegram")] == [4]
    finally:
        await again.close()


async def test_registering_on_an_empty_outbox(tmp_path: Path) -> None:
    store = AlertStore(tmp_path / "state.sqlite")
    await store.open()
    try:
        assert await store.register_channel("telegram") == 1
        item = event("gauge-000")
        await store.commit(item.station_id, state_after([item]), [item])
        assert [i.seq for i in await store.pending("telegram")] == [1]
    finally:
        await store.close()
