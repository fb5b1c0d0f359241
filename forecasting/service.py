"""The forecaster: clean readings in over MQTT, forecasts out to the store and to MQTT.

A scheduled pass forecasts every station each `forecast_interval_s`; a reading that changes
the picture (see forecasting/prompt.py) gets its station forecast at once instead, at most
once per PROMPT_DEBOUNCE_S per station. History lives in memory, primed from the store at
start-up; learned models come from the model store or are learned in the background, and
relearned every `forecast_relearn_h`. Store and broker failures are logged and counted and
never stop the service: the next run writes and publishes again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler  # type: ignore[import-untyped]

from floodwatch.catalog import Catalog, Station
from floodwatch.errors import StoreRejected, StoreUnavailable
from floodwatch.models import ForecastPoint, utc_now
from floodwatch.settings import Settings
from floodwatch.storage.base import ReadingStore
from forecasting.debounce import Debouncer
from forecasting.feed import ForecastFeed
from forecasting.forecast import StationForecast
from forecasting.history import CleanReading, History, window_hours
from forecasting.learning import ModelKeeper
from forecasting.metrics import ForecasterMetrics
from forecasting.model_store import ModelStore
from forecasting.prompt import needs_prompt_run
from forecasting.runs import Outcome, run_forecasts
from forecasting.series import Series

log = logging.getLogger(__name__)

PROMPT_DEBOUNCE_S = 2.0
# After the store failed during learning, try again this soon rather than a day later.
LEARN_RETRY_S = 300.0
# How long stopping waits for a run in progress to store and publish its forecasts.
STOP_WAIT_S = 10.0
# Healthy while the last pass finished within this many intervals.
HEALTHY_INTERVALS = 3


class Forecaster:
    def __init__(
        self,
        settings: Settings,
        catalog: Catalog,
        store: ReadingStore,
        *,
        model_store: ModelStore | None = None,
        clock: Callable[[], datetime] = utc_now,
        scheduled: bool = True,
    ) -> None:
        """`clock` is what "now" is for the forecasts (issue times, history windows,
        learning periods); `scheduled=False` leaves out the timed passes, the relearning
        job and the prompt runs, for a caller that drives the forecaster in its own time
        (`run_pass`), such as the demo's compressed time."""
        self.settings = settings
        self.clock = clock
        self._scheduled = scheduled
        self.catalog = catalog
        self.store = store
        self.metrics = ForecasterMetrics()
        self.history = History(window_hours(catalog, settings.forecast_history_h))
        self.model_store = model_store or ModelStore(settings.state_path)
        self.models = ModelKeeper(
            catalog,
            store,
            self.model_store,
            self.metrics,
            learn_period=settings.forecast_learn_period,
            relearn_after=settings.forecast_relearn_after,
            clock=clock,
        )
        self.last: dict[str, StationForecast] = {}
        self.feed = ForecastFeed(settings, self.metrics, self._on_reading)
        self.scheduler = AsyncIOScheduler(timezone=UTC)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = False
        self._started_at = time.monotonic()
        self._last_pass_done: float | None = None
        self._store_ok = True
        # Stations whose history is not yet primed from the store, in catalog order.
        self._unprimed: dict[str, None] = dict.fromkeys(catalog)
        # Set once the models missing at start-up have been learned (or found unlearnable).
        self.models_ready = asyncio.Event()
        self.prompts = Debouncer(PROMPT_DEBOUNCE_S, self._prompt_run)
        self._learning: asyncio.Task[None] | None = None
        self._pass_task: asyncio.Task[Any] | None = None

    # ----- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._started_at = time.monotonic()
        try:
            await self.store.open()
        except StoreUnavailable as exc:
            log.warning(
                "store unavailable at start-up; forecasts are written once it answers: %s", exc
            )
        try:
            await self.model_store.open()
        except StoreUnavailable as exc:
            log.error("model store unavailable; models are learned but not kept: %s", exc)
        # Subscribe before priming: a reading arriving meanwhile is merged, not lost.
        await self.feed.start()
        await self._prime()
        stale = await self.models.load_current()
        self._learning = asyncio.create_task(self._learn_models(stale), name="forecaster-learn")
        if self._scheduled:
            self._schedule()
        log.info(
            "forecaster %s started: broker %s, store %s, %d stations, a pass every %g s",
            self.settings.forecast_client_id,
            self.feed.endpoint.display(),
            self.store.description,
            len(self.catalog),
            self.settings.forecast_interval_s,
        )

    def _schedule(self) -> None:
        interval = self.settings.forecast_interval_s
        now = datetime.now(UTC)
        defaults = {"coalesce": True, "max_instances": 1, "misfire_grace_time": None}
        self.scheduler.add_job(
            self._scheduled_pass, "interval", seconds=interval, next_run_time=now, **defaults
        )
        relearn = self.settings.forecast_relearn_after
        self.scheduler.add_job(
            self._relearn,
            "interval",
            seconds=relearn.total_seconds(),
            next_run_time=now + relearn,
            **defaults,
        )
        self.scheduler.start()

    async def stop(self) -> None:
        """Let the runs in progress deliver (for up to STOP_WAIT_S), then stop; learning is
        abandoned (it resumes from the stored models at the next start)."""
        self._stopping = True
        if self.scheduler.running:
            self.scheduler.pause()  # no new passes; shutting down now would cancel this one
        await self.prompts.stop(STOP_WAIT_S)
        if self._pass_task is not None and not self._pass_task.done():
            await asyncio.wait({self._pass_task}, timeout=STOP_WAIT_S)
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        if self._learning is not None and not self._learning.done():
            self._learning.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._learning
        self.feed.stop()
        await self.model_store.close()
        await self.store.close()

    async def run_until(self, stop: asyncio.Event) -> None:
        await self.start()
        try:
            await stop.wait()
        finally:
            await self.stop()

    async def wait_subscribed(self, wait_s: float = 10.0) -> None:
        await self.feed.wait_subscribed(wait_s)

    def failure(self) -> str | None:
        return None if self._stopping else self.feed.failure()

    def health(self) -> tuple[bool, dict[str, Any]]:
        since = self._last_pass_done or self._started_at
        age = time.monotonic() - since
        fresh = age <= HEALTHY_INTERVALS * self.settings.forecast_interval_s
        healthy = self.feed.connected and fresh
        details = {
            "status": "ok" if healthy and self._store_ok else "degraded" if healthy else "failing",
            "mqtt": "connected" if self.feed.connected else "disconnected",
            "store": "up" if self._store_ok else "unavailable",
            "last_pass_age_s": round(age, 1) if self._last_pass_done else None,
            "models": sum(model is not None for model in self.models.models.values()),
        }
        return healthy, details

    # ----- paho thread -----------------------------------------------------------------

    def _on_reading(self, reading: CleanReading) -> None:
        station = self.catalog.get(reading.station_id)
        if station is None or not self.history.add(reading):
            self.metrics.ignored.labels("unknown_station").inc()
            return
        self.metrics.readings.inc()
        sid = station.id
        if (
            self._scheduled
            and not self.prompts.waiting(sid)
            and needs_prompt_run(self.last.get(sid), reading.level, reading.t, station)
        ):
            assert self._loop is not None
            self._loop.call_soon_threadsafe(self._request_prompt, sid)

    # ----- event loop ------------------------------------------------------------------

    async def _prime(self) -> None:
        """Fill the history windows from the store; stations it could not reach stay in
        `_unprimed` and are tried again before the next pass."""
        now = self.clock()
        for station_id in list(self._unprimed):
            start = now - timedelta(seconds=self.history.window_s(station_id))
            try:
                readings = await self.store.query(station_id, start, now + self.settings.max_future)
            except StoreUnavailable as exc:
                log.warning(
                    "cannot prime history from the store yet (%d stations left): %s",
                    len(self._unprimed),
                    exc,
                )
                self.metrics.store_errors.labels("prime").inc()
                return
            self.history.prime(station_id, await asyncio.to_thread(Series.from_readings, readings))
            del self._unprimed[station_id]

    async def _learn_models(self, stations: Sequence[Station]) -> None:
        learned, failed = await self.models.learn(stations)
        self.models_ready.set()
        if learned and not self._stopping and self._scheduled:
            # New models should not wait up to a whole interval to be used.
            await self._scheduled_pass()
        if failed and not self._stopping:
            # After a store outage, try again soon rather than at the next relearn.
            when = datetime.now(UTC) + timedelta(seconds=LEARN_RETRY_S)
            self.scheduler.add_job(self._learn_models, "date", run_date=when, args=[failed])

    async def relearn(self) -> None:
        """Learn every station's model again now: the periodic relearning, on demand."""
        await self._relearn()

    async def _relearn(self) -> None:
        await self._learn_models(list(self.catalog.values()))

    async def run_pass(self) -> None:
        """Forecast every station now (by `clock`): the scheduled pass, on demand."""
        await self._scheduled_pass()

    async def _scheduled_pass(self) -> None:
        self._pass_task = asyncio.current_task()
        if self._unprimed:
            await self._prime()
        await self._run(list(self.catalog.values()), "scheduled")
        self._last_pass_done = time.monotonic()
        self.metrics.last_pass.set(time.time())

    def _request_prompt(self, station_id: str) -> None:
        # An unprimed station would be forecast from a few live readings only; the pass
        # that primes it forecasts it.
        if station_id not in self._unprimed and not self._stopping:
            self.prompts.request(station_id)

    async def _prompt_run(self, station_id: str) -> None:
        await self._run([self.catalog[station_id]], "prompt")

    async def _run(self, stations: Sequence[Station], kind: str) -> None:
        started = time.monotonic()
        models = dict(self.models.models)
        outcomes = await asyncio.to_thread(
            run_forecasts, stations, self.history, models, self.clock().timestamp()
        )
        await self._deliver(outcomes)
        self.metrics.runs.labels(kind).inc()
        self.metrics.pass_seconds.labels(kind).observe(time.monotonic() - started)

    async def _deliver(self, outcomes: Sequence[Outcome]) -> None:
        """Store, then publish, each forecast newer than the one already out."""
        fresh = [o for o in outcomes if self._is_newest(o.forecast)]
        for outcome in fresh:
            forecast = outcome.forecast
            self.last[forecast.station_id] = forecast
            self.metrics.stations.labels(forecast.method).inc()
            if forecast.insufficient:
                self.metrics.insufficient.inc()
        await self._write([point for o in fresh for point in o.points])
        for outcome in fresh:
            self.feed.publish(outcome.forecast.station_id, outcome.payload)

    def _is_newest(self, forecast: StationForecast) -> bool:
        # A pass and a prompt run may overlap; the later issue time wins.
        previous = self.last.get(forecast.station_id)
        return previous is None or previous.issued_at <= forecast.issued_at

    async def _write(self, points: Sequence[ForecastPoint]) -> None:
        if not points:
            return
        try:
            await self.store.write_forecasts(points)
        except StoreUnavailable as exc:
            self._store_failed("unavailable", exc)
        except StoreRejected as exc:
            self._store_failed("rejected", exc)
        else:
            if not self._store_ok:
                log.info("forecasts are written to the store again")
            self._store_ok = True

    def _store_failed(self, kind: str, exc: Exception) -> None:
        # Refused data says nothing about the store being up; a lost store does.
        self._store_ok = kind == "rejected"
        self.metrics.store_errors.labels(kind).inc()
        log.error("forecasts not stored (the next run writes again): %s", exc)
