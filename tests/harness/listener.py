"""A plain MQTT subscriber for the integration tests: records every message it receives."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import orjson
import paho.mqtt.client as mqtt

from floodwatch import mqtt as fw_mqtt
from floodwatch.settings import MqttEndpoint


@dataclass(frozen=True)
class Message:
    topic: str
    payload: bytes
    retain: bool

    def json(self) -> Any:
        return orjson.loads(self.payload)


class Listener:
    """Subscribes to `filters` (QoS 1) and waits for the SUBACK before `start` returns, so a
    message published afterwards cannot slip past it. With `persistent`, the broker keeps
    the subscription and queues messages while the listener is away (a broker restart)."""

    def __init__(
        self, endpoint: MqttEndpoint, *filters: str, client_id: str, persistent: bool = False
    ) -> None:
        self.endpoint = endpoint
        self.filters = filters
        self.client = fw_mqtt.make_client(endpoint, client_id, persistent=persistent)
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        self._lock = threading.Lock()
        self._messages: list[Message] = []
        self._subscribed = threading.Event()

    def _on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self._messages.append(Message(msg.topic, bytes(msg.payload), bool(msg.retain)))

    def _on_subscribe(self, _c: mqtt.Client, _u: object, _mid: int, codes: Any, _p: Any) -> None:
        if any(code.is_failure for code in codes):
            raise RuntimeError(f"subscription refused: {codes}")
        self._subscribed.set()

    async def start(self) -> Listener:
        await fw_mqtt.connect(self.client, self.endpoint)
        self.client.subscribe([(topic_filter, 1) for topic_filter in self.filters])
        if not await asyncio.to_thread(self._subscribed.wait, 10):
            raise RuntimeError(f"no SUBACK for {self.filters}")
        return self

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    async def __aenter__(self) -> Listener:
        return await self.start()

    async def __aexit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def messages(self) -> list[Message]:
        with self._lock:
            return list(self._messages)

    def on(self, topic: str) -> list[Message]:
        return [message for message in self.messages if message.topic == topic]

    async def wait_for(
        self, found: Callable[[list[Message]], bool], timeout: float, what: str
    ) -> list[Message]:
        """Wait until `found(messages)` holds; on timeout, fail showing what did arrive."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            messages = self.messages
            if found(messages):
                return messages
            await asyncio.sleep(0.05)
        shown = [(m.topic, m.payload[:200]) for m in self.messages[-20:]]
        raise AssertionError(f"timed out after {timeout} s waiting for {what}; got {shown}")
