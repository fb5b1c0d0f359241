"""The interface every readings store offers; one contract test suite checks them all."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from floodwatch.models import AlertRecord, ForecastPoint, Reading
from floodwatch.storage.health_lines import HealthPoint


class ReadingStore(Protocol):
    """Idempotent storage of readings, forecasts and alert events.

    The same (station, timestamp) written twice is one reading; the same (station, horizon,
    valid time) written twice is one forecast point; the same alert event written twice is
    one record. Every method raises `StoreUnavailable` when the store cannot be reached,
    and the write methods raise `StoreRejected` when the store refuses the data itself
    (NaN or infinite values, for instance), storing none of the call's data.
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

    async def write_forecasts(self, points: Sequence[ForecastPoint]) -> None:
        """Store forecast points; the last write of a (station, horizon, valid time) wins.

        A rewrite replaces the point whole: level, band, issue time and method.
        """

    async def query_forecasts(
        self, station_id: str, start: datetime, end: datetime, horizon_s: int | None = None
    ) -> list[ForecastPoint]:
        """Forecast points of one station with start <= valid_at < end, by valid_at, horizon.

        With `horizon_s`, only the points of that horizon.
        """

    async def latest_forecast_run(self, station_id: str) -> list[ForecastPoint]:
        """The points of the station's most recent issue time, by horizon; [] if none."""

    async def latest_each(self, station_ids: Sequence[str]) -> dict[str, Reading]:
        """The newest reading of each station, as `latest(station_id, 1)` gives it.

        A constant number of requests however many stations; a station without readings
        is missing from the result.
        """

    async def latest_forecast_runs(
        self, station_ids: Sequence[str]
    ) -> dict[str, list[ForecastPoint]]:
        """Each station's most recent run, as `latest_forecast_run` gives it.

        A constant number of requests however many stations; a station without forecasts
        is missing from the result.
        """

    async def write_alert_events(self, records: Sequence[AlertRecord]) -> None:
        """Store alert events (Grafana annotations); an event written again is one record.

        Text fields must not contain line breaks (InfluxDB's line protocol cannot carry them).
        """

    async def query_alert_events(
        self, station_id: str | None, start: datetime, end: datetime
    ) -> list[AlertRecord]:
        """Alert events with start <= at < end, of one station or (None) all, by time."""

    async def write_health(self, points: Sequence[HealthPoint]) -> None:
        """Store station state and collector statistics for Grafana (InfluxDB only).

        Stores without Grafana (the embedded SQLite store) check the points, refusing what
        InfluxDB would, and keep nothing. Callers never spool these: a lost point is
        replaced by the next.
        """
