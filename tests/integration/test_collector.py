"""The collector against a real Mosquitto and a real InfluxDB: nothing lost, nothing doubled."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from floodwatch.catalog import load_catalog
from floodwatch.settings import MqttEndpoint
from floodwatch.storage.influx import InfluxStore
from tests.harness.collector_process import CollectorProcess
from tests.harness.gauges import Sample, publish, stream, write_catalog
from tests.harness.influx import InfluxServer, random_database
from tests.harness.inprocess import influx_reader, prometheus_value, wait_until
from tests.harness.mosquitto import MosquittoServer

pytestmark = pytest.mark.integration


async def counts(store: InfluxStore, station_ids: list[str]) -> dict[str, int]:
    return {station_id: await store.count(station_id) for station_id in station_ids}


async def assert_stored_exactly(
    store: InfluxStore, samples: list[Sample], timeout: float = 60.0
) -> None:
    """Every sample is stored once, with its level, and nothing else is."""
    station_ids = sorted({sample.station_id for sample in samples})
    expected = {station_id: 0 for station_id in station_ids}
    for sample in samples:
        expected[sample.station_id] += 1

    async def complete() -> bool:
        try:
            return await counts(store, station_ids) == expected
        except Exception:  # the store may still be restarting
            return False

    with contextlib.suppress(AssertionError):
        await wait_until(complete, timeout, "all readings stored")
    assert await counts(store, station_ids) == expected
    by_key = {(s.station_id, s.ts.replace(microsecond=0)): s.level for s in samples}
    for station_id in station_ids:
        stored = await store.latest(station_id, limit=expected[station_id])
        for reading in stored:
            assert by_key[(station_id, reading.ts.replace(microsecond=0))] == reading.level


def collector_env(
    tmp_path: Path, broker: MosquittoServer, influx: InfluxServer, database: str, catalog: Path
) -> dict[str, str]:
    return {
        "FLOODWATCH_MQTT_URL": broker.url,
        "FLOODWATCH_INFLUX_URL": influx.url,
        "FLOODWATCH_INFLUX_DATABASE": database,
        "FLOODWATCH_STATIONS": str(catalog),
        "FLOODWATCH_SPOOL_PATH": str(tmp_path / "spool.sqlite"),
        "FLOODWATCH_MQTT_CLIENT_ID": "collector-under-test",
        "FLOODWATCH_LOG_LEVEL": "INFO",
    }


@pytest.fixture
def catalog_path(tmp_path: Path) -> Path:
    path = tmp_path / "stations.yaml"
    write_catalog(path, count=5, maintenance=("gauge-004",))
    return path


@pytest.fixture
def own_influx(tmp_path: Path) -> Any:
    """An influxd of this test's own, which it may stop and kill."""
    with InfluxServer(tmp_path / "influxd") as server:
        yield server


async def test_kill_9_mid_stream_stores_every_reading_exactly_once(
    tmp_path: Path,
    collector_process: Callable[[dict[str, str]], CollectorProcess],
    mosquitto: MosquittoServer,
    influx_server: InfluxServer,
    catalog_path: Path,
) -> None:
    database = random_database()
    env = collector_env(tmp_path, mosquitto, influx_server, database, catalog_path)
    collector = collector_process(env).start()
    samples = stream(sorted(load_catalog(catalog_path)), per_station=800)
    publishing = asyncio.create_task(
        publish(MqttEndpoint.parse(mosquitto.url), samples, pause_every=200, pause_s=0.05)
    )
    async with influx_reader(influx_server, database) as store:
        await wait_until(
            lambda: _stored_at_least(store, "gauge-000", 100), 30, "the stream to start arriving"
        )
        collector.kill()
        await publishing  # the rest is queued by the broker for the dead collector's session
        collector.start()
        await assert_stored_exactly(store, samples)
    assert collector.stop() == 0


async def _stored_at_least(store: InfluxStore, station_id: str, count: int) -> bool:
    with contextlib.suppress(Exception):
        return await store.count(station_id) >= count
    return False


