"""The alert engine in the integration tests: in process, or as `floodwatch run --components
alerts` (a real OS process, so a test can kill -9 it), and what it stored."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from alerts.engine import AlertEngine
from alerts.gauge_state import GaugeState
from alerts.store import AlertStore, OutboxItem
from collector.service import reading_payload
from floodwatch import topics
from floodwatch.models import Reading, utc_now
from floodwatch.settings import MqttEndpoint, Settings
from tests.harness.collector_process import CollectorProcess
from tests.harness.inprocess import collector_settings, prometheus_value, publish_raw


def alert_settings(
    tmp_path: Path, broker_url: str, stations: Path, *, name: str, **overrides: Any
) -> Settings:
    """A collector's settings plus an engine's: own client ids and state file, fast polls."""
    values: dict[str, Any] = {
        "alert_client_id": f"{name}-alerts",
        "forecast_client_id": f"{name}-forecaster",
        "state_path": tmp_path / f"{name}-state.sqlite",
        "catalog_poll_s": 0.2,
        "alert_tick_s": 0.2,
    }
    values.update(overrides)
    return collector_settings(tmp_path, broker_url, stations, name=name, **values)


@contextlib.asynccontextmanager
async def running_engine(settings: Settings) -> AsyncIterator[AlertEngine]:
    """A started engine, subscribed; stopped on exit."""
    engine = AlertEngine(settings, settings.stations, AlertStore(settings.state_path))
    await engine.start()
    try:
        await engine.wait_subscribed(20)
        yield engine
    finally:
        await engine.stop()


async def publish_clean(
    endpoint: MqttEndpoint, readings: Sequence[tuple[str, datetime, float]], client_id: str
) -> None:
    """Publish readings on floodwatch/readings/{id} as the collector does (no collector)."""
    messages = [
        (topics.clean_reading(sid), reading_payload(Reading(sid, ts, level)))
        for sid, ts, level in readings
    ]
    await publish_raw(endpoint, messages, client_id=client_id)


class StoredAlerts:
    """Read what an engine (possibly in another process) committed to its state file."""

    def __init__(self, path: Path) -> None:
        self.store = AlertStore(path)

    async def __aenter__(self) -> StoredAlerts:
        await self.store.open()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.store.close()

    async def events(self, station_id: str | None = None) -> list[OutboxItem]:
        """Oldest first."""
        return list(reversed(await self.store.recent_events(10_000, station_id)))

    async def kinds(self, station_id: str | None = None) -> list[str]:
        return [item.event.kind.value for item in await self.events(station_id)]

    async def state(self, station_id: str) -> GaugeState | None:
        return (await self.store.load_states()).get(station_id)


async def probe_engine_process(process: CollectorProcess, endpoint: MqttEndpoint) -> None:
    """Publish readings of an unknown station until the engine process has counted one:
    its subscription is then certainly in place."""

    def counted() -> bool:
        value = prometheus_value(
            process.metrics(), "floodwatch_alert_inputs_ignored_total", '{reason="unknown_station"}'
        )
        return bool(value)

    deadline = time.monotonic() + 20
    while not await asyncio.to_thread(counted):
        if time.monotonic() > deadline:
            raise AssertionError(f"the engine never took a probe:\n{process.log_tail()}")
        await publish_clean(endpoint, [("probe", utc_now(), 1.0)], client_id="engine-probe")
        await asyncio.sleep(0.1)
