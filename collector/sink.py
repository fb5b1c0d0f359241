"""Where accepted readings go: the store when it answers, else the durable spool.

While the spool holds anything, new readings join its tail so the store receives them
in arrival order; the spool drains in chunks between batches, backing off while the
store stays down.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from collector.metrics import CollectorMetrics
from collector.spool import Spool
from floodwatch.errors import SpoolUnavailable, StoreRejected, StoreUnavailable
from floodwatch.models import Reading
from floodwatch.storage.base import ReadingStore

log = logging.getLogger(__name__)
T = TypeVar("T")

DRAIN_CHUNK = 5000
BACKOFF_MIN_S = 0.5
BACKOFF_MAX_S = 30.0


class Sink:
    def __init__(self, store: ReadingStore, spool: Spool, metrics: CollectorMetrics) -> None:
        self.store = store
        self.spool = spool
        self.metrics = metrics
        # One thread owns the spool's SQLite connection; its calls block, the loop must not.
        self._spool_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="spool")
        self.spooling = False
        self._backoff = BACKOFF_MIN_S
        self._next_attempt = 0.0
        self.depth = 0

    async def _on_spool(self, call: Callable[[], T]) -> T:
        try:
            return await asyncio.get_running_loop().run_in_executor(self._spool_thread, call)
        except sqlite3.Error as exc:
            raise SpoolUnavailable(f"spool {self.spool.path}: {exc}") from exc

    async def open(self) -> None:
        self.depth = await self._on_spool(self.spool.depth)
        self.spooling = self.depth > 0
        self.metrics.spool_depth.set(self.depth)
        if self.spooling:
            log.info("spool holds %d readings from an earlier run; draining", self.depth)

    async def close(self) -> None:
        await self._on_spool(self.spool.close)
        self._spool_thread.shutdown(wait=True)

    async def put(self, readings: Sequence[Reading]) -> None:
        """Make readings durable: in the store or in the spool. Raises SpoolUnavailable
        only if both fail."""
        if not self.spooling:
            try:
                await self.store.write(readings)
            except StoreUnavailable as exc:
                log.warning("store unavailable, spooling readings: %s", exc)
                self._store_failed("write")
            except StoreRejected as exc:
                await self._dead_letter(readings, str(exc))
                return
            else:
                self._store_ok(len(readings))
                return
        await self._on_spool(lambda: self.spool.append(readings))
        self.depth += len(readings)
        self.metrics.spooled.inc(len(readings))
        self.metrics.spool_depth.set(self.depth)

    async def drain_step(self) -> bool:
        """Move one chunk from the spool to the store; True if more is waiting now."""
        if not self.spooling or time.monotonic() < self._next_attempt:
            return False
        rows = await self._on_spool(lambda: self.spool.peek(DRAIN_CHUNK))
        if not rows:
            self.spooling = False
            self.depth = 0
            self.metrics.spool_depth.set(0)
            log.info("spool drained; writing to the store directly again")
            return False
        last_id = rows[-1][0]
        readings = [reading for _, reading in rows]
        try:
            await self.store.write(readings)
        except StoreUnavailable as exc:
            log.info("store still unavailable (%s); next try in %.1f s", exc, self._backoff)
            self._store_failed("drain")
            return False
        except StoreRejected as exc:
            reason = str(exc)
            await self._on_spool(lambda: self.spool.bury_through(last_id, reason))
            self._count_dead(len(rows), reason)
        else:
            await self._on_spool(lambda: self.spool.remove_through(last_id))
            self._store_ok(len(rows))
        self.depth = max(0, self.depth - len(rows))
        self.metrics.spool_depth.set(self.depth)
        return True

    def _store_ok(self, written: int) -> None:
        self.metrics.written.inc(written)
        self.metrics.store_up.set(1)
        self._backoff = BACKOFF_MIN_S

    def _store_failed(self, kind: str) -> None:
        self.spooling = True
        self.metrics.store_errors.labels(kind).inc()
        self.metrics.store_up.set(0)
        self._next_attempt = time.monotonic() + self._backoff
        self._backoff = min(self._backoff * 2, BACKOFF_MAX_S)

    async def _dead_letter(self, readings: Sequence[Reading], reason: str) -> None:
        await self._on_spool(lambda: self.spool.bury(readings, reason))
        self._count_dead(len(readings), reason)

    def _count_dead(self, count: int, reason: str) -> None:
        self.metrics.dead_lettered.inc(count)
        self.metrics.store_errors.labels("rejected").inc()
        log.error("store refused %d readings, kept in the dead-letter table: %s", count, reason)
