"""One long-lived subscribing client: the connect / subscribe / reconnect / stop shell that
the forecaster's and the alert engine's feeds share.

paho reconnects by itself; on every connection the subscriptions are made again (a clean
session has none left, and retained messages are only sent again on a new SUBSCRIBE), and
`wait_subscribed` waits for the broker's SUBACK of the current connection. Callbacks run on
paho's network thread.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Sequence

import paho.mqtt.client as mqtt
from paho.mqtt.reasoncodes import ReasonCode
from prometheus_client import Gauge

from floodwatch import mqtt as fw_mqtt
from floodwatch.errors import BrokerUnavailable
from floodwatch.guard import InternalError, MessageGuard
from floodwatch.settings import MqttEndpoint
from floodwatch.watchdog import thread_ended

MessageHandler = Callable[[mqtt.Client, object, mqtt.MQTTMessage], None]


class Subscriber:
    def __init__(
        self,
        endpoint: MqttEndpoint,
        client_id: str,
        subscriptions: Sequence[tuple[str, int]],
        *,
        role: str,
        log: logging.Logger,
        connected_gauge: Gauge,
        on_message: MessageHandler,
        count_internal_error: Callable[[InternalError], None],
        persistent: bool = False,
        on_connected: Callable[[], None] | None = None,
        on_disconnected: Callable[[], None] | None = None,
    ) -> None:
        """`role` names the service in log lines and errors; `log` is the owner's logger, so
        its lines keep their logger name. `on_connected` runs on paho's thread once the
        subscriptions are requested, `on_disconnected` once the state says disconnected.
        `on_message` is guarded (floodwatch.guard): an error on one message is counted with
        `count_internal_error`, and the message is acknowledged like any other."""
        self.endpoint = endpoint
        self.role = role
        self.connected = False
        self._subscriptions = list(subscriptions)
        self._persistent = persistent
        self._log = log
        self._gauge = connected_gauge
        self._on_connected = on_connected
        self._on_disconnected = on_disconnected
        self._subscribed = threading.Event()
        self._subscribe_mid: int | None = None
        self._stopping = False
        self._network: threading.Thread | None = None
        self.client = fw_mqtt.make_client(endpoint, client_id, persistent=persistent)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_disconnect = self._on_disconnect
        guard = MessageGuard(role, log, count_internal_error)
        self.client.on_message = guard.wrap(on_message)

    async def start(self, keepalive: int) -> None:
        self._network = await fw_mqtt.start(self.client, self.endpoint, keepalive)

    def failure(self) -> str | None:
        """Why no message will ever arrive again (see floodwatch.watchdog)."""
        if self._stopping:
            return None
        return thread_ended(self._network, f"the {self.role}'s MQTT network thread")

    def stop(self) -> None:
        self._stopping = True
        self.client.disconnect()
        self.client.loop_stop()

    async def wait_subscribed(self, wait_s: float = 10.0) -> None:
        if not await asyncio.to_thread(self._subscribed.wait, wait_s):
            raise BrokerUnavailable(
                f"{self.role}: no confirmed subscription on {self.endpoint.display()}"
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
        display = self.endpoint.display()
        if reason.is_failure:
            self._log.error("broker %s refused the %s: %s", display, self.role, reason)
            return
        self.connected = True
        self._gauge.set(1)
        self._subscribed.clear()
        _rc, self._subscribe_mid = client.subscribe(self._subscriptions)
        if self._on_connected is not None:
            self._on_connected()
        if self._persistent:
            session = "resumed" if flags.session_present else "new"
            self._log.info("%s connected to %s (session %s)", self.role, display, session)
        else:
            self._log.info("%s connected to %s", self.role, display)

    def _on_subscribe(
        self, _c: mqtt.Client, _u: object, mid: int, reasons: list[ReasonCode], _p: object
    ) -> None:
        # A SUBACK of an earlier connection's SUBSCRIBE says nothing about this one.
        if mid != self._subscribe_mid:
            return
        if any(reason.is_failure for reason in reasons):
            self._log.error("broker refused the %s's subscriptions: %s", self.role, reasons)
            return
        self._subscribed.set()

    def _on_disconnect(
        self, _c: mqtt.Client, _u: object, _f: object, reason: ReasonCode, _p: object
    ) -> None:
        self.connected = False
        self._subscribed.clear()
        self._gauge.set(0)
        if self._on_disconnected is not None:
            self._on_disconnected()
        if not self._stopping:
            self._log.warning(
                "%s lost broker %s: %s; reconnecting", self.role, self.endpoint.display(), reason
            )
