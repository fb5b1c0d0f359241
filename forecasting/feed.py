"""The forecaster's MQTT connection: clean readings in, retained forecasts out.

A clean session: the forecaster primes its history from the store at start-up, so it needs
no broker-side queue of what it missed. Readings are parsed on paho's network thread and
handed on from there; a message that is not a clean reading is counted and dropped.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable

import paho.mqtt.client as mqtt
from paho.mqtt.reasoncodes import ReasonCode

from floodwatch import mqtt as fw_mqtt
from floodwatch import topics
from floodwatch.errors import BrokerUnavailable
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
        self.client = fw_mqtt.make_client(self.endpoint, settings.forecast_client_id)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.connected = False
        self._subscribed = threading.Event()
        # While disconnected, the newest forecast of each station waits here for the next
        # connection (paho would queue every one of them, without bound).
        self._held: dict[str, bytes] = {}
        self._lock = threading.Lock()
        self._stopping = False

    async def start(self) -> None:
        await fw_mqtt.start(self.client, self.endpoint, self.settings.mqtt_keepalive_s)

    def stop(self) -> None:
        self._stopping = True
        self.client.disconnect()
        self.client.loop_stop()

    async def wait_subscribed(self, wait_s: float = 10.0) -> None:
        if not await asyncio.to_thread(self._subscribed.wait, wait_s):
            raise BrokerUnavailable(f"no confirmed subscription on {self.endpoint.display()}")

    def publish(self, station_id: str, payload: bytes) -> None:
        """Publish a forecast, retained, QoS 1; held until connected if need be."""
        with self._lock:
            if not self.connected:
                self._held[station_id] = payload
                return
        self._send(station_id, payload)

    def _send(self, station_id: str, payload: bytes) -> None:
        self.client.publish(topics.forecast(station_id), payload, qos=1, retain=True)

    # ----- paho thread -----------------------------------------------------------------

    def _on_connect(
        self, client: mqtt.Client, _u: object, _f: object, reason: ReasonCode, _p: object
    ) -> None:
        if reason.is_failure:
            log.error("broker %s refused the forecaster: %s", self.endpoint.display(), reason)
            return
        self.metrics.mqtt_connected.set(1)
        client.subscribe(topics.CLEAN_READINGS_FILTER, qos=1)
        with self._lock:
            self.connected = True
            held, self._held = self._held, {}
        for station_id, payload in held.items():
            self._send(station_id, payload)
        log.info("forecaster connected to %s", self.endpoint.display())

    def _on_subscribe(
        self, _c: mqtt.Client, _u: object, _mid: int, reasons: list[ReasonCode], _p: object
    ) -> None:
        if any(reason.is_failure for reason in reasons):
            log.error("broker refused the forecaster's subscription: %s", reasons)
            return
        self._subscribed.set()

    def _on_disconnect(
        self, _c: mqtt.Client, _u: object, _f: object, reason: ReasonCode, _p: object
    ) -> None:
        with self._lock:
            self.connected = False
        self._subscribed.clear()
        self.metrics.mqtt_connected.set(0)
        if not self._stopping:
            log.warning(
                "forecaster lost broker %s: %s; reconnecting", self.endpoint.display(), reason
            )

    def _on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        reading = parse_clean_reading(bytes(msg.payload))
        if reading is None or reading.station_id != topics.station_from_topic(
            msg.topic, "readings"
        ):
            self.metrics.ignored.labels("bad_payload").inc()
            return
        self._on_reading(reading)
