"""The alert engine's MQTT connection: readings, forecasts and station states in.

A persistent session (clean_session false) with QoS 1 subscriptions under its own client
id (FLOODWATCH_ALERT_CLIENT_ID), so what the broker queues for QoS 1 publishers survives
an engine restart, and the retained forecasts and states arrive again on every
(re)subscription. Messages are parsed on paho's thread and handed to the event loop in
arrival order; what does not parse is counted and logged (rate-limited) and dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable

import paho.mqtt.client as mqtt
from paho.mqtt.reasoncodes import ReasonCode

from alerts.inputs import STATE_FILTER, BadInput, Input, parse
from alerts.metrics import AlertMetrics
from floodwatch import mqtt as fw_mqtt
from floodwatch import topics
from floodwatch.errors import BrokerUnavailable
from floodwatch.log_limit import LogLimit
from floodwatch.settings import Settings

log = logging.getLogger(__name__)

SUBSCRIPTIONS = [(topics.CLEAN_READINGS_FILTER, 1), (topics.FORECASTS_FILTER, 1), (STATE_FILTER, 1)]


class AlertFeed:
    def __init__(
        self, settings: Settings, metrics: AlertMetrics, on_input: Callable[[Input], None]
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.endpoint = settings.mqtt
        self._on_input = on_input
        self.client = fw_mqtt.make_client(self.endpoint, settings.alert_client_id, persistent=True)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.connected = False
        self._subscribed = threading.Event()
        self._subscribe_mid: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._log_limit = LogLimit()
        self._stopping = False

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        await fw_mqtt.start(self.client, self.endpoint, self.settings.mqtt_keepalive_s)

    def stop(self) -> None:
        self._stopping = True
        self.client.disconnect()
        self.client.loop_stop()

    async def wait_subscribed(self, wait_s: float = 10.0) -> None:
        if not await asyncio.to_thread(self._subscribed.wait, wait_s):
            raise BrokerUnavailable(
                f"alert engine: no confirmed subscription on {self.endpoint.display()}"
            )

    # ----- paho thread -----------------------------------------------------------------

    def _on_connect(
        self,
        client: mqtt.Client,
        _u: object,
        flags: mqtt.ConnectFlags,
        reason: ReasonCode,
        _p: object,
    ) -> None:
        if reason.is_failure:
            log.error("broker %s refused the alert engine: %s", self.endpoint.display(), reason)
            return
        self.connected = True
        self.metrics.mqtt_connected.set(1)
        self._subscribed.clear()
        _rc, self._subscribe_mid = client.subscribe(SUBSCRIPTIONS)
        log.info(
            "alert engine connected to %s (session %s)",
            self.endpoint.display(),
            "resumed" if flags.session_present else "new",
        )

    def _on_subscribe(
        self, _c: mqtt.Client, _u: object, mid: int, reasons: list[ReasonCode], _p: object
    ) -> None:
        if mid != self._subscribe_mid:
            return
        if any(reason.is_failure for reason in reasons):
            log.error("broker refused the alert engine's subscriptions: %s", reasons)
            return
        self._subscribed.set()

    def _on_disconnect(
        self, _c: mqtt.Client, _u: object, _f: object, reason: ReasonCode, _p: object
    ) -> None:
        self.connected = False
        self._subscribed.clear()
        self.metrics.mqtt_connected.set(0)
        if not self._stopping:
            log.warning(
                "alert engine lost broker %s: %s; reconnecting", self.endpoint.display(), reason
            )

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
