"""In-process forecasters and river catalogs for the forecaster's integration tests."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from floodwatch.catalog import load_catalog
from floodwatch.settings import Settings
from floodwatch.storage import open_store
from floodwatch.storage.base import ReadingStore
from forecasting.service import Forecaster
from tests.harness.gauges import Sample

WATCH = 400.0
DANGER = 600.0


def river_station(station_id: str, **extra: Any) -> dict[str, Any]:
    """A gauge in cm with the ladder watch 400 / danger 600 and a 1-hour trend window, so a
    test needs only an hour of readings for a trend."""
    forecast = {"horizons_h": [1, 2, 3, 6], "trend_window_h": 1, **extra.pop("forecast", {})}
    return {
        "id": station_id,
        "names": {"en": station_id},
        "river": {"en": "Testriver"},
        "lat": 50.0,
        "lon": 8.0,
        "unit": "cm",
        "valid_range": {"min": 0, "max": 2000},
        "levels": [_rung("watch", WATCH), _rung("danger", DANGER)],
        "forecast": forecast,
        **extra,
    }


def _rung(key: str, value: float) -> dict[str, Any]:
    return {
        "key": key,
        "value": value,
        "severity": key,
        "short": key[0].upper(),
        "names": {"en": key},
    }


def write_river_catalog(path: Path, stations: Sequence[dict[str, Any]]) -> Path:
    path.write_text(yaml.safe_dump({"stations": list(stations)}, allow_unicode=True))
    return path


def ramp(
    station_id: str, start: datetime, count: int, step: timedelta, level: float, per_hour: float
) -> list[Sample]:
    """`count` readings from `start`, rising `per_hour` (a small wobble keeps them from
    looking like a flat sensor)."""
    return [
        Sample(
            station_id,
            start + n * step,
            round(level + per_hour * (n * step).total_seconds() / 3600 + 0.1 * (-1) ** n, 3),
        )
        for n in range(count)
    ]


@contextlib.asynccontextmanager
async def running_forecaster(
    settings: Settings, store: ReadingStore | None = None
) -> AsyncIterator[Forecaster]:
    """A started forecaster, subscribed to clean readings; stopped on exit."""
    catalog = load_catalog(settings.stations)
    forecaster = Forecaster(settings, catalog, store or open_store(settings))
    await forecaster.start()
    try:
        await forecaster.wait_subscribed(20)
        yield forecaster
    finally:
        await forecaster.stop()


def metric(forecaster: Forecaster, name: str, **labels: str) -> float:
    value = forecaster.metrics.registry.get_sample_value(name, labels)
    return float(value) if value is not None else 0.0
