"""The readings-store channel: alert events beside the readings, for Grafana annotations.

InfluxDB (measurement `alert`) or the embedded SQLite store, whichever the readings go to.
A rewrite after a redelivery is the same point (InfluxDB: same time and tags) or row
(SQLite: same event id), so repeats are harmless.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

from alerts.channels.base import DeliveryFailed
from alerts.channels.metrics import DispatchMetrics
from alerts.channels.texts import EventTexts, one_line
from alerts.events import AlertEvent
from alerts.store import OutboxItem
from floodwatch.errors import StoreRejected, StoreUnavailable
from floodwatch.models import AlertRecord
from floodwatch.storage.base import ReadingStore

log = logging.getLogger(__name__)


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def to_record(event: AlertEvent, texts: EventTexts) -> AlertRecord:
    severity = event.severity
    threshold = event.threshold
    return AlertRecord(
        event_id=event.event_id,
        station_id=event.station_id,
        at=event.at,
        kind=event.kind.value,
        severity=severity.name.lower() if severity is not None else None,
        title=one_line(texts.title(event)),
        text=one_line(texts.plain(event).get("en", "")),
        level=_finite(event.level),
        threshold=_finite(threshold.value) if threshold else None,
        threshold_key=threshold.key if threshold else None,
    )


class InfluxChannel:
    """Named "influx" whatever the store: the name keys deliveries in the outbox."""

    name = "influx"

    def __init__(
        self,
        store: ReadingStore,
        texts: EventTexts,
        metrics: DispatchMetrics | None = None,
        *,
        owns_store: bool = False,
    ) -> None:
        self.store = store
        self._texts = texts
        self._metrics = metrics
        self._owns_store = owns_store  # else the store is opened and closed by its owner
        self._last_ok: bool | None = None

    async def start(self) -> None:
        if self._owns_store:
            try:
                await self.store.open()
            except StoreUnavailable as exc:
                # Deliveries wait in the outbox; each attempt tries the store again.
                log.warning("alert events wait for %s: %s", self.store.description, exc)

    async def stop(self) -> None:
        if self._owns_store:
            await self.store.close()

    def health(self) -> dict[str, Any]:
        state = {None: "unknown", True: "up", False: "unavailable"}[self._last_ok]
        return {"store": state, "target": self.store.description}

    async def deliver(self, items: Sequence[OutboxItem]) -> None:
        records = [to_record(item.event, self._texts) for item in items]
        try:
            await self.store.write_alert_events(records)
        except StoreUnavailable as exc:
            self._last_ok = False
            raise DeliveryFailed(str(exc)) from None
        except StoreRejected as exc:
            log.warning("store refused a batch of alert events, writing one by one: %s", exc)
            await self._one_by_one(records)
        self._last_ok = True

    async def _one_by_one(self, records: Sequence[AlertRecord]) -> None:
        """Find the record the store can never take, skip it (logged and counted), keep
        the rest: one bad event must not hold back every later annotation."""
        for done, record in enumerate(records):
            try:
                await self.store.write_alert_events([record])
            except StoreUnavailable as exc:
                self._last_ok = False
                raise DeliveryFailed(str(exc), done) from None
            except StoreRejected as exc:
                log.error("alert event %s dropped from %s: %s", record.event_id, self.name, exc)
                if self._metrics is not None:
                    self._metrics.dropped.labels(self.name, "rejected").inc()
