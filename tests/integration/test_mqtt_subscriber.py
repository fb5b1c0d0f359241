"""The shared subscriber shell (floodwatch/mqtt_subscriber.py) across a broker restart, seen
through the forecaster's feed: it reconnects, subscribes again on its clean session, and
sends only the newest forecast of each station held while the broker was away."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

import paho.mqtt.client as mqtt
import pytest
from prometheus_client import CollectorRegistry, Gauge

from collector.service import reading_payload
from floodwatch import topics
from floodwatch.guard import InternalError
from floodwatch.models import Reading
from floodwatch.mqtt_subscriber import Subscriber
from floodwatch.settings import Settings
from forecasting.feed import ForecastFeed
from forecasting.history import CleanReading
from forecasting.metrics import ForecasterMetrics
from tests.harness.inprocess import publish_raw, wait_until
from tests.harness.listener import Listener
from tests.harness.mosquitto import MosquittoServer

pytestmark = pytest.mark.integration

CONNECTED = "floodwatch_forecaster_mqtt_connected"


def _reading(level: float) -> tuple[str, bytes]:
    reading = Reading("g1", datetime(2026, 3, 1, 12, tzinfo=UTC), level)
    return topics.clean_reading("g1"), reading_payload(reading)


async def test_a_feed_resubscribes_after_a_broker_restart_and_sends_the_newest_held_forecasts(
    mosquitto: MosquittoServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    settings = Settings(mqtt_url=mosquitto.url, forecast_client_id="subscriber-feed")
    endpoint = settings.mqtt
    metrics = ForecasterMetrics()
    readings: list[CleanReading] = []
    feed = ForecastFeed(settings, metrics, readings.append)
    await feed.start()
    try:
        await feed.wait_subscribed()
        assert feed.connected
        assert metrics.registry.get_sample_value(CONNECTED) == 1
        await publish_raw(endpoint, [_reading(1.0)], client_id="subscriber-pub-1")
        await wait_until(lambda: len(readings) == 1, 10, "the first reading")

        await asyncio.to_thread(mosquitto.stop)
        await wait_until(lambda: not feed.connected, 10, "the feed to notice the broker left")
        assert metrics.registry.get_sample_value(CONNECTED) == 0
        feed.publish("g1", b'{"v": "old"}')
        feed.publish("g1", b'{"v": "new"}')
        feed.publish("g2", b'{"v": "g2"}')
        await asyncio.to_thread(mosquitto.start)

        # The SUBACK of the new connection, not a stale one: a reading published now arrives.
        await feed.wait_subscribed(30)
        assert feed.connected
        assert metrics.registry.get_sample_value(CONNECTED) == 1
        await publish_raw(endpoint, [_reading(2.0)], client_id="subscriber-pub-2")
        await wait_until(lambda: len(readings) == 2, 10, "the reading after the restart")
        assert [reading.level for reading in readings] == [1.0, 2.0]

        async with Listener(endpoint, topics.FORECASTS_FILTER, client_id="subscriber-l") as seen:
            got = await seen.wait_for(lambda m: len(m) >= 2, 10, "the held forecasts, retained")
        assert sorted((m.topic, m.payload, m.retain) for m in got) == [
            (topics.forecast("g1"), b'{"v": "new"}', True),
            (topics.forecast("g2"), b'{"v": "g2"}', True),
        ]
    finally:
        feed.stop()
    assert metrics.registry.get_sample_value(CONNECTED) == 0
    lost = [r for r in caplog.records if "lost broker" in r.getMessage()]
    # One warning for the restart, none for the feed's own stop; under the feed's logger.
    assert [r.name for r in lost] == ["forecasting.feed"]
    assert "forecaster connected to" in caplog.text


async def test_an_error_in_the_forecasters_callback_is_counted_and_the_next_reading_arrives(
    mosquitto: MosquittoServer, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(mqtt_url=mosquitto.url, forecast_client_id="guarded-feed")
    metrics = ForecasterMetrics()
    readings: list[CleanReading] = []

    def on_reading(reading: CleanReading) -> None:
        if reading.level == 666.0:
            raise KeyError("an injected bug")
        readings.append(reading)

    feed = ForecastFeed(settings, metrics, on_reading)
    await feed.start()
    try:
        await feed.wait_subscribed()
        await publish_raw(settings.mqtt, [_reading(666.0), _reading(1.0)], client_id="guarded-pub")
        await wait_until(lambda: len(readings) == 1, 10, "the reading after the bad one")
        assert feed.failure() is None
    finally:
        feed.stop()
    get = metrics.registry.get_sample_value
    assert get("floodwatch_forecast_readings_ignored_total", {"reason": "internal_error"}) == 1
    assert get("floodwatch_forecaster_internal_errors_total", {"error": "KeyError"}) == 1
    [line] = [r for r in caplog.records if "internal error" in r.getMessage()]
    assert "floodwatch/readings/g1" in line.getMessage()
    assert "sha256" in line.getMessage()


async def test_a_persistent_subscriber_acknowledges_a_message_its_handler_failed_on(
    mosquitto: MosquittoServer,
) -> None:
    """Not handed back after a restart: the alert engine's persistent session would
    otherwise get the same poison on every start."""
    endpoint = Settings(mqtt_url=mosquitto.url).mqtt
    received: list[bytes] = []
    errors: list[InternalError] = []

    def on_message(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        if msg.payload == b"poison":
            raise ValueError("an injected bug")
        received.append(bytes(msg.payload))

    def subscriber() -> Subscriber:
        return Subscriber(
            endpoint,
            "guarded-persistent",
            [("guard-test/#", 1)],
            role="guard test",
            log=logging.getLogger("guard-test"),
            connected_gauge=Gauge("connected", "test", registry=CollectorRegistry()),
            on_message=on_message,
            count_internal_error=errors.append,
            persistent=True,
        )

    first = subscriber()
    await first.start(30)
    await first.wait_subscribed()
    await publish_raw(
        endpoint, [("guard-test/a", b"poison"), ("guard-test/a", b"one")], client_id="p1"
    )
    await wait_until(lambda: received == [b"one"], 10, "the message after the poison")
    first.stop()
    # Queued for the persistent session while it is away, behind anything unacknowledged.
    await publish_raw(endpoint, [("guard-test/a", b"two")], client_id="p2")
    second = subscriber()
    await second.start(30)
    try:
        await wait_until(lambda: received == [b"one", b"two"], 10, "the queued message")
    finally:
        second.stop()
    assert [error.error for error in errors] == ["ValueError"]
