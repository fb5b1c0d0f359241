"""Durable delivery end to end: a real outbox (SQLite), real Mosquitto, real InfluxDB."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from alerts.channels.influx import InfluxChannel
from alerts.channels.metrics import DispatchMetrics
from alerts.channels.mqtt import MqttChannel
from alerts.channels.texts import EventTexts
from alerts.dispatch import Dispatcher
from alerts.events import EventKind
from alerts.store import AlertStore
from floodwatch import topics
from floodwatch.catalog import Catalog, load_catalog
from floodwatch.errors import StoreUnavailable
from floodwatch.settings import MqttEndpoint
from floodwatch.storage.base import ReadingStore
from floodwatch.storage.influx import InfluxStore
from tests.harness.alert_events import DANGER, T0, commit, event
from tests.harness.gauges import write_catalog
from tests.harness.influx import InfluxServer, store_for
from tests.harness.inprocess import wait_until
from tests.harness.listener import Listener, Message
from tests.harness.mosquitto import MosquittoServer

pytestmark = pytest.mark.integration

ALERTS = "floodwatch/alerts/#"


@pytest_asyncio.fixture
async def store(tmp_path: Path) -> AsyncIterator[AlertStore]:
    alert_store = AlertStore(tmp_path / "state.sqlite")
    await alert_store.open()
    yield alert_store
    await alert_store.close()


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    path = tmp_path / "stations.yaml"
    write_catalog(path, 3)
    return load_catalog(path)


def make_dispatcher(
    store: AlertStore,
    catalog: Catalog,
    broker: MosquittoServer,
    readings: ReadingStore,
    *,
    name: str = "alerts-out",
) -> Dispatcher:
    texts = EventTexts(lambda: catalog)
    mqtt = MqttChannel(
        MqttEndpoint.parse(broker.url),
        name,
        texts=texts,
        catalog_source=lambda: catalog,
        states=store.load_states,
        confirm_timeout_s=2.0,
    )
    metrics = DispatchMetrics()
    influx = InfluxChannel(readings, texts, metrics)
    return Dispatcher(store, [mqtt, influx], metrics=metrics, backoff_s=(0.1, 1.0))


@contextlib.asynccontextmanager
async def running(dispatcher: Dispatcher) -> AsyncIterator[Dispatcher]:
    await dispatcher.start()
    try:
        yield dispatcher
    finally:
        await dispatcher.stop()


def events_on(messages: list[Message]) -> Counter[str]:
    """How often each event id arrived on floodwatch/alerts/{id}."""
    return Counter(
        m.json()["event_id"]
        for m in messages
        if topics.station_from_topic(m.topic, "alerts") is not None
    )


def nothing_pending(store: AlertStore, channel: str) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return await store.pending(channel) == []

    return check


async def stored_ids(readings: ReadingStore) -> list[str]:
    window = (T0 - timedelta(days=1), T0 + timedelta(days=1))
    return [record.event_id for record in await readings.query_alert_events(None, *window)]


async def test_committed_events_reach_mqtt_once_and_influxdb(
    store: AlertStore, catalog: Catalog, mosquitto: MosquittoServer, influx_store: InfluxStore
) -> None:
    events = [
        event("gauge-000", EventKind.PREWARNING, 0, threshold=DANGER, expected_in_h=5),
        event("gauge-000", EventKind.ESCALATION, 10),
        event("gauge-001", EventKind.OFFLINE, 20, threshold=None, level=None, detail="2 h"),
    ]
    await commit(store, *events)
    endpoint = MqttEndpoint.parse(mosquitto.url)
    async with (
        Listener(endpoint, ALERTS, client_id="alert-listener") as listener,
        running(make_dispatcher(store, catalog, mosquitto, influx_store)),
    ):
        await listener.wait_for(lambda ms: len(events_on(ms)) == 3, 10, "three alert messages")
        await wait_until(nothing_pending(store, "mqtt"), 5, "MQTT deliveries marked")
        await wait_until(nothing_pending(store, "influx"), 10, "InfluxDB deliveries marked")
        pictures = {topics.alert_current(f"gauge-00{n}") for n in range(3)}
        await listener.wait_for(
            lambda ms: pictures <= {m.topic for m in ms}, 10, "every gauge's current picture"
        )
        await asyncio.sleep(0.3)  # time for any stray repeat to arrive

    assert events_on(listener.messages) == {e.event_id: 1 for e in events}
    messages = [m for m in listener.messages if not m.topic.endswith("/current")]
    assert [m.topic for m in messages] == [topics.alert(e.station_id) for e in events]
    escalation = messages[1].json()
    assert escalation["kind"] == "escalation"
    assert escalation["severity"] == "watch"
    assert escalation["operator_only"] is False
    assert escalation["threshold"]["key"] == "watch"
    assert "Gauge gauge-000" in escalation["text"]["en"]
    assert "Пост gauge-000" in escalation["text"]["ru"]
    assert messages[2].json()["operator_only"] is True

    current = {m.topic: m.json() for m in listener.messages if m.topic.endswith("/current")}
    picture = current[topics.alert_current("gauge-000")]
    assert picture["level"]["key"] == "watch"
    assert picture["level"]["severity"] == "watch"
    assert picture["prewarning"]["key"] == "danger"
    assert current[topics.alert_current("gauge-001")]["offline"] is True
    assert current[topics.alert_current("gauge-002")]["level"] is None

    records = await influx_store.query_alert_events(
        None, T0 - timedelta(hours=1), T0 + timedelta(hours=1)
    )
    assert [r.event_id for r in records] == [e.event_id for e in events]
    assert records[1].severity == "watch"
    assert records[1].threshold == 400.0
    assert records[1].title.startswith("Flood watch")
    assert "\n" not in records[1].text
    assert records[2].severity is None


async def test_a_restart_sends_nothing_marked_and_what_was_pending_exactly_once(
    store: AlertStore, catalog: Catalog, mosquitto: MosquittoServer, influx_store: InfluxStore
) -> None:
    first, second = event(minutes=0), event("gauge-001", minutes=1)
    endpoint = MqttEndpoint.parse(mosquitto.url)
    async with Listener(endpoint, ALERTS, client_id="alert-listener") as listener:
        await commit(store, first)
        async with running(make_dispatcher(store, catalog, mosquitto, influx_store)):
            await listener.wait_for(lambda ms: first.event_id in events_on(ms), 10, "the first")
            await wait_until(nothing_pending(store, "mqtt"), 5, "the first delivery marked")
        await commit(store, second)  # pending while the dispatcher is down

        async with running(make_dispatcher(store, catalog, mosquitto, influx_store)):
            await listener.wait_for(lambda ms: second.event_id in events_on(ms), 10, "the second")
            await wait_until(nothing_pending(store, "mqtt"), 5, "the second delivery marked")
            await wait_until(nothing_pending(store, "influx"), 10, "InfluxDB deliveries marked")
            await asyncio.sleep(0.5)

    assert events_on(listener.messages) == {first.event_id: 1, second.event_id: 1}
    assert await stored_ids(influx_store) == [first.event_id, second.event_id]


class CrashBeforeMarking(AlertStore):
    """A process that dies between the broker's PUBACK and recording the delivery."""

    async def mark_delivered(self, channel: str, seqs: Any) -> None:
        raise StoreUnavailable("simulated crash before the delivery was recorded")


