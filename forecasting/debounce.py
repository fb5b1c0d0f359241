"""Per-key debouncing on the event loop: at most one run per key every `interval_s`.

A request while a run for the key is already waiting is absorbed by it; a request soon after
a run waits out the rest of the interval. So a burst of readings for one gauge becomes one
prompt forecast, and a gauge reporting every second is forecast every `interval_s` at most.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable, Coroutine
from typing import Any

log = logging.getLogger(__name__)


class Debouncer:
    def __init__(self, interval_s: float, run: Callable[[str], Coroutine[Any, Any, None]]) -> None:
        self.interval_s = interval_s
        self._run = run
        self._waiting: dict[str, asyncio.TimerHandle] = {}
        self._last: dict[str, float] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def waiting(self, key: str) -> bool:
        """Whether a run for `key` is already due (safe to ask from another thread)."""
        return key in self._waiting

    def request(self, key: str) -> None:
        """Ask for a run of `key` (on the loop's thread)."""
        if key in self._waiting:
            return
        delay = max(0.0, self._last.get(key, -math.inf) + self.interval_s - time.monotonic())
        loop = asyncio.get_running_loop()
        self._waiting[key] = loop.call_later(delay, self._start, key)

    def _start(self, key: str) -> None:
        # From here on, a new request waits for the next run: readings arriving while this
        # one computes must not be lost in it.
        del self._waiting[key]
        self._last[key] = time.monotonic()
        task = asyncio.create_task(self._run(key), name=f"debounced-{key}")
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # Said now, not when the task is garbage-collected; the next request runs again.
            log.error("%s failed", task.get_name(), exc_info=task.exception())

    async def stop(self, wait_s: float) -> None:
        """Drop the runs not started; let started ones finish for up to `wait_s`."""
        for handle in self._waiting.values():
            handle.cancel()
        self._waiting.clear()
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=wait_s)
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
