"""The collector: MQTT → decode → validate → QC → store (or spool) → acknowledge → republish.

A message is acknowledged (manual PUBACK) only after its reading is durable, in the store
or in the spool, so a collector killed at any moment loses nothing: the broker redelivers
what was not acknowledged, and the store's idempotent writes absorb the repeat.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.reasoncodes import ReasonCode

from alerts.channels import current as alert_current
from collector.decode import DecodeLimits, Rejection, RejectReason, decode
from collector.inbox import Inbound, Inbox
from collector.metrics import CollectorMetrics
from collector.qc import Checked, QualityControl
from collector.sink import Sink
from collector.spool import Spool
from collector.stats import HealthWriter
from floodwatch import mqtt as fw_mqtt
from floodwatch import topics
from floodwatch.catalog import Catalog
from floodwatch.errors import BrokerUnavailable, SpoolUnavailable, StoreUnavailable
from floodwatch.guard import InternalError, MessageGuard, topic_of
from floodwatch.log_limit import LogLimit
from floodwatch.models import FAULT_FLAGS, QCFlag, Reading, utc_now
from floodwatch.settings import Settings
from floodwatch.storage.base import ReadingStore
from floodwatch.watchdog import task_ended, thread_ended
from forecasting.state import StateForecast, parse_forecast

log = logging.getLogger(__name__)

IDLE_WAIT_S = 1.0
SPOOL_RETRY_S = 1.0
PRIME_HISTORY = 32
# Logging every bad message of a misconfigured gauge fleet would drown the log; every one
# is still counted and published on floodwatch/rejected/{station_id}.
REJECT_LOGS_PER_MINUTE = 20
FORECASTS_PREFIX = topics.FORECASTS_FILTER.removesuffix("+")
ALERTS_PREFIX = topics.ALERTS_FILTER.removesuffix("+")


def _compact(payload: bytes) -> bytes:
    """A right-sized copy: orjson >= 3.12 returns even a 200-byte document in a ~4 KiB
    allocation, and payloads wait in paho's queues, 20x too large, while the broker is
    slow to take them (a backlog drain held hundreds of MB that way)."""
    return bytes(memoryview(payload))


def _verdict(reading: Reading) -> str:
    return "confirmed" if reading.qc & QCFlag.CONFIRMED else "spike"


def reading_payload(reading: Reading) -> bytes:
    return _compact(
        orjson.dumps(
            {
                "station_id": reading.station_id,
                "ts": reading.ts.isoformat(),
                "level": reading.level,
                "qc": reading.qc.names(),
                "seq": reading.seq,
            }
        )
    )


class Collector:
    def __init__(
        self,
        settings: Settings,
        catalog: Catalog,
        store: ReadingStore,
        *,
        spool: Spool | None = None,
    ) -> None:
        self.settings = settings
        self.catalog = catalog
        self.store = store
        self.metrics = CollectorMetrics()
        self.sink = Sink(store, spool or Spool(settings.spool_path), self.metrics)
        self.qc = QualityControl(catalog)
        self.limits = DecodeLimits.from_settings(settings)
        self.endpoint = settings.mqtt
        self.client = fw_mqtt.make_client(
            self.endpoint, settings.mqtt_client_id, persistent=True, manual_ack=True
        )
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self._generation = 0
        self._connected = False
        self._subscribed = threading.Event()
        self._subscribe_mid: int | None = None
        self._inbox: Inbox | None = None
        self._stopping = asyncio.Event()
        self._latest: dict[str, Reading] = {}
        # Written on paho's thread, read by the state loop; one dict item at a time.
        self._forecasts: dict[str, StateForecast] = {}
        self._alerts: dict[str, alert_current.CurrentAlert] = {}
        self._reject_logs = LogLimit(REJECT_LOGS_PER_MINUTE)
        self._guard = MessageGuard(
            "collector",
            log,
            self._count_internal_error,
            on_error=self._publish_internal_error,
        )
        self._tasks: list[asyncio.Task[None]] = []
        self._health_task: asyncio.Task[None] | None = None
        self._spool_failing = False
        self._network: threading.Thread | None = None

    # ----- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._inbox = Inbox(loop, self.settings.batch_max)
        try:
            await self.store.open()
        except StoreUnavailable as exc:
            # Start anyway: readings spool until the store answers.
            log.warning("store unavailable at start-up, spooling until it answers: %s", exc)
        await self.sink.open()
        await self._prime_qc()
        self._network = await fw_mqtt.start(
            self.client, self.endpoint, self.settings.mqtt_keepalive_s
        )
        self._tasks = [asyncio.create_task(self._write_loop(), name="collector-writer")]
        if self._publishes_state:
            self._tasks.append(asyncio.create_task(self._state_loop(), name="collector-state"))
        if self.settings.stats_interval_s > 0:
            self._health_task = asyncio.create_task(
                self._health_writer().run(self._stopping), name="collector-health"
            )
        log.info(
            "collector %s started: broker %s, store %s, %d stations",
            self.settings.mqtt_client_id,
            self.endpoint.display(),
            self.store.description,
            len(self.catalog),
        )

    async def stop(self) -> None:
        """Finish the batch in hand (store or spool it, then acknowledge) and disconnect."""
        self._stopping.set()
        if self._health_task is not None:
            # Cancelled, not awaited: a write to an unreachable store may retry for a while,
            # and statistics are not worth delaying a shutdown for.
            self._health_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._health_task
        if self._tasks:
            # wait, not await: a task that died (the watchdog's reason to stop us) must not
            # keep the rest from being closed.
            await asyncio.wait(self._tasks)
        if self._inbox is not None:
            self._inbox.close()  # paho's thread must not wait for room that never comes
        self.client.disconnect()
        self.client.loop_stop()
        await self.sink.close()
        await self.store.close()

    async def run_until(self, stop: asyncio.Event) -> None:
        await self.start()
        try:
            await stop.wait()
        finally:
            await self.stop()

    def _health_writer(self) -> HealthWriter:
        return HealthWriter(
            self.store,
            self.catalog,
            self.metrics,
            collector=self.settings.mqtt_client_id,
            interval_s=self.settings.stats_interval_s,
            offline_after_s=self.settings.alert_offline_after_s,
            latest=self._latest,
            forecasts=self._forecasts,
            alerts=self._alerts,
        )

    @property
    def _publishes_state(self) -> bool:
        return self.settings.republish_clean and self.settings.state_interval_s > 0

    def failure(self) -> str | None:
        if self._stopping.is_set():
            return None
        return thread_ended(self._network, "the MQTT network thread") or task_ended(
            [*self._tasks, self._health_task]
        )

    def health(self) -> tuple[bool, dict[str, Any]]:
        store_up = not self.sink.spooling
        failure = self.failure()
        healthy = self._connected and not self._spool_failing and failure is None
        details = {
            "status": "failing"
            if failure
            else "ok"
            if self._connected and store_up
            else "degraded",
            "mqtt": "connected" if self._connected else "disconnected",
            "store": "up" if store_up else "unavailable (spooling)",
            "spool": "failing" if self._spool_failing else "ok",
            "spool_depth": self.sink.depth,
            "pending_acks": len(self._inbox) if self._inbox else 0,
        }
        if failure is not None:
            details["failure"] = failure
        # Spooling keeps readings safe, so only a lost broker, or a spool that cannot take
        # readings while the store is down, makes the collector unhealthy.
        return healthy, details

    # ----- paho thread -----------------------------------------------------------------

    def _on_connect(
        self,
        client: mqtt.Client,
        _userdata: object,
        flags: mqtt.ConnectFlags,
        reason: ReasonCode,
        _properties: object,
    ) -> None:
        if reason.is_failure:
            log.error("broker %s refused the connection: %s", self.endpoint.display(), reason)
            return
        self._generation += 1
        self._connected = True
        self.metrics.mqtt_connected.set(1)
        topic_filter = topics.GAUGE_LEVEL_FILTER
        if self.settings.mqtt_shared_group:
            topic_filter = topics.shared(self.settings.mqtt_shared_group, topic_filter)
        subscriptions = [(topic_filter, 1)]
        if self._publishes_state:
            # Never shared: every collector publishes state, so each must see every forecast.
            # QoS 0: the retained forecast is delivered again on every (re)subscription, and
            # with manual acknowledgement QoS 1 messages would need acks of their own.
            # The same holds for the alert engine's retained current alert pictures.
            subscriptions.append((topics.FORECASTS_FILTER, 0))
            subscriptions.append((topics.ALERTS_CURRENT_FILTER, 0))
        self._subscribed.clear()
        _rc, self._subscribe_mid = client.subscribe(subscriptions)
        log.info(
            "connected to %s (session %s), subscribed to %s",
            self.endpoint.display(),
            "resumed" if flags.session_present else "new",
            topic_filter,
        )

    def _on_subscribe(
        self, _c: mqtt.Client, _u: object, mid: int, reasons: list[ReasonCode], _p: object
    ) -> None:
        if mid != self._subscribe_mid:
            return
        if reasons and reasons[0].is_failure:
            log.error("broker refused the subscription: %s", ", ".join(map(str, reasons)))
            return
        if any(reason.is_failure for reason in reasons[1:]):
            # Readings still flow; only the forecast or alert in the station state stays empty.
            log.warning("broker refused the forecasts or alerts subscription: %s", reasons[1:])
        self._subscribed.set()

    async def wait_subscribed(self, wait_s: float = 10.0) -> None:
        """Wait until the broker has confirmed the subscription. Before the first one ever
        exists for this client id, the broker keeps nothing for it."""
        if not await asyncio.to_thread(self._subscribed.wait, wait_s):
            raise BrokerUnavailable(
                f"no confirmed subscription on {self.endpoint.display()} after {wait_s:g} s"
            )

    def _on_disconnect(
        self, _c: mqtt.Client, _u: object, _f: object, reason: ReasonCode, _p: object
    ) -> None:
        self._connected = False
        self.metrics.mqtt_connected.set(0)
        if not self._stopping.is_set():
            log.warning("lost broker %s: %s; reconnecting", self.endpoint.display(), reason)

    def _on_message(self, client: mqtt.Client, _userdata: object, msg: mqtt.MQTTMessage) -> None:
        assert self._inbox is not None
        try:
            if self._took_side_message(msg):
                return
            checked = self._read(client, msg)
        except Exception as exc:
            # A bug on one message must not end paho's thread nor leave the message
            # unacknowledged (the broker would hand it back after every restart).
            self._guard.failed(msg, exc)
            checked = None
        if checked is None:
            self._inbox.put(Inbound(msg.mid, msg.qos, self._generation, None))
        else:
            self._inbox.put(
                Inbound(msg.mid, msg.qos, self._generation, checked.reading, checked.revised)
            )

    def _took_side_message(self, msg: mqtt.MQTTMessage) -> bool:
        """Forecasts and alert pictures (QoS 0, for the station state) are not readings."""
        if msg.topic.startswith(FORECASTS_PREFIX):
            self._on_forecast(msg)
            return True
        if msg.topic.startswith(ALERTS_PREFIX):
            self._on_alert_picture(msg)
            return True
        return False

    def _read(self, client: mqtt.Client, msg: mqtt.MQTTMessage) -> Checked | None:
        """Decode, validate and QC one gauge message; None (counted, published) if rejected."""
        self.metrics.received.inc()
        received_at = utc_now()
        result = decode(msg.topic, bytes(msg.payload), received_at, self.catalog, self.limits)
        if isinstance(result, Rejection):
            self._reject(client, result, received_at)
            return None
        checked = self.qc.check(result)
        self.metrics.accepted.inc()
        if checked.reading.qc:
            for flag in checked.reading.qc.names():
                self.metrics.flagged.labels(flag).inc()
        for revised in checked.revised:
            self.metrics.revised.labels(_verdict(revised)).inc()
        return checked

    def _count_internal_error(self, error: InternalError) -> None:
        self.metrics.rejected.labels(str(RejectReason.INTERNAL_ERROR)).inc()
        self.metrics.internal_errors.labels(error.error).inc()

    def _publish_internal_error(self, msg: mqtt.MQTTMessage, error: InternalError) -> None:
        station = topics.station_from_gauge_topic(topic_of(msg)) or topics.INVALID_STATION
        payload = {
            "reason": str(RejectReason.INTERNAL_ERROR),
            "detail": error.detail,
            "received_at": utc_now().isoformat(),
        }
        self.client.publish(topics.rejected(station), _compact(orjson.dumps(payload)), qos=0)

    def _on_forecast(self, msg: mqtt.MQTTMessage) -> None:
        station_id = topics.station_from_topic(msg.topic, "forecasts")
        forecast = parse_forecast(bytes(msg.payload))
        if station_id not in self.catalog or forecast is None:
            log.debug("ignored a forecast on %s", msg.topic)
            return
        assert station_id is not None
        previous = self._forecasts.get(station_id)
        # A retained forecast delivered on resubscription may be older than one already seen.
        if previous is None or previous.issued_at <= forecast.issued_at:
            self._forecasts[station_id] = forecast

    def _on_alert_picture(self, msg: mqtt.MQTTMessage) -> None:
        station_id = topics.station_from_alert_current_topic(msg.topic)
        picture = alert_current.parse(bytes(msg.payload))
        if station_id not in self.catalog or picture is None:
            log.debug("ignored an alert picture on %s", msg.topic)
            return
        assert station_id is not None
        previous = self._alerts.get(station_id)
        if previous is None or previous.updated_at <= picture.updated_at:
            self._alerts[station_id] = picture

    def _reject(self, client: mqtt.Client, rejection: Rejection, received_at: datetime) -> None:
        reason = str(rejection.reason)
        self.metrics.rejected.labels(reason).inc()
        station = rejection.station_id or topics.INVALID_STATION
        payload = {
            "reason": reason,
            "detail": rejection.detail,
            "received_at": received_at.isoformat(),
        }
        client.publish(topics.rejected(station), _compact(orjson.dumps(payload)), qos=0)
        if self._reject_logs.allow():
            log.warning("rejected reading from %s: %s (%s)", station, reason, rejection.detail)

    # ----- event loop ------------------------------------------------------------------

    async def _prime_qc(self) -> None:
        """Warm the QC windows from stored history, so a restart does not blind spike checks.

        The newest stored reading also seeds the station state, so a forecast arriving
        before the next reading can be published in it."""
        try:
            for station_id in self.catalog:
                history = await self.store.latest(station_id, PRIME_HISTORY)
                self.qc.prime(station_id, history)
                if history:
                    self._latest.setdefault(station_id, history[-1])
        except StoreUnavailable as exc:
            log.warning("store unavailable at start-up, QC starts without history: %s", exc)

    async def _write_loop(self) -> None:
        assert self._inbox is not None
        while not self._stopping.is_set():
            idle = 0.0 if self.sink.spooling and self.sink.depth else IDLE_WAIT_S
            batch = await self._inbox.take(self.settings.flush_interval_s, idle)
            await self._persist(batch)
            try:
                await self.sink.drain_step()
            except SpoolUnavailable as exc:
                self._spool_failed(exc)
                await asyncio.sleep(SPOOL_RETRY_S)
        await self._persist(self._inbox.drain())

    async def _persist(self, batch: Sequence[Inbound]) -> None:
        if not batch:
            return
        readings = [reading for item in batch for reading in item.readings()]
        if readings:
            if not await self._make_durable(readings):
                return  # not acknowledged: the broker delivers them again to the next session
            self._observe_latency(readings)
        self._acknowledge(batch)
        if readings and self.settings.republish_clean:
            self._republish(readings)

    async def _make_durable(self, readings: Sequence[Reading]) -> bool:
        """Store or spool; while neither works, retry the same batch rather than ack it."""
        while True:
            try:
                await self.sink.put(readings)
            except SpoolUnavailable as exc:
                self._spool_failed(exc)
                if self._stopping.is_set():
                    return False
                await asyncio.sleep(SPOOL_RETRY_S)
            else:
                self._spool_failing = False
                return True

    def _spool_failed(self, exc: SpoolUnavailable) -> None:
        self._spool_failing = True
        self.metrics.store_errors.labels("spool").inc()
        log.error("neither the store nor the spool takes readings; holding them: %s", exc)

    def _acknowledge(self, batch: Sequence[Inbound]) -> None:
        generation = self._generation
        for item in batch:
            # A message from an earlier connection is redelivered by the broker on this one;
            # acking its old packet id here could acknowledge a different, unstored message.
            if item.qos > 0 and item.generation == generation:
                self.client.ack(item.mid, item.qos)

    def _observe_latency(self, readings: Sequence[Reading]) -> None:
        now = utc_now()
        for reading in readings:
            self.metrics.lag.observe(max(0.0, (now - reading.ts).total_seconds()))
            if reading.received_at is not None:
                self.metrics.latency.observe((now - reading.received_at).total_seconds())

    def _republish(self, readings: Sequence[Reading]) -> None:
        for reading in readings:
            # The clean readings topic is what downstream consumers may trust without
            # checking; flagged readings (suspect ones above all) go to their own, QoS 1,
            # so that the alert engine sees every one of them.
            if reading.is_clean:
                self.client.publish(
                    topics.clean_reading(reading.station_id), reading_payload(reading)
                )
            else:
                self.client.publish(
                    topics.flagged_reading(reading.station_id), reading_payload(reading), qos=1
                )
            latest = self._latest.get(reading.station_id)
            if latest is None or reading.ts >= latest.ts:
                self._latest[reading.station_id] = reading

    async def _state_loop(self) -> None:
        """Publish each station's newest reading as retained state, at most once a tick.

        A tick is skipped while the broker has not acknowledged the previous one: during a
        backlog drain those acknowledgements lag far behind, and paho would otherwise queue
        a tick's worth of QoS 1 messages per second without bound. The next tick sends each
        station's newest state anyway, so nothing is lost but intermediate states.
        """
        published: dict[
            str, tuple[Reading, StateForecast | None, alert_current.CurrentAlert | None]
        ] = {}
        unacknowledged: list[mqtt.MQTTMessageInfo] = []
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.settings.state_interval_s)
            if any(
                info.rc == mqtt.MQTT_ERR_SUCCESS and not info.is_published()
                for info in unacknowledged
            ):
                continue
            unacknowledged = []
            for station_id, reading in list(self._latest.items()):
                forecast = self._forecasts.get(station_id)
                alert = self._alerts.get(station_id)
                before = published.get(station_id)
                if (
                    before is not None
                    and before[0] is reading
                    and before[1] is forecast
                    and before[2] is alert
                ):
                    continue
                published[station_id] = (reading, forecast, alert)
                info = self.client.publish(
                    topics.station_state(station_id),
                    self._state_payload(reading, forecast, alert),
                    qos=1,
                    retain=True,
                )
                unacknowledged.append(info)

    def _state_payload(
        self,
        reading: Reading,
        forecast: StateForecast | None = None,
        alert: alert_current.CurrentAlert | None = None,
    ) -> bytes:
        station = self.catalog.get(reading.station_id)
        document = orjson.dumps(
            {
                "station_id": reading.station_id,
                "ts": reading.ts.isoformat(),
                "level": reading.level,
                "unit": station.unit if station else None,
                "qc": reading.qc.names(),
                "faulty": bool(reading.qc & FAULT_FLAGS),
                "suspect": bool(reading.qc & QCFlag.SUSPECT),
                "maintenance": bool(station and station.maintenance),
                # From the forecaster's latest forecast (null until one arrives).
                "trend": forecast.trend if forecast else None,
                # From the alert engine's current picture (null while none runs): the rung
                # held, the pre-warning out, and whether the engine deems the gauge offline.
                "alert_level": alert.level if alert else None,
                "prewarning": alert.prewarning if alert else None,
                "offline": alert.offline if alert else None,
                "forecast": forecast.forecast if forecast else None,
            }
        )
        return _compact(document)