async def test_a_delivery_not_recorded_before_a_crash_is_repeated_with_its_event_id(
    tmp_path: Path, catalog: Catalog, mosquitto: MosquittoServer, influx_store: InfluxStore
) -> None:
    crashing = CrashBeforeMarking(tmp_path / "state.sqlite")
    await crashing.open()
    sent = event()
    await commit(crashing, sent)
    endpoint = MqttEndpoint.parse(mosquitto.url)
    async with Listener(endpoint, ALERTS, client_id="alert-listener") as listener:
        async with running(make_dispatcher(crashing, catalog, mosquitto, influx_store)):
            await listener.wait_for(lambda ms: sent.event_id in events_on(ms), 10, "the event")
        await crashing.close()

        store = AlertStore(tmp_path / "state.sqlite")
        await store.open()
        try:
            async with running(make_dispatcher(store, catalog, mosquitto, influx_store)):
                await wait_until(nothing_pending(store, "mqtt"), 10, "the repeat marked")
                await wait_until(nothing_pending(store, "influx"), 10, "InfluxDB marked")
        finally:
            await store.close()

    # The one repeat the design allows: same event id, so consumers drop it; InfluxDB
    # keeps one point.
    assert events_on(listener.messages) == {sent.event_id: 2}
    assert await stored_ids(influx_store) == [sent.event_id]


