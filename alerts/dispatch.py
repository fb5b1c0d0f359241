"""The dispatcher: one loop per channel, from the outbox to the channel and back.

Each loop takes the events its channel has not delivered yet (in outbox order), hands them
to the channel, and marks them delivered only once the channel confirmed them. A crash
therefore loses nothing; it can repeat at most the batch in flight, which channels make
harmless (MQTT messages carry the event id, InfluxDB points are keyed by time and tags).
A failing channel backs off on its own and never holds up the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from alerts.channels.base import Channel, DeliveryFailed
from alerts.channels.metrics import DispatchMetrics
from alerts.store import AlertStore, OutboxItem
from floodwatch.errors import StoreUnavailable
from floodwatch.models import utc_now
from floodwatch.watchdog import task_ended

log = logging.getLogger(__name__)

BATCH = 500
POLL_S = 1.0  # fallback when no commit wakes the loop (another process wrote the outbox)
BACKOFF_MIN_S = 0.5
BACKOFF_MAX_S = 30.0
STOP_WAIT_S = 10.0  # how long stopping lets a delivery in flight finish and be marked


@dataclass
class _ChannelState:
    channel: Channel
    wakeup: asyncio.Event
    backoff: float = BACKOFF_MIN_S
    failing_since: float | None = None  # monotonic
    last_error: str | None = None
    task: asyncio.Task[None] | None = None


class Dispatcher:
    def __init__(
        self,
        store: AlertStore,
        channels: Sequence[Channel],
        *,
        metrics: DispatchMetrics | None = None,
        batch: int = BATCH,
        poll_s: float = POLL_S,
        backoff_s: tuple[float, float] = (BACKOFF_MIN_S, BACKOFF_MAX_S),
    ) -> None:
        names = [channel.name for channel in channels]
        if len(set(names)) != len(names):
            raise ValueError(f"channel names must be unique: {names}")
        self.store = store
        self.metrics = metrics or DispatchMetrics()
        self._batch = batch
        self._poll_s = poll_s
        self._backoff_min, self._backoff_max = backoff_s
        self._states = {
            channel.name: _ChannelState(channel, asyncio.Event(), self._backoff_min)
            for channel in channels
        }
        self._stopping = asyncio.Event()

    @property
    def channels(self) -> list[Channel]:
        return [state.channel for state in self._states.values()]

    # ----- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        self._stopping.clear()
        for name, state in self._states.items():
            await state.channel.start()
            state.task = asyncio.create_task(self._run(state), name=f"dispatch-{name}")
        log.info("dispatcher started: channels %s", ", ".join(self._states))

    async def stop(self) -> None:
        """Let deliveries in flight finish and be marked (up to STOP_WAIT_S), then stop."""
        self._stopping.set()
        self.wake()
        tasks = [state.task for state in self._states.values() if state.task is not None]
        if tasks:
            _done, late = await asyncio.wait(tasks, timeout=STOP_WAIT_S)
            for task in late:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        for state in self._states.values():
            state.task = None
            await state.channel.stop()

    def wake(self) -> None:
        """Deliver now: the engine calls this after each commit (from the event loop)."""
        for state in self._states.values():
            state.wakeup.set()

    def failure(self) -> str | None:
        if self._stopping.is_set():
            return None
        return task_ended(state.task for state in self._states.values())

    def health(self) -> tuple[bool, dict[str, Any]]:
        now = time.monotonic()
        channels = {}
        for name, state in self._states.items():
            channels[name] = {
                "status": "ok" if state.failing_since is None else "failing",
                "failing_for_s": None
                if state.failing_since is None
                else round(now - state.failing_since, 1),
                "last_error": state.last_error,
                **state.channel.health(),
            }
        # Undelivered events wait safely in the outbox, so a failing target is reported
        # but is no reason to restart the process; a loop that died is.
        running = all(s.task is not None and not s.task.done() for s in self._states.values())
        failing = any(state.failing_since is not None for state in self._states.values())
        status = "ok" if running and not failing else "degraded" if running else "failing"
        return running, {"status": status, "channels": channels}

    # ----- one loop per channel --------------------------------------------------------

    async def _run(self, state: _ChannelState) -> None:
        name = state.channel.name
        while not self._stopping.is_set():
            # Cleared before looking, so a commit landing after the look still wakes us.
            state.wakeup.clear()
            try:
                items = await self.store.pending(name, self._batch)
            except StoreUnavailable as exc:
                await self._failed(state, f"outbox unreadable: {exc}")
                continue
            except Exception as exc:  # e.g. the store closed under us: keep the loop alive
                log.exception("reading the outbox for %s failed", name)
                await self._failed(state, f"outbox unreadable: {type(exc).__name__}: {exc}")
                continue
            self.metrics.pending.labels(name).set(len(items))
            if not items:
                await self._idle(state)
                continue
            await self._deliver(state, items)

    async def _deliver(self, state: _ChannelState, items: list[OutboxItem]) -> None:
        name = state.channel.name
        error: str | None = None
        try:
            await state.channel.deliver(items)
            done = len(items)
        except DeliveryFailed as exc:
            done, error = exc.delivered, str(exc)
        except Exception as exc:
            # A bug in a channel must not end its loop: log it loudly and retry.
            log.exception("channel %s failed unexpectedly", name)
            done, error = 0, f"{type(exc).__name__}: {exc}"
        if done:
            await self._mark(state, items[:done])
        if error is not None:
            await self._failed(state, error)
        elif state.failing_since is not None:
            log.info("channel %s delivers again", name)
            self._recovered(state)
        else:
            self.metrics.up.labels(name).set(1)

    async def _mark(self, state: _ChannelState, items: Sequence[OutboxItem]) -> None:
        """Record the confirmed items; retried, because an unmarked item is sent again."""
        name = state.channel.name
        delay = self._backoff_min
        while True:
            try:
                await self.store.mark_delivered(name, [item.seq for item in items])
                break
            except Exception as exc:  # StoreUnavailable, or a store closed under us
                log.error("cannot record deliveries on %s (retrying): %r", name, exc)
                if self._stopping.is_set():
                    return  # they are delivered again after the restart
                await self._sleep(delay)
                delay = min(delay * 2, self._backoff_max)
        now = utc_now()
        self.metrics.delivered.labels(name).inc(len(items))
        for item in items:
            self.metrics.latency.labels(name).observe(
                max(0.0, (now - item.created_at).total_seconds())
            )

    async def _failed(self, state: _ChannelState, error: str) -> None:
        name = state.channel.name
        self.metrics.failures.labels(name).inc()
        self.metrics.up.labels(name).set(0)
        if state.failing_since is None:
            state.failing_since = time.monotonic()
            log.warning("channel %s cannot deliver, retrying with backoff: %s", name, error)
        else:
            log.debug("channel %s still failing: %s", name, error)
        state.last_error = error
        await self._sleep(state.backoff)
        state.backoff = min(state.backoff * 2, self._backoff_max)

    def _recovered(self, state: _ChannelState) -> None:
        state.failing_since = None
        state.last_error = None
        state.backoff = self._backoff_min
        self.metrics.up.labels(state.channel.name).set(1)

    async def _idle(self, state: _ChannelState) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(state.wakeup.wait(), self._poll_s)

    async def _sleep(self, seconds: float) -> None:
        """Sleep, but wake at once when stopping."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)
