"""The MQTT channel: each event on `floodwatch/alerts/{id}` (QoS 1), and each gauge's
current alert picture retained on `floodwatch/alerts/{id}/current`.

An event counts as delivered once the broker acknowledged it (PUBACK). A message still
unacknowledged when the connection drops stays with paho, which sends it again after the
reconnect; the channel waits for that copy instead of publishing another, so a broker
outage does not multiply messages. A crash can still repeat the batch in flight:
consumers drop repeats by `event_id`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.reasoncodes import ReasonCode

from alerts.channels import current
from alerts.channels.base import DeliveryFailed
from alerts.channels.texts import EventTexts
from alerts.events import AlertEvent
from alerts.gauge_state import GaugeState
from alerts.store import OutboxItem
from floodwatch import mqtt as fw_mqtt
from floodwatch import topics
from floodwatch.catalog import Catalog
from floodwatch.errors import StoreUnavailable
from floodwatch.models import utc_now
from floodwatch.settings import MqttEndpoint

log = logging.getLogger(__name__)

CONFIRM_TIMEOUT_S = 10.0
_QUEUED = (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN)  # paho sends these when it can
_REPUBLISH_RETRY_S = 5.0

StatesSource = Callable[[], Awaitable[dict[str, GaugeState]]]


def event_payload(event: AlertEvent, texts: dict[str, str]) -> bytes:
    document = event.to_dict()
    severity = event.severity
    document["severity"] = severity.name.lower() if severity is not None else None
    document["operator_only"] = event.operator_only
    document["text"] = texts
    return orjson.dumps(document)


class MqttChannel:
    name = "mqtt"

    def __init__(
        self,
        endpoint: MqttEndpoint,
        client_id: str,
        *,
        texts: EventTexts,
        catalog_source: Callable[[], Catalog],
        states: StatesSource,
        keepalive_s: int = 30,
        confirm_timeout_s: float = CONFIRM_TIMEOUT_S,
    ) -> None:
        self.endpoint = endpoint
        self._client_id = client_id
        self._texts = texts
        self._catalog_source = catalog_source
        self._states = states
        self._keepalive_s = keepalive_s
        self._confirm_timeout_s = confirm_timeout_s
        self._client: mqtt.Client | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connected = False
        self._acked = asyncio.Event()  # set on every PUBACK and disconnect: look again
        # Events published and not yet confirmed, by event id, across attempts.
        self._inflight: dict[str, mqtt.MQTTMessageInfo] = {}
        # Packet ids of those events that the broker acknowledged, written on paho's
        # thread. A message published while the connection was dropping (rc NO_CONN) is
        # sent by paho after the reconnect, but its MQTTMessageInfo never reports it.
        self._mids_lock = threading.Lock()
        self._tracked_mids: set[int] = set()
        self._acked_mids: set[int] = set()
        self._current_lock = asyncio.Lock()
        self._republish: asyncio.Task[None] | None = None

    # ----- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._inflight.clear()
        with self._mids_lock:
            self._tracked_mids.clear()
            self._acked_mids.clear()
        client = fw_mqtt.make_client(self.endpoint, self._client_id)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        self._client = client
        # Connects in the background and keeps reconnecting: a broker that is down at
        # start-up only delays delivery.
        await fw_mqtt.start(client, self.endpoint, self._keepalive_s)

    async def stop(self) -> None:
        if self._republish is not None:
            self._republish.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._republish
        client, self._client = self._client, None  # a disconnect now is ours: not logged
        if client is not None:
            client.disconnect()
            client.loop_stop()
        self._connected = False

    def health(self) -> dict[str, Any]:
        return {
            "mqtt": "connected" if self._connected else "disconnected",
            "unconfirmed": len(self._inflight),
        }

    # ----- paho thread -----------------------------------------------------------------

    def _on_connect(
        self, _c: mqtt.Client, _u: object, _f: object, reason: ReasonCode, _p: object
    ) -> None:
        if reason.is_failure:
            log.error("broker %s refused the alert publisher: %s", self.endpoint.display(), reason)
            return
        self._connected = True
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._connected_again)

    def _on_disconnect(
        self, _c: mqtt.Client, _u: object, _f: object, reason: ReasonCode, _p: object
    ) -> None:
        self._connected = False
        if self._loop is not None and self._client is not None:
            log.warning("alert publisher lost broker %s: %s", self.endpoint.display(), reason)
            self._loop.call_soon_threadsafe(self._acked.set)

    def _on_publish(
        self, _c: mqtt.Client, _u: object, mid: int, _rc: ReasonCode, _p: object
    ) -> None:
        with self._mids_lock:
            if mid in self._tracked_mids:
                self._acked_mids.add(mid)
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._acked.set)

    # ----- delivering ------------------------------------------------------------------

    async def deliver(self, items: Sequence[OutboxItem]) -> None:
        infos: list[mqtt.MQTTMessageInfo] = []
        for item in items:
            info = self._inflight.get(item.event.event_id)
            if info is None:
                info = self._publish_event(item.event)
            if info is None:
                break  # not connected: confirm what went out, the rest waits
            infos.append(info)
        if infos:
            await self._current_after(items[: len(infos)])
        confirmed = await self._confirm(infos)
        for item in items[:confirmed]:
            self._forget(item.event.event_id)
        if confirmed < len(items):
            state = "connected" if self._connected else "not connected"
            raise DeliveryFailed(
                f"broker {self.endpoint.display()} ({state}) confirmed {confirmed} of "
                f"{len(items)} alert messages",
                confirmed,
            )

    def _publish_event(self, event: AlertEvent) -> mqtt.MQTTMessageInfo | None:
        if not self._connected or self._client is None:
            return None
        body = event_payload(event, self._texts.plain(event))
        info = self._client.publish(topics.alert(event.station_id), body, qos=1)
        if info.rc not in _QUEUED:
            log.warning("paho refused alert %s: %s", event.event_id, mqtt.error_string(info.rc))
            return None
        self._inflight[event.event_id] = info
        with self._mids_lock:
            self._tracked_mids.add(info.mid)
        return info

    def _forget(self, event_id: str) -> None:
        info = self._inflight.pop(event_id, None)
        if info is not None:
            with self._mids_lock:
                self._tracked_mids.discard(info.mid)
                self._acked_mids.discard(info.mid)

    def _is_confirmed(self, info: mqtt.MQTTMessageInfo) -> bool:
        with self._mids_lock:
            if info.mid in self._acked_mids:
                return True
        # A PUBACK can beat the tracking above; paho then marked the info itself.
        return info.rc == mqtt.MQTT_ERR_SUCCESS and info.is_published()

    async def _current_after(self, items: Sequence[OutboxItem]) -> None:
        try:
            await self.publish_current({item.event.station_id for item in items})
        except StoreUnavailable as exc:
            # The events went out; the pictures follow with the next batch or reconnect.
            log.warning("cannot publish current alert pictures: %s", exc)

    async def _confirm(self, infos: list[mqtt.MQTTMessageInfo]) -> int:
        """How many leading messages the broker acknowledged, waiting up to the timeout
        (and no longer than the connection lasts)."""
        deadline = time.monotonic() + self._confirm_timeout_s
        while True:
            self._acked.clear()  # before looking, so a PUBACK meanwhile wakes the wait
            confirmed = next(
                (i for i, info in enumerate(infos) if not self._is_confirmed(info)), None
            )
            if confirmed is None:
                return len(infos)
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._connected:
                return confirmed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._acked.wait(), remaining)

    # ----- the current picture ---------------------------------------------------------

    async def publish_current(self, station_ids: Iterable[str] | None = None) -> None:
        """Publish the retained picture of these gauges (None: every known gauge) from the
        stored state. One at a time, so a newer picture never goes out before an older."""
        async with self._current_lock:
            client = self._client
            if client is None or not self._connected:
                return  # the reconnect publishes every picture
            states = await self._states()
            catalog = self._catalog_source()
            wanted = set(catalog) | set(states) if station_ids is None else set(station_ids)
            now = utc_now()
            for station_id in sorted(wanted):
                document = current.picture(
                    station_id, states.get(station_id), catalog.get(station_id), now
                )
                client.publish(
                    topics.alert_current(station_id),
                    current.payload(document),
                    qos=1,
                    retain=True,
                )

    def _connected_again(self) -> None:
        self._acked.set()
        if self._republish is None or self._republish.done():
            self._republish = asyncio.create_task(self._republish_all(), name="alerts-current")

    async def _republish_all(self) -> None:
        """After every (re)connect: retained pictures may be missing (a broker that lost its
        store) or stale (changes while we were away)."""
        while self._connected:
            try:
                await self.publish_current()
                return
            except StoreUnavailable as exc:
                log.warning("cannot publish current alert pictures yet: %s", exc)
                await asyncio.sleep(_REPUBLISH_RETRY_S)
