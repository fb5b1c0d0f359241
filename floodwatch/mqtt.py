"""Building and connecting paho-mqtt 2 clients the same way everywhere."""

from __future__ import annotations

import asyncio
import logging
import ssl
import threading

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from floodwatch.errors import BrokerUnavailable
from floodwatch.settings import MqttEndpoint

log = logging.getLogger(__name__)


def make_client(
    endpoint: MqttEndpoint,
    client_id: str,
    *,
    persistent: bool = False,
    manual_ack: bool = False,
    max_inflight: int = 1000,
) -> mqtt.Client:
    """A paho client for MQTT 3.1.1 (what every broker, the embedded one included, speaks)."""
    client = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=client_id,
        clean_session=not persistent,
        protocol=mqtt.MQTTv311,
        manual_ack=manual_ack,
    )
    if endpoint.username:
        password = endpoint.password.get_secret_value() if endpoint.password else None
        client.username_pw_set(endpoint.username, password)
    if endpoint.tls:
        client.tls_set_context(ssl.create_default_context())
    # paho's default of 20 unacknowledged QoS 1 publishes caps throughput at one round trip
    # per 20 messages; packet ids wrap at 65535, so stay far below that.
    client.max_inflight_messages_set(max_inflight)
    client.reconnect_delay_set(min_delay=1, max_delay=30)
    return client


class ConnectWaiter:
    """Lets asyncio code wait for paho's CONNACK, which arrives on paho's own thread."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason: str | None = None

    def connected(self, success: bool, reason: str) -> None:
        self.reason = None if success else reason
        self._event.set()

    async def wait(self, endpoint: MqttEndpoint, wait_s: float) -> None:
        got = await asyncio.to_thread(self._event.wait, wait_s)
        if not got:
            raise BrokerUnavailable(f"no answer from broker {endpoint.display()} in {wait_s:g} s")
        if self.reason is not None:
            raise BrokerUnavailable(f"broker {endpoint.display()} refused: {self.reason}")


async def connect(
    client: mqtt.Client, endpoint: MqttEndpoint, keepalive: int = 30, wait_s: float = 10.0
) -> None:
    """Connect and start paho's network thread; raise BrokerUnavailable on failure.

    For clients that need no subscriptions of their own (publishers, `check`).
    """
    waiter = ConnectWaiter()

    def on_connect(_c: mqtt.Client, _u: object, _f: object, reason: ReasonCode, _p: object) -> None:
        waiter.connected(not reason.is_failure, str(reason))

    def on_connect_fail(_c: mqtt.Client, _u: object) -> None:
        waiter.connected(False, "connection failed (refused, or nothing listens there)")

    client.on_connect = on_connect
    client.on_connect_fail = on_connect_fail
    await start(client, endpoint, keepalive)
    try:
        await waiter.wait(endpoint, wait_s)
    except BrokerUnavailable:
        client.loop_stop()
        raise


async def start(
    client: mqtt.Client, endpoint: MqttEndpoint, keepalive: int
) -> threading.Thread | None:
    """Begin connecting in the background; paho reconnects by itself from then on.

    Returns paho's network thread, for the watchdog: while the thread lives, paho keeps
    reconnecting; once it has ended (an exception out of a callback), nothing more is ever
    received, whatever the connection flag says."""
    try:
        await asyncio.to_thread(client.connect_async, endpoint.host, endpoint.port, keepalive)
    except (OSError, ValueError) as exc:
        raise BrokerUnavailable(f"cannot reach broker {endpoint.display()}: {exc}") from None
    client.loop_start()
    # paho keeps no public handle on the thread loop_start() made, and drops its own
    # reference when the thread ends; this one outlives it.
    thread: threading.Thread | None = getattr(client, "_thread", None)
    return thread
