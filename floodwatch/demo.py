"""`floodwatch demo`: the whole ingestion path on one machine with no servers.

An in-process MQTT broker, the embedded SQLite store, and the real collector; simulated
gauges play a synthetic flood wave down the demo river (or a replay CSV) much faster than
real time. At the end it prints what was stored and which threshold each gauge passed,
and writes a JSON summary. (The forecaster, alerts and PNG report join as they land.)
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pydantic import SecretStr

from collector.service import Collector
from floodwatch.catalog import Catalog, Station, load_catalog
from floodwatch.embedded_broker import EmbeddedBroker
from floodwatch.models import Reading, utc_now
from floodwatch.net import free_port
from floodwatch.replay import gauge_publisher, publish_rows
from floodwatch.replay_csv import ReplayRow, read_replay, rebase_shift
from floodwatch.settings import CATALOG_DIR, Settings
from floodwatch.storage.sqlite import SQLiteStore
from floodwatch.synthetic import synthetic_flood

log = logging.getLogger(__name__)
SETTLE_TIMEOUT_S = 120.0
_FAR_PAST = datetime(1900, 1, 1, tzinfo=UTC)
_FAR_FUTURE = datetime(2200, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Crossing:
    key: str
    short: str
    severity: str
    value: float
    first_at: datetime


@dataclass(frozen=True)
class StationSummary:
    station: Station
    readings: int
    flagged: int
    peak: Reading | None
    crossings: tuple[Crossing, ...]

    def as_dict(self) -> dict[str, object]:
        return {
            "station_id": self.station.id,
            "name": self.station.name("en"),
            "unit": self.station.unit,
            "readings": self.readings,
            "qc_flagged": self.flagged,
            "peak_level": self.peak.level if self.peak else None,
            "peak_at": self.peak.ts.isoformat() if self.peak else None,
            "crossings": [
                {
                    "level": c.key,
                    "short": c.short,
                    "severity": c.severity,
                    "value": c.value,
                    "first_at": c.first_at.isoformat(),
                }
                for c in self.crossings
            ],
        }


def crossings(station: Station, readings: Sequence[Reading]) -> tuple[Crossing, ...]:
    """The first QC-clean reading at or above each rung of the ladder."""
    found = []
    for level in station.levels:
        first = next((r for r in readings if r.is_clean and r.level >= level.value), None)
        if first is not None:
            found.append(Crossing(level.key, level.short, level.severity, level.value, first.ts))
    return tuple(found)


def summarise(station: Station, readings: Sequence[Reading]) -> StationSummary:
    clean = [r for r in readings if r.is_clean]
    peak = max(clean, key=lambda r: r.level, default=None)
    return StationSummary(
        station, len(readings), len(readings) - len(clean), peak, crossings(station, readings)
    )


def _pick_catalog(settings: Settings, rows: Sequence[ReplayRow], explicit: bool) -> Catalog:
    """The configured catalog, or the shipped one that knows every station of the replay."""
    ids = {row.station_id for row in rows}
    catalog = load_catalog(settings.stations)
    if explicit or ids <= set(catalog):
        return catalog
    for path in sorted(CATALOG_DIR.glob("*.yaml")):
        candidate = load_catalog(path)
        if ids <= set(candidate):
            return candidate
    return catalog


async def _settle(collector: Collector, published: int) -> bool:
    """Wait until the collector has stored or rejected everything that was published."""
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    metrics = collector.metrics
    while time.monotonic() < deadline:
        accepted = metrics.total("floodwatch_readings_accepted")
        handled = accepted + metrics.total("floodwatch_readings_rejected")
        durable = metrics.total("floodwatch_readings_written") + metrics.total(
            "floodwatch_readings_spooled"
        )
        if handled >= published and durable >= accepted:
            return True
        await asyncio.sleep(0.2)
    return False


def _print_summary(summaries: Sequence[StationSummary]) -> None:
    print()
    print(f"{'gauge':<28} {'readings':>8} {'peak':>10}  threshold passed (first time, UTC)")
    for summary in summaries:
        peak = f"{summary.peak.level:.1f} {summary.station.unit}" if summary.peak else "-"
        passed = (
            ", ".join(
                f"{c.short} {c.value:g} ({c.severity}) at {c.first_at:%Y-%m-%d %H:%M}"
                for c in summary.crossings
            )
            or "none"
        )
        print(f"{summary.station.name('en'):<28} {summary.readings:>8} {peak:>10}  {passed}")


def _fresh_report_dir(out_dir: Path) -> None:
    """Each run starts from an empty store, so a second run does not count the first."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in ("readings.sqlite", "spool.sqlite"):
        for suffix in ("", "-wal", "-shm"):
            (out_dir / f"{name}{suffix}").unlink(missing_ok=True)


