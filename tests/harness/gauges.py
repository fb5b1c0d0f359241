"""Simulated gauges for the integration tests: a catalog and a stream of readings."""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import yaml

from floodwatch import topics
from floodwatch.models import utc_now
from floodwatch.replay import gauge_payload, gauge_publisher
from floodwatch.settings import MqttEndpoint


def write_catalog(path: Path, count: int = 5, maintenance: tuple[str, ...] = ()) -> list[str]:
    ids = [f"gauge-{index:03d}" for index in range(count)]
    stations = [
        {
            "id": station_id,
            "names": {"en": f"Gauge {station_id}", "ru": f"Пост {station_id}"},
            "river": {"en": "Testbrook"},
            "lat": 50.0 + index * 0.01,
            "lon": 8.0,
            "unit": "cm",
            "valid_range": {"min": 0, "max": 2000},
            "levels": [
                {
                    "key": "watch",
                    "value": 400,
                    "severity": "watch",
                    "short": "W",
                    "names": {"en": "Watch"},
                },
                {
                    "key": "danger",
                    "value": 600,
                    "severity": "danger",
                    "short": "D",
                    "names": {"en": "Danger"},
                },
            ],
            "maintenance": station_id in maintenance,
        }
        for index, station_id in enumerate(ids)
    ]
    path.write_text(yaml.safe_dump({"stations": stations}, allow_unicode=True))
    return ids


@dataclass(frozen=True)
class Sample:
    station_id: str
    ts: datetime
    level: float


def stream(station_ids: list[str], per_station: int, start: datetime | None = None) -> list[Sample]:
    """A smooth, QC-clean rise at every station, 1 minute apart, all in the recent past."""
    start = start or utc_now() - timedelta(minutes=per_station + 5)
    return [
        Sample(
            station_id, start + timedelta(minutes=step), round(300 + 50 * math.sin(step / 50), 2)
        )
        for step in range(per_station)
        for station_id in station_ids
    ]


async def publish(
    endpoint: MqttEndpoint,
    samples: list[Sample],
    *,
    client_id: str = "test-gauges",
    pause_every: int = 0,
    pause_s: float = 0.0,
) -> None:
    """Publish at QoS 1 and wait for every PUBACK; optional pauses make a slow stream."""
    async with gauge_publisher(endpoint, client_id) as publisher:
        for index, sample in enumerate(samples, start=1):
            await publisher.publish(
                topics.gauge_level(sample.station_id), gauge_payload(sample.ts, sample.level)
            )
            if pause_every and index % pause_every == 0:
                await asyncio.sleep(pause_s)
        await publisher.flush()
