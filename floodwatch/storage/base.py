"""The interface every readings store offers; one contract test suite checks them all."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from floodwatch.models import Reading


class ReadingStore(Protocol):
    """Idempotent readings storage: the same (station, timestamp) written twice is one reading.

    Every method raises `StoreUnavailable` when the store cannot be reached, and `write`
    raises `StoreRejected` when the store refuses the data itself.
    """

    description: str

    async def open(self) -> None:
        """Prepare the store (create the database or tables if missing)."""

    async def close(self) -> None: ...

    async def ping(self) -> None:
        """Return if the store answers, else raise StoreUnavailable."""

    async def write(self, readings: Sequence[Reading]) -> None:
        """Store readings; an existing (station, timestamp) is overwritten."""

    async def query(self, station_id: str, start: datetime, end: datetime) -> list[Reading]:
        """Readings of one station with start <= ts < end, oldest first."""

    async def latest(self, station_id: str, limit: int = 1) -> list[Reading]:
        """The newest `limit` readings of one station, oldest first."""

    async def count(self, station_id: str) -> int:
        """How many readings of one station are stored."""
