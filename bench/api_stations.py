"""GET /api/stations on a regional network: per-station store reads against batch reads.

    .venv/bin/python bench/api_stations.py [--gauges 2000] [--readings 6] [--runs 3]
        [--horizons 6] [--repeat 5] [--prompted 0.1]

Starts a real influxd (tests/harness), stores --readings readings and --runs forecast runs
of --horizons points for each of --gauges gauges, then times, --repeat times each:

  per-station  what /api/stations did before: latest(id, 1) and latest_forecast_run(id)
               for every gauge, 8 gauges at a time (called on the store directly)
  batch        latest_each(ids) and latest_forecast_runs(ids), as the handler does now
  GET          the whole GET /api/stations over HTTP (aiohttp server, batch reads)

and prints the /query requests each made and the wall time (median and best). The runs
of one cycle share an issue time, as the forecaster's scheduled pass issues them, except
for the --prompted share of gauges, whose newest run came from a prompt run (a rising
gauge's own reading) at a time of its own; --prompted 1 is the worst case for the batch
read (one InfluxQL statement per gauge). Asserts only that both ways read the same data;
every process it starts is stopped at exit.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # the test harness lives in tests/, which is not installed

from alerts.api import add_routes  # noqa: E402
from alerts.store import AlertStore  # noqa: E402
from floodwatch.catalog import load_catalog  # noqa: E402
from floodwatch.models import ForecastPoint, Reading, utc_now  # noqa: E402
from floodwatch.net import free_port  # noqa: E402
from floodwatch.settings import Settings  # noqa: E402
from floodwatch.storage.influx import InfluxStore  # noqa: E402
from tests.harness.gauges import write_catalog  # noqa: E402
from tests.harness.influx import InfluxServer  # noqa: E402

DATABASE = "bench"
PER_STATION_CONCURRENCY = 8  # what alerts/api.py used before the batch reads
CYCLE = timedelta(minutes=15)


class CountingStore(InfluxStore):
    """An InfluxStore that counts its /query requests (the store queries made)."""

    queries = 0

    async def _send(self, method: str, path: str, **kwargs: Any) -> tuple[int, bytes]:
        if path == "/query":
            self.queries += 1
        return await super()._send(method, path, **kwargs)


def gauge_data(
    ids: Sequence[str], readings: int, runs: int, horizons: int, prompted: float
) -> tuple[list[Reading], list[ForecastPoint]]:
    now = utc_now().replace(microsecond=0)
    stored = [
        Reading(sid, now - n * CYCLE, 100.0 + index % 300 + n)
        for index, sid in enumerate(ids)
        for n in range(readings)
    ]
    points = []
    for index, sid in enumerate(ids):
        own = index < round(prompted * len(ids))
        for cycle in range(runs):
            # A prompt run comes between two passes, at a moment of its own.
            jitter = timedelta(seconds=index + 1) if own and cycle == 0 else timedelta(0)
            issued = now - cycle * CYCLE + jitter
            for h in range(1, horizons + 1):
                level = 100.0 + index % 300 + h
                horizon = h * 3600
                valid = issued + timedelta(seconds=horizon)
                points.append(
                    ForecastPoint(sid, issued, valid, horizon, level, level - 5, level + 5, "trend")
                )
    return stored, points


async def per_station(
    store: InfluxStore, ids: Sequence[str]
) -> tuple[dict[str, Reading], dict[str, list[ForecastPoint]]]:
    """The old handler's reads: two or three store queries per gauge, 8 gauges at a time."""
    slots = asyncio.Semaphore(PER_STATION_CONCURRENCY)

    async def one(sid: str) -> tuple[list[Reading], list[ForecastPoint]]:
        async with slots:
            return await store.latest(sid, 1), await store.latest_forecast_run(sid)

    looked = await asyncio.gather(*(one(sid) for sid in ids))
    latest = {sid: got[-1] for sid, (got, _) in zip(ids, looked, strict=True) if got}
    runs = {sid: run for sid, (_, run) in zip(ids, looked, strict=True) if run}
    return latest, runs