@pytest.mark.parametrize("outage", ["stop", "kill"])
async def test_influx_outage_spools_and_drains_everything(
    outage: str,
    tmp_path: Path,
    collector_process: Callable[[dict[str, str]], CollectorProcess],
    mosquitto: MosquittoServer,
    own_influx: InfluxServer,
    catalog_path: Path,
) -> None:
    database = random_database()
    env = collector_env(tmp_path, mosquitto, own_influx, database, catalog_path)
    collector = collector_process(env).start()
    samples = stream(sorted(load_catalog(catalog_path)), per_station=600)
    endpoint = MqttEndpoint.parse(mosquitto.url)
    await publish(endpoint, samples[:1000], client_id="gauges-a")
    # A graceful stop, or InfluxDB dying mid-stream.
    if outage == "stop":
        own_influx.stop()
    else:
        own_influx.kill()
    await publish(endpoint, samples[1000:2000], client_id="gauges-b")
    await wait_until(
        lambda: _health_is(collector, lambda h: h["spool_depth"] > 0), 30, "readings to spool"
    )
    # A spool must survive kill -9 as well: kill the collector while InfluxDB is down.
    collector.kill()
    collector.start()
    await publish(endpoint, samples[2000:], client_id="gauges-c")
    health = collector.health()
    assert health is not None
    assert health["store"] != "up"
    own_influx.start()
    async with influx_reader(own_influx, database) as store:
        await assert_stored_exactly(store, samples)
    await wait_until(
        lambda: _health_is(collector, lambda h: h["spool_depth"] == 0 and h["store"] == "up"),
        30,
        "the spool to drain",
    )
    assert (prometheus_value(collector.metrics(), "floodwatch_readings_written_total") or 0) > 0
    assert collector.stop() == 0


async def _health_is(
    collector: CollectorProcess, predicate: Callable[[dict[str, Any]], bool]
) -> bool:
    health = collector.health()
    return health is not None and predicate(health)


async def test_broker_restart_resumes_without_loss(
    tmp_path: Path,
    collector_process: Callable[[dict[str, str]], CollectorProcess],
    mosquitto: MosquittoServer,
    influx_server: InfluxServer,
    catalog_path: Path,
) -> None:
    database = random_database()
    env = collector_env(tmp_path, mosquitto, influx_server, database, catalog_path)
    collector = collector_process(env).start()
    samples = stream(sorted(load_catalog(catalog_path)), per_station=400)
    endpoint = MqttEndpoint.parse(mosquitto.url)
    await publish(endpoint, samples[:1000], client_id="gauges-a")
    mosquitto.restart()
    await publish(endpoint, samples[1000:], client_id="gauges-b")
    async with influx_reader(influx_server, database) as store:
        await assert_stored_exactly(store, samples)
    await wait_until(
        lambda: _health_is(collector, lambda h: h["mqtt"] == "connected"), 30, "reconnect"
    )
    assert collector.stop() == 0


async def test_collector_outage_longer_than_mosquitto_default_queue_loses_nothing(
    tmp_path: Path,
    collector_process: Callable[[dict[str, str]], CollectorProcess],
    mosquitto: MosquittoServer,
    influx_server: InfluxServer,
    catalog_path: Path,
) -> None:
    """5,000 readings while the collector is away: the shipped queue limits keep them all
    (Mosquitto's default max_queued_messages of 1000 would drop 4,000)."""
    database = random_database()
    env = collector_env(tmp_path, mosquitto, influx_server, database, catalog_path)
    collector = collector_process(env).start()
    assert collector.stop() == 0
    samples = stream(sorted(load_catalog(catalog_path)), per_station=1000)
    await publish(MqttEndpoint.parse(mosquitto.url), samples)
    collector.start()
    async with influx_reader(influx_server, database) as store:
        await assert_stored_exactly(store, samples)
    assert collector.stop() == 0
