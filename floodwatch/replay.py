"""Publishing a replay CSV through MQTT, as gauges would, at N times real time."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.reasoncodes import ReasonCode

from floodwatch import mqtt as fw_mqtt
from floodwatch import topics
from floodwatch.settings import MqttEndpoint

log = logging.getLogger(__name__)

# Unacknowledged QoS 1 publishes allowed at once: bounds memory and stays far from the
# 65535 packet-id wrap, while keeping the broker busy.
PUBLISH_WINDOW = 1000


class ReplayRow(Protocol):
    @property
    def station_id(self) -> str: ...
    @property
    def ts(self) -> datetime: ...
    @property
    def level(self) -> float: ...


def gauge_payload(ts: datetime, level: float) -> bytes:
    return orjson.dumps({"ts": ts.isoformat(), "level": level})


@dataclass
class ReplayStats:
    published: int = 0
    seconds: float = 0.0


class WindowedPublisher:
    """QoS 1 publishing with at most PUBLISH_WINDOW messages awaiting PUBACK."""

    def __init__(self, client: mqtt.Client, window: int = PUBLISH_WINDOW) -> None:
        self.client = client
        self._loop = asyncio.get_running_loop()
        self._slots = asyncio.Semaphore(window)
        self._window = window
        client.on_publish = self._on_publish

    def _on_publish(
        self, _c: mqtt.Client, _u: object, _mid: int, _rc: ReasonCode, _p: object
    ) -> None:
        self._loop.call_soon_threadsafe(self._slots.release)

    async def publish(self, topic: str, payload: bytes) -> None:
        await self._slots.acquire()
        self.client.publish(topic, payload, qos=1)

    async def flush(self, wait_s: float = 60.0) -> None:
        """Wait until every publish has been acknowledged by the broker."""
        deadline = time.monotonic() + wait_s
        for _ in range(self._window):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("broker did not acknowledge every reading in time")
            await asyncio.wait_for(self._slots.acquire(), remaining)


@contextlib.asynccontextmanager
async def gauge_publisher(
    endpoint: MqttEndpoint, client_id: str = "floodwatch-replay"
) -> AsyncIterator[WindowedPublisher]:
    """A connected QoS 1 publisher, disconnected on exit."""
    client = fw_mqtt.make_client(endpoint, client_id)
    await fw_mqtt.connect(client, endpoint)
    try:
        yield WindowedPublisher(client)
    finally:
        client.disconnect()
        client.loop_stop()


async def publish_rows(
    publisher: WindowedPublisher,
    rows: Iterable[ReplayRow],
    *,
    speed: float | None,
    shift: timedelta = timedelta(0),
) -> ReplayStats:
    """Publish rows in file order and wait for every PUBACK; `speed` None means as fast as
    the broker accepts. `shift` is added to every timestamp (see `--rebase`); pacing
    follows the recorded spacing divided by `speed`."""
    stats = ReplayStats()
    started = time.monotonic()
    first_ts: datetime | None = None
    for row in rows:
        if speed is not None:
            first_ts = first_ts or row.ts
            due = started + (row.ts - first_ts).total_seconds() / speed
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        await publisher.publish(
            topics.gauge_level(row.station_id), gauge_payload(row.ts + shift, row.level)
        )
        stats.published += 1
    await publisher.flush()
    stats.seconds = time.monotonic() - started
    return stats


async def replay(
    rows: Iterable[ReplayRow],
    endpoint: MqttEndpoint,
    *,
    speed: float | None,
    shift: timedelta = timedelta(0),
    client_id: str = "floodwatch-replay",
) -> ReplayStats:
    async with gauge_publisher(endpoint, client_id) as publisher:
        return await publish_rows(publisher, rows, speed=speed, shift=shift)