async def batch(
    store: InfluxStore, ids: Sequence[str]
) -> tuple[dict[str, Reading], dict[str, list[ForecastPoint]]]:
    latest, runs = await asyncio.gather(store.latest_each(ids), store.latest_forecast_runs(ids))
    return latest, runs


async def timed(
    name: str, store: CountingStore, repeat: int, call: Callable[[], Awaitable[Any]]
) -> Any:
    await call()  # warm-up: connections, influxd's caches
    walls, result = [], None
    store.queries = 0
    for _ in range(repeat):
        started = time.perf_counter()
        result = await call()
        walls.append(time.perf_counter() - started)
    queries = store.queries // repeat
    print(
        f"{name:<13} {queries:>6} store queries  {statistics.median(walls) * 1000:>8.0f} ms median"
        f"  {min(walls) * 1000:>8.0f} ms best  (of {repeat})"
    )
    return result


async def serve_api(catalog_path: Path, state_path: Path, store: InfluxStore) -> web.AppRunner:
    catalog = load_catalog(catalog_path)
    alert_store = AlertStore(state_path)
    await alert_store.open()
    app = web.Application()
    app.on_cleanup.append(lambda _app: alert_store.close())
    settings = Settings(timezone="Europe/Berlin", cap_sender="floodwatch.example")
    add_routes(
        app,
        catalog_source=lambda: catalog,
        alert_store=alert_store,
        readings=store,
        settings=settings,
    )
    runner = web.AppRunner(app)
    await runner.setup()
    return runner


async def run(args: argparse.Namespace, workdir: Path, influx: InfluxServer) -> None:
    catalog_path = workdir / "stations.yaml"
    ids = write_catalog(catalog_path, args.gauges)
    store = CountingStore(influx.url, DATABASE)
    await store.open()
    try:
        readings, points = gauge_data(ids, args.readings, args.runs, args.horizons, args.prompted)
        started = time.perf_counter()
        await store.write(readings)
        await store.write_forecasts(points)
        print(
            f"{args.gauges} gauges: {len(readings)} readings, {len(points)} forecast points "
            f"stored in {time.perf_counter() - started:.1f} s"
            f" ({args.prompted:.0%} of the newest runs from prompt runs)"
        )
        old = await timed("per-station", store, args.repeat, lambda: per_station(store, ids))
        new = await timed("batch", store, args.repeat, lambda: batch(store, ids))
        if old != new:
            raise SystemExit("the batch reads differ from the per-station reads")
        await time_http(args, workdir, catalog_path, store)
    finally:
        await store.close()


async def time_http(
    args: argparse.Namespace, workdir: Path, catalog_path: Path, store: CountingStore
) -> None:
    runner = await serve_api(catalog_path, workdir / "state.sqlite", store)
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    url = f"http://127.0.0.1:{port}/api/stations"
    try:
        async with aiohttp.ClientSession() as session:

            async def get() -> Mapping[str, Any]:
                async with session.get(url) as response:
                    body: Mapping[str, Any] = await response.json()
                    if response.status != 200 or body["readings"] != "ok":
                        raise SystemExit(f"GET /api/stations answered {response.status}")
                    return body

            body = await timed("GET", store, args.repeat, get)
            with_level = sum(1 for f in body["features"] if f["properties"]["level"] is not None)
            print(f"GET answered {len(body['features'])} features, {with_level} with a level")
    finally:
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gauges", type=int, default=2000)
    parser.add_argument("--readings", type=int, default=6)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--horizons", type=int, default=6)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--prompted", type=float, default=0.1)
    args = parser.parse_args()
    version = subprocess.run(["influxd", "version"], capture_output=True, text=True, check=False)
    print(f"{platform.node()}: Python {platform.python_version()}, {version.stdout.strip()}")
    with tempfile.TemporaryDirectory(prefix="fw-bench-api-") as tmp:
        workdir = Path(tmp)
        influx = InfluxServer(workdir / "influxd")
        try:
            influx.start()
            asyncio.run(run(args, workdir, influx))
        finally:
            influx.kill()


if __name__ == "__main__":
    main()
