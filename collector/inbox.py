"""Hand-off of received messages from paho's network thread to the asyncio writer."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from dataclasses import dataclass

from floodwatch.models import Reading


@dataclass(frozen=True, slots=True)
class Inbound:
    """A received message awaiting its PUBACK: a reading to store, or None if rejected.
    `revised`: earlier readings whose QC verdict this one settled, to be stored again."""

    mid: int
    qos: int
    generation: int  # which broker connection delivered it: acks never cross connections
    reading: Reading | None
    revised: tuple[Reading, ...] = ()

    def readings(self) -> tuple[Reading, ...]:
        """What to store for this message, oldest first."""
        if self.reading is None:
            return self.revised
        return (*self.revised, self.reading) if self.revised else (self.reading,)


# How long paho's thread waits for room before taking a message anyway; only a stalled
# writer makes it wait this long, and the limit keeps paho's keep-alive traffic alive.
BACKPRESSURE_WAIT_S = 5.0


class Inbox:
    """Collects messages into batches; wakes the loop once per batch, not once per message.

    Holds at most batch_max messages: when full, put() blocks paho's network thread until
    the writer takes the batch, so a broker that sends more than its inflight limit (as
    Mosquitto 2.0 does) is held back by TCP instead of filling the collector's memory.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, batch_max: int) -> None:
        self._loop = loop
        self._batch_max = batch_max
        self._items: list[Inbound] = []
        self._lock = threading.Lock()
        self._room = threading.Condition(self._lock)
        self._closed = False
        self._nonempty = asyncio.Event()
        self._full = asyncio.Event()

    def put(self, item: Inbound) -> None:
        """Called from paho's thread."""
        with self._lock:
            if len(self._items) >= self._batch_max:
                self._room.wait_for(
                    lambda: self._closed or len(self._items) < self._batch_max,
                    BACKPRESSURE_WAIT_S,
                )
            self._items.append(item)
            size = len(self._items)
        if size == 1:
            self._loop.call_soon_threadsafe(self._nonempty.set)
        if size == self._batch_max:
            self._loop.call_soon_threadsafe(self._full.set)

    def __len__(self) -> int:
        return len(self._items)

    async def take(self, linger: float, idle_timeout: float) -> list[Inbound]:
        """The next batch: waits up to idle_timeout for a first item, then up to linger
        for the batch to fill, so that a trickle is written promptly and a flood in bulk."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._nonempty.wait(), idle_timeout)
        if self._nonempty.is_set() and len(self._items) < self._batch_max:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._full.wait(), linger)
        return self.drain()

    def close(self) -> None:
        """The writer has stopped: put() no longer waits (what arrives now is never
        acknowledged, so the broker delivers it again to the next session)."""
        with self._lock:
            self._closed = True
            self._room.notify_all()

    def drain(self) -> list[Inbound]:
        with self._lock:
            items, self._items = self._items, []
            self._room.notify_all()
        self._nonempty.clear()
        self._full.clear()
        return items
