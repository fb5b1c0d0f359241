"""The dispatcher's loop against a real outbox (SQLite) and scripted channels."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from alerts.channels.base import DeliveryFailed
from alerts.dispatch import Dispatcher
from alerts.events import EventKind
from alerts.store import AlertStore, OutboxItem
from tests.harness.alert_events import commit, event
from tests.harness.inprocess import wait_until


class ScriptedChannel:
    """Records what it confirmed; `failures` scripts what the next attempts do."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.confirmed: list[str] = []
        self.attempts = 0
        # Per attempt: None succeeds, an int fails after confirming that many, an
        # exception is raised as it is.
        self.failures: list[int | Exception | None] = []
        self.started = self.stopped = False

    async def start(self) -> None:
        self.started = True

    async def stop(self) -> None:
        self.stopped = True

    def health(self) -> dict[str, Any]:
        return {}

    async def deliver(self, items: Sequence[OutboxItem]) -> None:
        self.attempts += 1
        outcome = self.failures.pop(0) if self.failures else None
        if isinstance(outcome, Exception):
            raise outcome
        done = len(items) if outcome is None else outcome
        self.confirmed += [item.event.event_id for item in items[:done]]
        if outcome is not None:
            raise DeliveryFailed("scripted failure", done)


@pytest_asyncio.fixture
async def store(tmp_path: Path) -> AsyncIterator[AlertStore]:
    alert_store = AlertStore(tmp_path / "state.sqlite")
    await alert_store.open()
    yield alert_store
    await alert_store.close()


def dispatcher(store: AlertStore, *channels: ScriptedChannel, poll_s: float = 30) -> Dispatcher:
    return Dispatcher(store, channels, poll_s=poll_s, backoff_s=(0.01, 0.05))


EVENTS = [event(minutes=m) for m in range(3)]
IDS = [e.event_id for e in EVENTS]


async def test_items_are_delivered_in_order_and_marked(store: AlertStore) -> None:
    channel = ScriptedChannel("a")
    await commit(store, *EVENTS)
    running = dispatcher(store, channel)
    await running.start()
    try:
        await wait_until(lambda: channel.confirmed == IDS, 5, "delivery")
        await wait_until(_nothing_pending(store, "a"), 5, "the deliveries to be marked")
    finally:
        await running.stop()
    assert channel.started
    assert channel.stopped
    assert running.metrics.registry.get_sample_value(
        "floodwatch_alert_delivery_delivered_total", {"channel": "a"}
    ) == len(IDS)


async def test_wake_delivers_a_new_commit_without_waiting_for_the_poll(store: AlertStore) -> None:
    channel = ScriptedChannel("a")
    running = dispatcher(store, channel, poll_s=60)
    await running.start()
    try:
        await asyncio.sleep(0.1)  # the loop is idle now, waiting up to a minute
        await commit(store, EVENTS[0])
        running.wake()
        await wait_until(lambda: channel.confirmed == IDS[:1], 2, "a woken delivery")
    finally:
        await running.stop()


async def test_a_partial_delivery_marks_the_confirmed_prefix_and_retries_the_rest(
    store: AlertStore,
) -> None:
    channel = ScriptedChannel("a")
    channel.failures = [1, 0]
    await commit(store, *EVENTS)
    running = dispatcher(store, channel)
    await running.start()
    try:
        await wait_until(lambda: channel.confirmed == IDS, 5, "the rest after two failures")
        await wait_until(_nothing_pending(store, "a"), 5, "the deliveries to be marked")
    finally:
        await running.stop()
    assert channel.attempts == 3
    assert (
        running.metrics.registry.get_sample_value(
            "floodwatch_alert_delivery_failures_total", {"channel": "a"}
        )
        == 2
    )


async def test_a_failing_channel_does_not_hold_up_another(store: AlertStore) -> None:
    broken, working = ScriptedChannel("broken"), ScriptedChannel("working")
    broken.failures = [0] * 1000
    await commit(store, *EVENTS)
    running = dispatcher(store, broken, working)
    await running.start()
    try:
        await wait_until(lambda: working.confirmed == IDS, 5, "the working channel")
        healthy, details = running.health()
        assert healthy
        assert details["status"] == "degraded"
        assert details["channels"]["broken"]["status"] == "failing"
        assert details["channels"]["working"]["status"] == "ok"
        assert [item.seq for item in await store.pending("broken")] == [1, 2, 3]
    finally:
        await running.stop()
    assert broken.confirmed == []


async def test_a_channel_bug_is_retried_not_fatal(store: AlertStore) -> None:
    channel = ScriptedChannel("a")
    channel.failures = [RuntimeError("bug")]
    await commit(store, *EVENTS)
    running = dispatcher(store, channel)
    await running.start()
    try:
        await wait_until(lambda: channel.confirmed == IDS, 5, "delivery after the bug")
        assert running.health()[0]
    finally:
        await running.stop()


async def test_a_new_dispatcher_sends_only_what_was_not_marked(store: AlertStore) -> None:
    first = ScriptedChannel("a")
    await commit(store, EVENTS[0])
    running = dispatcher(store, first)
    await running.start()
    await wait_until(_nothing_pending(store, "a"), 5, "the first delivery")
    await running.stop()
    await commit(store, EVENTS[1], event("gauge-001", EventKind.OFFLINE, threshold=None))

    second = ScriptedChannel("a")
    restarted = dispatcher(store, second)
    await restarted.start()
    try:
        await wait_until(_nothing_pending(store, "a"), 5, "the pending deliveries")
    finally:
        await restarted.stop()
    assert first.confirmed == IDS[:1]
    assert second.confirmed == [IDS[1], "gauge-001:offline:-:1772366400000"]


def test_channel_names_must_be_unique(tmp_path: Path) -> None:
    store = AlertStore(tmp_path / "state.sqlite")
    with pytest.raises(ValueError, match="unique"):
        Dispatcher(store, [ScriptedChannel("a"), ScriptedChannel("a")])


def _nothing_pending(store: AlertStore, channel: str) -> Any:
    async def check() -> bool:
        return await store.pending(channel) == []

    return check
