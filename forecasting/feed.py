"""The forecaster's MQTT connection: clean readings in, retained forecasts out.

A clean session: the forecaster primes its history from the store at start-up, so it needs
no broker-side queue of what it missed. Readings are parsed on paho's network thread and
handed on from there; a message that is not a clean reading is counted and dropped.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import paho.mqtt.client as mqtt

from floodwatch import topics
from floodwatch.mqtt_subscriber import Subscriber
from floodwatch.settings import Settings
from forecasting.history import CleanReading, parse_clean_reading
from forecasting.metrics import ForecasterMetrics

log = logging.getLogger(__name__)


class ForecastFeed:
    def __init__(
        self,
        settings: Settings,
        metrics: ForecasterMetrics,
        on_reading: Callable[[CleanReading], None],
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.endpoint = settings.mqtt
        self._on_reading = on_reading
        self._subscriber = Subscriber(
            self.endpoint,
            settings.forecast_client_id,
            [(topics.CLEAN_READINGS_FILTER, 1)],
            role="forecaster",
            log=log,
            connected_gauge=metrics.mqtt_connected,
            on_message=self._on_message,
            count_internal_error=metrics.count_internal_error,
            on_connected=self._flush_held,
            on_disconnected=self._hold,
        )
        self.client = self._subscriber.client
        # While disconnected, the newest forecast of each station waits here for the next
        # connection (paho would queue every one of them, without bound). Its own flag,
        # switched under the lock with the hand-over, so no forecast overtakes a held one.
        self._held: dict[str, bytes] = {}
        self._lock = threading.Lock()
        self._sending = False

    @property
    def connected(self) -> bool:
        return self._subscriber.connected

    async def start(self) -> None:
        await self._subscriber.start(self.settings.mqtt_keepalive_s)

    def stop(self) -> None:
        self._subscriber.stop()

    def failure(self) -> str | None:
        return self._subscriber.failure()

    async def wait_subscribed(self, wait_s: float = 10.0) -> None:
        await self._subscriber.wait_subscribed(wait_s)

    def publish(self, station_id: str, payload: bytes) -> None:
        """Publish a forecast, retained, QoS 1; held until connected if need be."""
        with self._lock:
            if not self._sending:
                self._held[station_id] = payload
                return
        self._send(station_id, payload)

    def _send(self, station_id: str, payload: bytes) -> None:
        self.client.publish(topics.forecast(station_id), payload, qos=1, retain=True)

    # ----- paho thread -----------------------------------------------------------------

    def _flush_held(self) -> None:
        with self._lock:
            self._sending = True
            held, self._held = self._held, {}
        for station_id, payload in held.items():
            self._send(station_id, payload)

    def _hold(self) -> None:
        with self._lock:
            self._sending = False

    def _on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        reading = parse_clean_reading(bytes(msg.payload))
        if reading is None or reading.station_id != topics.station_from_topic(
            msg.topic, "readings"
        ):
            self.metrics.ignored.labels("bad_payload").inc()
            return
        self._on_reading(reading)
