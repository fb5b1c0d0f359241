"""The alert engine's MQTT connection: clean and flagged readings and forecasts in.

A persistent session (clean_session false) with QoS 1 subscriptions under its own client
id (FLOODWATCH_ALERT_CLIENT_ID), so what the broker queues for QoS 1 publishers survives
an engine restart, and the retained forecasts arrive again on every
(re)subscription. Messages are parsed on paho's thread and handed to the event loop in
arrival order; what does not parse is counted and logged (rate-limited) and dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import paho.mqtt.client as mqtt

from alerts.inputs import BadInput, Input, parse
from alerts.metrics import AlertMetrics
from floodwatch import topics
from floodwatch.log_limit import LogLimit
from floodwatch.mqtt_subscriber import Subscriber
from floodwatch.settings import Settings

log = logging.getLogger(__name__)

SUBSCRIPTIONS = [
    (topics.CLEAN_READINGS_FILTER, 1),
    (topics.FLAGGED_READINGS_FILTER, 1),
    (topics.FORECASTS_FILTER, 1),
]


class AlertFeed:
    def __init__(
        self, settings: Settings, metrics: AlertMetrics, on_input: Callable[[Input], None]
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.endpoint = settings.mqtt
        self._on_input = on_input
        self._subscriber = Subscriber(
            self.endpoint,
            settings.alert_client_id,
            SUBSCRIPTIONS,
            role="alert engine",
            log=log,
            connected_gauge=metrics.mqtt_connected,
            on_message=self._on_message,
            count_internal_error=metrics.count_internal_error,
            persistent=True,
        )
        self.client = self._subscriber.client
        self._loop: asyncio.AbstractEventLoop | None = None
        self._log_limit = LogLimit()

    @property
    def connected(self) -> bool:
        return self._subscriber.connected

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        await self._subscriber.start(self.settings.mqtt_keepalive_s)

    def stop(self) -> None:
        self._subscriber.stop()

    def failure(self) -> str | None:
        return self._subscriber.failure()

    async def wait_subscribed(self, wait_s: float = 10.0) -> None:
        await self._subscriber.wait_subscribed(wait_s)

    # ----- paho thread -----------------------------------------------------------------

    def _on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        try:
            item = parse(msg.topic, bytes(msg.payload))
        except BadInput as exc:
            self.metrics.ignored.labels("bad_payload").inc()
            if self._log_limit.allow():
                log.warning("alert engine ignored a message on %s: %s", msg.topic, exc)
            return
        if item is None or self._loop is None:
            return
        # The loop closes while stopping; a message arriving then is dropped with it.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._on_input, item)