async def test_while_the_broker_is_down_events_wait_and_go_out_when_it_returns(
    store: AlertStore, catalog: Catalog, mosquitto: MosquittoServer, influx_store: InfluxStore
) -> None:
    endpoint = MqttEndpoint.parse(mosquitto.url)
    # A persistent session: the broker queues what arrives while the listener is away.
    listener = Listener(endpoint, ALERTS, client_id="alert-listener", persistent=True)
    await listener.start()
    dispatcher = make_dispatcher(store, catalog, mosquitto, influx_store)
    try:
        async with running(dispatcher):
            await asyncio.sleep(0.5)
            mosquitto.stop()
            during = [event(minutes=m) for m in range(3)]
            await commit(store, *during)
            dispatcher.wake()
            # InfluxDB does not wait for the broker.
            await wait_until(nothing_pending(store, "influx"), 10, "InfluxDB deliveries")
            await asyncio.sleep(1.5)
            assert len(await store.pending("mqtt")) == 3
            assert dispatcher.health()[1]["channels"]["mqtt"]["status"] == "failing"

            mosquitto.start()
            await listener.wait_for(lambda ms: len(events_on(ms)) == 3, 40, "the held events")
            await wait_until(nothing_pending(store, "mqtt"), 10, "the deliveries marked")
            await wait_until(lambda: dispatcher.health()[1]["status"] == "ok", 5, "recovery")
            await asyncio.sleep(0.5)
    finally:
        listener.stop()

    assert events_on(listener.messages) == {e.event_id: 1 for e in during}
    in_order = [m.json()["event_id"] for m in listener.messages if "/current" not in m.topic]
    assert in_order == [e.event_id for e in during]


async def test_while_influxdb_is_down_it_is_retried_and_mqtt_is_unaffected(
    tmp_path: Path, store: AlertStore, catalog: Catalog, mosquitto: MosquittoServer
) -> None:
    server = InfluxServer(tmp_path / "influxd").start()
    readings = store_for(server, "alerts", retry_delays=(0.05,), timeout_s=2.0)
    await readings.open()
    endpoint = MqttEndpoint.parse(mosquitto.url)
    dispatcher = make_dispatcher(store, catalog, mosquitto, readings)
    try:
        async with (
            Listener(endpoint, ALERTS, client_id="alert-listener") as listener,
            running(dispatcher),
        ):
            server.stop()
            held = event(minutes=5)
            await commit(store, held)
            dispatcher.wake()
            await listener.wait_for(lambda ms: held.event_id in events_on(ms), 5, "MQTT")
            await wait_until(nothing_pending(store, "mqtt"), 5, "the MQTT delivery marked")
            await wait_until(
                lambda: dispatcher.health()[1]["channels"]["influx"]["status"] == "failing",
                10,
                "the InfluxDB channel to fail",
            )
            assert [item.event.event_id for item in await store.pending("influx")] == [
                held.event_id
            ]

            server.start()
            await wait_until(nothing_pending(store, "influx"), 40, "the InfluxDB retry")
            assert await stored_ids(readings) == [held.event_id]
            failures = dispatcher.metrics.registry.get_sample_value(
                "floodwatch_alert_delivery_failures_total", {"channel": "influx"}
            )
            assert failures is not None
            assert failures >= 1
    finally:
        await readings.close()
        server.stop()
