"""Readings storage: InfluxDB (v1-compatible HTTP API) or the embedded SQLite store."""

from __future__ import annotations

from floodwatch.settings import Settings
from floodwatch.storage.base import ReadingStore


def open_store(settings: Settings) -> ReadingStore:
    """The store the settings ask for: InfluxDB if a URL is set, else embedded SQLite."""
    if settings.influx_url:
        from floodwatch.storage.influx import InfluxStore

        return InfluxStore.from_settings(settings)
    from floodwatch.storage.sqlite import SQLiteStore

    return SQLiteStore(settings.readings_path)


__all__ = ["ReadingStore", "open_store"]