async def run_demo(
    settings: Settings, *, replay_file: Path | None, out_dir: Path, speed: float | None
) -> int:
    await asyncio.to_thread(_fresh_report_dir, out_dir)
    if replay_file is None:
        duration = timedelta(hours=72)
        start = utc_now() - duration
        start -= timedelta(
            minutes=start.minute % 15, seconds=start.second, microseconds=start.microsecond
        )
        rows: list[ReplayRow] = synthetic_flood(start=start, duration=duration)
        shift = timedelta(0)
    else:
        rows = list(read_replay(replay_file))
        shift = rebase_shift(replay_file)
    explicit = "stations" in settings.model_fields_set
    catalog = _pick_catalog(settings, rows, explicit)
    broker = EmbeddedBroker(port=free_port())
    demo_settings = settings.model_copy(
        update={
            "mqtt_url": SecretStr(broker.url),
            "influx_url": None,
            "readings_path": out_dir / "readings.sqlite",
            "spool_path": out_dir / "spool.sqlite",
            "mqtt_client_id": "floodwatch-demo-collector",
            # The embedded broker has no shared subscriptions: a $share filter that a
            # production .env sets would match nothing here.
            "mqtt_shared_group": None,
            "http_port": 0,
        }
    )
    store = SQLiteStore(demo_settings.readings_path)
    collector = Collector(demo_settings, catalog, store)
    await broker.start()
    try:
        await collector.start()
        # The collector subscribes in the background; the first readings must not be
        # published before its subscription exists, or the broker drops them.
        await collector.wait_subscribed()
        print(
            f"Floodwatch demo: {len(rows)} readings from {len({r.station_id for r in rows})} "
            f"gauges through an embedded broker into {demo_settings.readings_path}"
        )
        # The embedded broker may drop messages still on their way to the collector when
        # their publisher disconnects, so stay connected until the collector has them all.
        async with gauge_publisher(broker.endpoint, "floodwatch-demo-gauges") as publisher:
            stats = await publish_rows(publisher, rows, speed=speed, shift=shift)
            settled = await _settle(collector, stats.published)
        summaries = [
            summarise(station, await store.query(station.id, _FAR_PAST, _FAR_FUTURE))
            for station in catalog.values()
            if any(row.station_id == station.id for row in rows)
        ]
    finally:
        await collector.stop()
        await broker.stop()
    rate = stats.published / stats.seconds if stats.seconds else 0.0
    print(f"published {stats.published} readings in {stats.seconds:.1f} s ({rate:.0f}/s)")
    _print_summary(summaries)
    summary_path = out_dir / "summary.json"
    summary_path.write_text(
        json.dumps({"stations": [s.as_dict() for s in summaries]}, indent=2, ensure_ascii=False)
    )
    print(f"\nsummary written to {summary_path}")
    if not settled:
        print(
            f"the collector had not handled every reading after {SETTLE_TIMEOUT_S:.0f} s: "
            "the summary is incomplete",
            file=sys.stderr,
        )
        return 1
    return 0
