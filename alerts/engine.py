"""The alert engine: MQTT inputs → per-gauge state machine → state store (outbox) → channels.

Every input of a gauge (a reading, a flagged reading, a forecast, a clock tick, a
threshold change) is decided under that gauge's lock, in arrival order, by the pure state
machine (alerts/state_machine.py); the new state and its events are committed to the
store in one transaction before anything else happens, and only then are the channels
woken (`on_committed`). The in-memory state follows the store: a failed commit leaves it
as it was, so the next input decides again and nothing half-done is ever sent.

Bad input never stops the engine: an unknown station or an unreadable payload is counted
and dropped; a store that fails is logged, counted and shown in /healthz.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from alerts.catalog_watch import CatalogInForce, CatalogWatch
from alerts.feed import AlertFeed
from alerts.gauge_state import GaugeState
from alerts.inputs import ForecastInput, Input, ReadingInput
from alerts.metrics import AlertMetrics
from alerts.reconcile import changes
from alerts.state_machine import AlertRules, Transition, on_forecast, on_reading, on_tick
from alerts.store import AlertStore, OutboxItem
from alerts.thresholds import fingerprint
from floodwatch.catalog import Catalog, Station
from floodwatch.errors import StoreUnavailable
from floodwatch.guard import describe_error
from floodwatch.log_limit import LogLimit
from floodwatch.models import utc_now
from floodwatch.settings import Settings
from floodwatch.storage.base import ReadingStore
from floodwatch.watchdog import task_ended

log = logging.getLogger(__name__)

Decide = Callable[[GaugeState, Station], Transition]


def rules_from(settings: Settings) -> AlertRules:
    return AlertRules(
        clear_dwell_s=settings.alert_clear_dwell_s,
        offline_after_s=settings.alert_offline_after_s,
        fault_clear_readings=settings.alert_fault_clear_readings,
        prewarning_shift_s=settings.alert_prewarning_shift_s,
    )


class AlertEngine:
    def __init__(
        self,
        settings: Settings,
        catalog_path: Path,
        alert_store: AlertStore,
        readings: ReadingStore | None = None,
        *,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        """`clock` is what "now" is for offline checks, catch-up and threshold changes (the
        demo passes one that follows its compressed time)."""
        self.settings = settings
        self.clock = clock
        self.store = alert_store
        # Where readings stored while the engine was down are read back from (see catch_up).
        self.readings = readings
        self._held: list[Input] | None = None
        self.rules = rules_from(settings)
        self.metrics = AlertMetrics()
        self.thresholds = CatalogInForce(catalog_path, alert_store, self.metrics)
        self.states: dict[str, GaugeState] = {}
        # Called after every commit that added events: the channels' dispatcher hooks here.
        self.on_committed: list[Callable[[], None]] = []
        self.feed = AlertFeed(settings, self.metrics, self._on_input)
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._forecast_issued: dict[str, datetime] = {}
        self._store_ok = True
        self._log_limit = LogLimit()
        self._refreshing = asyncio.Lock()
        self._missed_commit = False
        self._started_at = self.clock()
        self._tasks: list[asyncio.Task[None]] = []
        self._inputs: set[asyncio.Task[Any]] = set()
        self._stopping = asyncio.Event()
        self._error_logs = LogLimit()

    # ----- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        await self.prepare()
        # Live inputs wait while the engine catches up, so a gauge's readings are decided
        # in time order: a live reading first would make the older stored ones look stale.
        self._held = []
        await self.feed.start()
        await self.catch_up()
        held, self._held = self._held, None
        for item in held:
            self._on_input(item)
        self._tasks = [
            asyncio.create_task(
                self._every(self.settings.alert_tick_s, self.tick), name="alert-tick"
            ),
            asyncio.create_task(
                self._every(self.settings.catalog_poll_s, self.refresh), name="alert-catalog"
            ),
        ]
        log.info(
            "alert engine %s started: broker %s, state %s, %d stations",
            self.settings.alert_client_id,
            self.feed.endpoint.display(),
            self.store.path,
            len(self.catalog),
        )

    async def prepare(self) -> None:
        """Open the store, load the gauges' states, and decide what changed while the
        engine was down (thresholds, maintenance). `start` does this first."""
        self._started_at = self.clock()
        await self.store.open()
        self.states = await self.store.load_states()
        await self.thresholds.update(force=True)
        # Changes made while the engine was down: against the ladder each state was
        # decided on, as stored with it.
        await self._reconcile((await self.store.ladders()).get)

    async def catch_up(self) -> int:
        """Decide the readings stored while the engine was down, oldest first.

        The collector republishes clean readings at QoS 0, so the broker keeps none for an
        engine that is away; the readings store has them all. Looks back at most
        `alert_catch_up_h`. Returns how many readings were decided.
        """
        if self.readings is None:
            return 0
        now = self.clock()
        floor = now - timedelta(hours=self.settings.alert_catch_up_h)
        decided = 0
        for station_id, state in sorted(self.states.items()):
            if state.last_at is None or station_id not in self.catalog:
                continue
            try:
                stored = await self.readings.query(station_id, max(state.last_at, floor), now)
            except StoreUnavailable as exc:
                log.warning("cannot catch up from the readings store: %s", exc)
                return decided
            for reading in stored:
                if reading.ts <= state.last_at:
                    continue  # decided before the engine went down
                await self.handle(ReadingInput(station_id, reading.level, reading.ts, reading.qc))
                decided += 1
        if decided:
            log.info("caught up on %d readings stored while the engine was down", decided)
        return decided

    async def stop(self) -> None:
        """Stop taking input, let decisions in progress commit, then close the store."""
        self._stopping.set()
        self.feed.stop()
        if self._tasks:
            await asyncio.wait(self._tasks)  # each finishes the job in hand, then ends
        if self._inputs:
            await asyncio.wait(self._inputs, timeout=10)
        await self.store.close()

    async def wait_subscribed(self, wait_s: float = 10.0) -> None:
        await self.feed.wait_subscribed(wait_s)

    async def idle(self) -> None:
        """Wait until every input taken so far is decided and committed (the demo steps
        its compressed time only then)."""
        while self._inputs:
            await asyncio.wait(set(self._inputs))

    def failure(self) -> str | None:
        if self._stopping.is_set():
            return None
        return self.feed.failure() or task_ended(self._tasks)

    def health(self) -> tuple[bool, dict[str, Any]]:
        healthy = self.feed.connected and self._store_ok
        clean = self.watch.error is None and not self.thresholds.problems
        details = {
            "status": "ok" if healthy and clean else "degraded" if healthy else "failing",
            "mqtt": "connected" if self.feed.connected else "disconnected",
            "store": "up" if self._store_ok else "unavailable",
            "catalog": "ok" if self.watch.error is None else f"refused: {self.watch.error}",
            "overrides": self.thresholds.problems or "ok",
            "stations": len(self.catalog),
            "active": sum(state.active is not None for state in self.states.values()),
        }
        return healthy, details

    def render(self) -> bytes:
        """Prometheus text; the gauges by state are counted at scrape time."""
        self.metrics.count_gauges(dict(self.states), self.catalog)
        return self.metrics.render()

    # ----- inputs ----------------------------------------------------------------------

    def _on_input(self, item: Input) -> None:
        """From the feed, on the loop: one task per input; the gauge's lock keeps order."""
        if self._stopping.is_set():
            return
        if self._held is not None:
            self._held.append(item)
            return
        task = asyncio.create_task(self._handle_logged(item))
        self._inputs.add(task)
        task.add_done_callback(self._inputs.discard)

    async def _handle_logged(self, item: Input) -> None:
        try:
            await self.handle(item)
        except Exception as exc:  # a bug must cost one input, not the engine
            error = describe_error(exc)
            self.metrics.count_internal_error(error)
            if self._error_logs.allow():
                log.error("alert engine: internal error on %r: %s", item, error.detail)

    async def handle(self, item: Input) -> list[OutboxItem]:
        """Decide one input and commit the outcome; returns the events added."""
        if isinstance(item, ReadingInput):
            kind = "flagged" if item.qc else "reading"
            qc = item.qc

            def decide(state: GaugeState, station: Station) -> Transition:
                return on_reading(state, station, item.level, item.at, self.rules, qc)

            return await self._decide(item.station_id, kind, decide)
        return await self._forecast(item)

    async def _forecast(self, item: ForecastInput) -> list[OutboxItem]:
        # Retained forecasts come again on every reconnection: only a newer one counts.
        seen = self._forecast_issued.get(item.station_id)
        if seen is not None and item.issued_at <= seen:
            return []

        def decide(state: GaugeState, station: Station) -> Transition:
            return on_forecast(state, station, item.view, self.rules)

        items = await self._decide(item.station_id, "forecast", decide)
        if item.station_id in self.catalog:
            self._forecast_issued[item.station_id] = item.issued_at
        return items

    async def tick(self) -> None:
        """Offline detection. After a restart, silence counts from the start, so the time
        the engine itself was down does not make every gauge offline at once."""
        now = self.clock()
        grace = now - self._started_at <= timedelta(seconds=self.rules.offline_after_s)

        def decide(state: GaugeState, station: Station) -> Transition:
            if grace and state.last_at is not None and state.last_at < self._started_at:
                return Transition(state)
            return on_tick(state, station, now, self.rules)

        for station_id in list(self.catalog):
            await self._decide(station_id, "tick", decide)

    async def _decide(self, station_id: str, kind: str, decide: Decide) -> list[OutboxItem]:
        if station_id not in self.catalog:
            self.metrics.ignored.labels("unknown_station").inc()
            if self._log_limit.allow():
                log.warning("alert engine ignored input of unknown station %r", station_id)
            return []
        async with self._locks[station_id]:
            station = self.catalog.get(station_id)  # the catalog may have changed meanwhile
            if station is None:
                return []
            state = self.states.get(station_id, GaugeState())
            transition = decide(state, station)
            self.metrics.inputs.labels(kind).inc()
            if transition.state == state and not transition.events:
                return []
            items = await self._commit(station, transition)
        if items:
            self._notify()
        return items

    async def _commit(self, station: Station, transition: Transition) -> list[OutboxItem]:
        started = time.perf_counter()
        try:
            items = await self.store.commit(
                station.id, transition.state, transition.events, ladder=fingerprint(station)
            )
        except StoreUnavailable as exc:
            self._missed_commit = True
            self.metrics.store_errors.inc()
            if self._store_ok:
                log.error("alert state not stored (decided again with the next input): %s", exc)
            self._store_ok = False
            return []
        if not self._store_ok:
            log.info("alert state is stored again")
        self._store_ok = True
        self.metrics.commit_seconds.observe(time.perf_counter() - started)
        self.states[station.id] = transition.state
        for item in items:
            self.metrics.events.labels(item.event.kind.value).inc()
            log.info("alert event %s", item.event.event_id)
        return items

    def _notify(self) -> None:
        for callback in list(self.on_committed):
            try:
                callback()
            except Exception:
                log.exception("an on_committed callback failed")

    # ----- catalog and overrides -------------------------------------------------------

    @property
    def catalog(self) -> Catalog:
        """The catalog in force: the file as last loaded, with the overrides applied."""
        return self.thresholds.catalog

    @property
    def base_catalog(self) -> Catalog:
        """The catalog file as last loaded (what hydrologists' changes are checked on)."""
        return self.thresholds.base

    @property
    def watch(self) -> CatalogWatch:
        return self.thresholds.watch

    async def refresh(self) -> None:
        """Apply a changed catalog file or changed overrides (from the CLI or the bot)."""
        async with self._refreshing:  # the poll and a caller in process (the bot) may meet
            previous = await self.thresholds.update()
            if previous is not None:

                def before(station_id: str) -> str | None:
                    was = previous.get(station_id)
                    return fingerprint(was) if was is not None else None

                await self._reconcile(before)
            elif self._missed_commit:
                # A change decided while the store failed was not kept: compare with what
                # the store holds, as at start-up.
                await self._reconcile((await self.store.ladders()).get)

    async def _reconcile(self, ladder_before: Callable[[str], str | None]) -> None:
        """Re-decide, at once, every gauge whose ladder or maintenance flag changed."""
        self._missed_commit = False
        now = self.clock()
        for station in self.catalog.values():
            state = self.states.get(station.id, GaugeState())
            decide = changes(state, station, ladder_before(station.id), now, self.rules)
            if decide is not None:
                await self._decide(station.id, "catalog", decide)

    async def _every(self, seconds: float, job: Callable[[], Any]) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), seconds)
                return
            try:
                await job()
            except StoreUnavailable as exc:
                log.error("alert engine: %s", exc)
            except Exception:
                log.exception("alert engine: %s failed; trying again", job)
