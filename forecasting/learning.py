"""Keeping every station's learned model ready: load it if current, else learn and save it.

The CPU work (turning a year of readings into arrays, fitting) runs in a worker thread; the
store and model-store calls are async. A station that cannot be learned forecasts with its
own trend meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta

from floodwatch.catalog import Catalog, Station
from floodwatch.errors import StoreUnavailable
from floodwatch.models import utc_now
from floodwatch.storage.base import ReadingStore
from forecasting.learn import learn_model
from forecasting.metrics import ForecasterMetrics
from forecasting.model_store import ModelStore, StoredModel, fingerprint
from forecasting.routing import LearnedModel
from forecasting.series import Series
from forecasting.trend import HOUR, InsufficientData

log = logging.getLogger(__name__)


def learn_station(
    station: Station, observed: Series, upstream: Mapping[str, Series]
) -> LearnedModel | InsufficientData:
    """Pure: the station's model from its (clean) history, with its catalog settings."""
    settings = station.forecast
    step_s = settings.step_h * HOUR if settings.step_h else observed.typical_step()
    if step_s is None or step_s <= 0:
        return InsufficientData(f"only {len(observed)} readings of history to learn from")
    return learn_model(
        station.id,
        observed,
        upstream,
        step_s=step_s,
        horizons_s=[h * HOUR for h in settings.horizons_h],
        max_lag_s=settings.max_travel_h * HOUR,
        overrides_s={sid: hours * HOUR for sid, hours in settings.travel_h.items()},
    )


class ModelKeeper:
    """The current model (or None: use the trend) of every station in the catalog."""

    def __init__(
        self,
        catalog: Catalog,
        store: ReadingStore,
        model_store: ModelStore,
        metrics: ForecasterMetrics,
        *,
        learn_period: timedelta,
        relearn_after: timedelta,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.catalog = catalog
        self.clock = clock
        self.store = store
        self.model_store = model_store
        self.metrics = metrics
        self.learn_period = learn_period
        self.relearn_after = relearn_after
        self.models: dict[str, LearnedModel | None] = {}
        self._reasons: dict[str, str] = {}

    async def load_current(self) -> list[Station]:
        """Use every stored model that is still current; return the stations left to learn.

        Quick (one read of the model store), so the first pass already has the models."""
        try:
            stored = {record.station_id: record for record in await self.model_store.load_all()}
        except StoreUnavailable as exc:
            log.error("cannot read the stored models; learning them all: %s", exc)
            stored = {}
        now = self.clock()
        stale = []
        for station in self.catalog.values():
            record = stored.get(station.id)
            if record is not None and record.is_current(station, now, self.relearn_after):
                self._use(record, "loaded")
            else:
                stale.append(station)
        return stale

    async def learn(self, stations: Sequence[Station]) -> tuple[int, list[Station]]:
        """Learn and keep each station's model, one at a time.

        Returns how many models were learned, and the stations the store failed for: they
        keep their previous model (or the trend) until the next attempt.
        """
        learned, failed = 0, []
        for station in stations:
            try:
                record = await self._learn(station, self.clock())
            except StoreUnavailable as exc:
                failed.append(station)
                self.metrics.models.labels("failed").inc()
                log.warning("cannot learn the model of %s now: %s", station.id, exc)
                continue
            try:
                await self.model_store.save(record)
            except StoreUnavailable as exc:
                log.error("cannot keep the model of %s (it is used anyway): %s", station.id, exc)
            learned += record.model is not None
            self._use(record, "learned" if record.model else "insufficient")
        return learned, failed

    async def _learn(self, station: Station, now: datetime) -> StoredModel:
        days = station.forecast.learn_days
        start = now - (timedelta(days=days) if days else self.learn_period)
        observed = await self._history(station.id, start, now)
        upstream = {sid: await self._history(sid, start, now) for sid in station.upstream}
        try:
            outcome = await asyncio.to_thread(learn_station, station, observed, upstream)
        except (ValueError, ArithmeticError) as exc:  # numpy's LinAlgError is a ValueError
            outcome = InsufficientData(f"learning failed: {exc}")
        if isinstance(outcome, InsufficientData):
            return StoredModel(station.id, fingerprint(station), now, None, outcome.reason)
        return StoredModel(station.id, fingerprint(station), now, outcome)

    async def _history(self, station_id: str, start: datetime, end: datetime) -> Series:
        readings = await self.store.query(station_id, start, end)
        return await asyncio.to_thread(Series.from_readings, readings)

    def _use(self, record: StoredModel, outcome: str) -> None:
        self.models[record.station_id] = record.model
        self.metrics.models.labels(outcome).inc()
        if record.model is not None:
            self._reasons.pop(record.station_id, None)
            level = logging.DEBUG if outcome == "loaded" else logging.INFO
            method, links = record.model.method, len(record.model.upstream)
            log.log(
                level, "model of %s %s: %s, %d upstream", record.station_id, outcome, method, links
            )
        elif record.reason and self._reasons.get(record.station_id) != record.reason:
            # Said once, not at every relearn: the trend carries the station meanwhile.
            self._reasons[record.station_id] = record.reason
            log.info("%s forecasts with its trend: %s", record.station_id, record.reason)
