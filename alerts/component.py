"""The `alerts` component of `floodwatch run`: the engine, the delivery of its outbox
(MQTT and InfluxDB channels), and the alert HTTP API on the shared health/metrics app.

Started in that order and stopped in reverse: the dispatcher reads the outbox the engine
opened, and stops (finishing the batch in flight) before the engine closes the store.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from aiohttp import web

from alerts import api
from alerts.channels.influx import InfluxChannel
from alerts.channels.metrics import DispatchMetrics
from alerts.channels.mqtt import MqttChannel
from alerts.channels.texts import EventTexts
from alerts.dispatch import Dispatcher
from alerts.engine import AlertEngine
from alerts.store import AlertStore
from floodwatch.catalog import Catalog
from floodwatch.errors import StoreUnavailable
from floodwatch.models import utc_now
from floodwatch.settings import Settings
from floodwatch.storage import open_store

log = logging.getLogger(__name__)


class AlertComponent:
    def __init__(self, settings: Settings, *, clock: Callable[[], datetime] = utc_now) -> None:
        """`clock`: the engine's "now" (see AlertEngine); delivery keeps the wall clock."""
        self.settings = settings
        # Alert events go to the readings store (annotations), the API reads it, and the
        # engine catches up from it after being down.
        self.readings = open_store(settings)
        self.engine = AlertEngine(
            settings,
            settings.stations,
            AlertStore(settings.state_path),
            self.readings,
            clock=clock,
        )
        texts = EventTexts(self._catalog, settings.timezone)
        self.delivery_metrics = DispatchMetrics()
        mqtt = MqttChannel(
            settings.mqtt,
            f"{settings.alert_client_id}-out",  # a clean publisher beside the subscriber
            texts=texts,
            catalog_source=self._catalog,
            states=self.engine.store.load_states,
            keepalive_s=settings.mqtt_keepalive_s,
        )
        influx = InfluxChannel(self.readings, texts, self.delivery_metrics)
        self.dispatcher = Dispatcher(
            self.engine.store, [mqtt, influx], metrics=self.delivery_metrics
        )
        self.engine.on_committed.append(self.dispatcher.wake)

    def _catalog(self) -> Catalog:
        return self.engine.catalog  # the one in force: reloaded file plus overrides

    def add_routes(self, app: web.Application) -> None:
        api.add_routes(
            app,
            catalog_source=self._catalog,
            alert_store=self.engine.store,
            readings=self.readings,
            settings=self.settings,
        )

    async def start(self) -> None:
        try:
            await self.readings.open()
        except StoreUnavailable as exc:
            # Events wait in the outbox; the InfluxDB channel retries until it answers.
            log.warning("readings store unavailable at start-up for alerts: %s", exc)
        await self.engine.start()
        await self.dispatcher.start()

    async def stop(self) -> None:
        await self.dispatcher.stop()
        await self.engine.stop()
        await self.readings.close()

    def failure(self) -> str | None:
        return self.engine.failure() or self.dispatcher.failure()

    def health(self) -> tuple[bool, dict[str, Any]]:
        engine_ok, details = self.engine.health()
        delivery_ok, delivery = self.dispatcher.health()
        return engine_ok and delivery_ok, {**details, "delivery": delivery}

    def render(self) -> bytes:
        return self.engine.render() + self.delivery_metrics.render()
