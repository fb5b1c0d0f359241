"""What the collector gives back, against a real Mosquitto and a real InfluxDB: republished
readings and retained station state, /healthz and /metrics over real HTTP, collectors
sharing a subscription, and the embedded SQLite store when no InfluxDB is configured."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from collector.service import Collector
from floodwatch import topics
from floodwatch.http import HttpServer, health_app
from floodwatch.models import QCFlag
from floodwatch.settings import MqttEndpoint
from floodwatch.storage.influx import InfluxStore
from floodwatch.storage.sqlite import SQLiteStore
from tests.harness.collector_process import CollectorProcess
from tests.harness.gauges import Sample, publish, stream, write_catalog
from tests.harness.influx import InfluxServer, random_database
from tests.harness.inprocess import (
    PROBE_TOPIC,
    collector_settings,
    influx_reader,
    probe_until_subscribed,
    prometheus_value,
    publish_raw,
    running_collector,
    sample,
    wait_until,
)
from tests.harness.listener import Listener, Message
from tests.harness.mosquitto import MosquittoServer

pytestmark = pytest.mark.integration

MILLISECOND = timedelta(milliseconds=1)


@pytest.fixture
def catalog_path(tmp_path: Path) -> Path:
    path = tmp_path / "stations.yaml"
    write_catalog(path, count=3)
    return path


def _received(collector: Collector) -> Callable[[], float]:
    return lambda: sample(collector, "floodwatch_readings_received_total")


async def _stored_counts(store: InfluxStore | SQLiteStore, samples: list[Sample]) -> bool:
    expected: dict[str, int] = {}
    for item in samples:
        expected[item.station_id] = expected.get(item.station_id, 0) + 1
    with contextlib.suppress(Exception):
        return all([await store.count(s) == n for s, n in expected.items()])
    return False


async def _assert_stored_exactly(store: InfluxStore | SQLiteStore, samples: list[Sample]) -> None:
    """Every sample stored once with its level, and nothing else for those stations."""
    await wait_until(lambda: _stored_counts(store, samples), 60, "every reading to be stored")
    by_station: dict[str, dict[int, float]] = {}
    for item in samples:
        # Both stores key a reading by its timestamp in whole milliseconds.
        ts_ms = round(item.ts.timestamp() * 1000)
        by_station.setdefault(item.station_id, {})[ts_ms] = item.level
    for station_id, expected in by_station.items():
        stored = await store.latest(station_id, limit=len(expected) + 10)
        assert {r.ts_ms: r.level for r in stored} == expected
        assert len(stored) == len(expected)


# --- republished readings and retained state ----------------------------------------------


def _readings(messages: list[Message]) -> list[Message]:
    return [m for m in messages if m.topic.startswith("floodwatch/readings/")]


async def test_clean_readings_are_republished_after_storing_and_state_is_retained(
    tmp_path: Path, mosquitto: MosquittoServer, influx_server: InfluxServer, catalog_path: Path
) -> None:
    database = random_database()
    endpoint = MqttEndpoint.parse(mosquitto.url)
    settings = collector_settings(
        tmp_path,
        mosquitto.url,
        catalog_path,
        name="collector-outputs",
        influx=influx_server,
        database=database,
    )
    station_ids = ["gauge-000", "gauge-001", "gauge-002"]
    samples = stream(station_ids, per_station=20)
    last = {item.station_id: item for item in samples}  # the stream is in time order
    async with (
        running_collector(settings) as collector,
        influx_reader(influx_server, database) as store,
    ):
        await probe_until_subscribed(endpoint, [_received(collector)])
        async with Listener(
            endpoint, "floodwatch/readings/#", "floodwatch/stations/+/state", client_id="dashboard"
        ) as live:
            await publish(endpoint, samples)
            first = await live.wait_for(lambda ms: bool(_readings(ms)), 30, "a clean reading")
            body = _readings(first)[0].json()
            # Republished only once stored: the reading it announces is already in the store.
            ts = datetime.fromisoformat(body["ts"])
            found = await store.query(body["station_id"], ts - MILLISECOND, ts + MILLISECOND)
            assert [r.level for r in found] == [body["level"]]

            messages = await live.wait_for(
                lambda ms: len(_readings(ms)) >= len(samples), 30, "every clean reading"
            )
            republished = _readings(messages)
            assert len(republished) == len(samples), "each reading is republished once"
            seen = set()
            for message in republished:
                body = message.json()
                assert message.topic == topics.clean_reading(body["station_id"])
                assert body["qc"] == []
                seen.add((body["station_id"], datetime.fromisoformat(body["ts"]), body["level"]))
            assert seen == {(s.station_id, s.ts, s.level) for s in samples}

            def states_final(ms: list[Message]) -> bool:
                return all(
                    any(m.json()["level"] == item.level for m in ms if m.topic == _state(sid))
                    for sid, item in last.items()
                )

            await live.wait_for(states_final, 30, "the latest state of every station")

    # A subscriber that arrives later (a dashboard starting up) gets the retained state.
    async with Listener(endpoint, "floodwatch/stations/+/state", client_id="late") as late:
        messages = await late.wait_for(
            lambda ms: {m.topic for m in ms} >= {_state(s) for s in station_ids},
            15,
            "retained state for every station",
        )
    for station_id, item in last.items():
        [state] = [m for m in messages if m.topic == _state(station_id)]
        assert state.retain
        body = state.json()
        assert body["station_id"] == station_id
        assert body["level"] == item.level
        assert datetime.fromisoformat(body["ts"]) == item.ts
        assert body["unit"] == "cm"
        assert body["qc"] == []
        assert body["faulty"] is False
        assert body["maintenance"] is False


def _state(station_id: str) -> str:
    return topics.station_state(station_id)


# --- /healthz and /metrics ----------------------------------------------------------------


@contextlib.asynccontextmanager
async def _http(collector: Collector) -> AsyncIterator[str]:
    server = HttpServer(health_app(collector.health, collector.metrics.render), "127.0.0.1", 0)
    await server.start()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        await server.stop()


async def _get(session: aiohttp.ClientSession, url: str) -> tuple[int, str, str]:
    async with session.get(url) as response:
        return response.status, response.headers.get("Content-Type", ""), await response.text()


METRIC_NAMES = (
    "floodwatch_readings_received_total",
    "floodwatch_readings_accepted_total",
    "floodwatch_readings_written_total",
    "floodwatch_readings_spooled_total",
    "floodwatch_ingest_lag_seconds_count",
    "floodwatch_pipeline_latency_seconds_count",
)


def _values(text: str) -> dict[str, float]:
    values: dict[str, float] = {}
    for name in METRIC_NAMES:
        value = prometheus_value(text, name)
        assert value is not None, f"{name} missing from /metrics"
        values[name] = value
    return values


async def test_healthz_and_metrics_over_http_follow_the_broker(
    tmp_path: Path, mosquitto: MosquittoServer, influx_server: InfluxServer, catalog_path: Path
) -> None:
    database = random_database()
    endpoint = MqttEndpoint.parse(mosquitto.url)
    settings = collector_settings(
        tmp_path,
        mosquitto.url,
        catalog_path,
        name="collector-http",
        influx=influx_server,
        database=database,
    )
    samples = stream(["gauge-000", "gauge-001"], per_station=10)
    async with (
        running_collector(settings) as collector,
        influx_reader(influx_server, database) as store,
        _http(collector) as base,
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session,
    ):
        status, content_type, text = await _get(session, f"{base}/healthz")
        assert status == 200
        assert content_type.startswith("application/json")
        health: dict[str, Any] = json.loads(text)
        assert health["mqtt"] == "connected"
        assert health["store"] == "up"
        assert health["status"] == "ok"

        await probe_until_subscribed(endpoint, [_received(collector)])
        status, content_type, text = await _get(session, f"{base}/metrics")
        assert status == 200
        assert content_type.startswith("text/plain")
        before = _values(text)
        malformed = '{reason="malformed_json"}'
        assert prometheus_value(text, "floodwatch_readings_rejected_total", malformed) is None

        await publish(endpoint, samples)
        await publish_raw(endpoint, [(topics.gauge_level("gauge-002"), b"{")], client_id="bad")
        await _assert_stored_exactly(store, samples)
        await wait_until(
            lambda: (
                sample(collector, "floodwatch_readings_written_total")
                - before["floodwatch_readings_written_total"]
                >= len(samples)
            ),
            10,
            "the written counter",
        )
        status, _, text = await _get(session, f"{base}/metrics")
        after = _values(text)
        delta = {name: after[name] - before[name] for name in METRIC_NAMES}
        assert delta == {
            "floodwatch_readings_received_total": len(samples) + 1,
            "floodwatch_readings_accepted_total": len(samples),
            "floodwatch_readings_written_total": len(samples),
            "floodwatch_readings_spooled_total": 0,
            "floodwatch_ingest_lag_seconds_count": len(samples),
            "floodwatch_pipeline_latency_seconds_count": len(samples),
        }
        assert prometheus_value(text, "floodwatch_readings_rejected_total", malformed) == 1
        # The stream is minutes old, so its end-to-end lag is far above a second.
        lag_le_1s = prometheus_value(text, "floodwatch_ingest_lag_seconds_bucket", '{le="1.0"}')
        assert lag_le_1s == 0
        assert prometheus_value(text, "floodwatch_mqtt_connected") == 1
        assert prometheus_value(text, "floodwatch_spool_depth") == 0

        mosquitto.stop()

        async def health_is(code: int, mqtt_state: str) -> bool:
            status, _, text = await _get(session, f"{base}/healthz")
            return status == code and json.loads(text)["mqtt"] == mqtt_state

        await wait_until(lambda: health_is(503, "disconnected"), 20, "/healthz to answer 503")
        _, _, text = await _get(session, f"{base}/metrics")
        assert prometheus_value(text, "floodwatch_mqtt_connected") == 0

        mosquitto.start()
        await wait_until(lambda: health_is(200, "connected"), 40, "/healthz to answer 200 again")
        _, _, text = await _get(session, f"{base}/metrics")
        assert prometheus_value(text, "floodwatch_mqtt_connected") == 1
        # And the resumed session still delivers.
        again = stream(["gauge-002"], per_station=3)
        await publish(endpoint, again, client_id="after-restart")
        await _assert_stored_exactly(store, again)


# --- shared subscription ------------------------------------------------------------------


async def test_two_collectors_in_a_shared_group_split_the_stream_and_store_each_once(
    tmp_path: Path, mosquitto: MosquittoServer, influx_server: InfluxServer, catalog_path: Path
) -> None:
    database = random_database()
    endpoint = MqttEndpoint.parse(mosquitto.url)
    settings = [
        collector_settings(
            tmp_path,
            mosquitto.url,
            catalog_path,
            name=name,
            influx=influx_server,
            database=database,
            mqtt_shared_group="collectors",
        )
        for name in ("collector-a", "collector-b")
    ]
    samples = stream(["gauge-000", "gauge-001", "gauge-002"], per_station=100)
    async with (
        running_collector(settings[0]) as first,
        running_collector(settings[1]) as second,
        influx_reader(influx_server, database) as store,
    ):
        collectors = (first, second)
        await probe_until_subscribed(endpoint, [_received(c) for c in collectors])
        accepted_before = [sample(c, "floodwatch_readings_accepted_total") for c in collectors]
        received_before = [sample(c, "floodwatch_readings_received_total") for c in collectors]
        await publish(endpoint, samples)
        await _assert_stored_exactly(store, samples)

        def accepted() -> list[float]:
            return [
                sample(c, "floodwatch_readings_accepted_total") - before
                for c, before in zip(collectors, accepted_before, strict=True)
            ]

        await wait_until(lambda: sum(accepted()) >= len(samples), 10, "both collectors' counts")
        shares = accepted()
        assert all(share > 0 for share in shares), f"each collector takes a share: {shares}"
        # Stored counts cannot show a doubled delivery (writes are idempotent); the
        # collectors' own counts can: between them they saw each reading exactly once.
        assert sum(shares) == len(samples)
        received = [
            sample(c, "floodwatch_readings_received_total") - before
            for c, before in zip(collectors, received_before, strict=True)
        ]
        assert sum(received) == len(samples)
        written = sum(sample(c, "floodwatch_readings_written_total") for c in collectors)
        assert written == len(samples)


# --- the embedded SQLite store ------------------------------------------------------------


async def test_collector_without_influx_url_stores_into_the_sqlite_readings_file(
    tmp_path: Path,
    collector_process: Callable[[dict[str, str]], CollectorProcess],
    mosquitto: MosquittoServer,
    catalog_path: Path,
) -> None:
    readings_path = tmp_path / "data" / "readings.sqlite"
    env = {
        "FLOODWATCH_MQTT_URL": mosquitto.url,
        "FLOODWATCH_INFLUX_URL": "",
        "FLOODWATCH_READINGS_PATH": str(readings_path),
        "FLOODWATCH_STATIONS": str(catalog_path),
        "FLOODWATCH_SPOOL_PATH": str(tmp_path / "spool.sqlite"),
        "FLOODWATCH_MQTT_CLIENT_ID": "collector-sqlite",
    }
    collector = collector_process(env).start()
    try:
        endpoint = MqttEndpoint.parse(mosquitto.url)

        def received() -> float:
            value = prometheus_value(collector.metrics(), "floodwatch_readings_received_total")
            return value or 0.0

        await probe_until_subscribed(endpoint, [received])
        samples = stream(["gauge-000", "gauge-001", "gauge-002"], per_station=30)
        await publish(endpoint, samples)
        store = SQLiteStore(readings_path)
        await store.open()
        try:
            await _assert_stored_exactly(store, samples)
            stored = await store.latest("gauge-000", limit=1)
            assert stored[0].qc == QCFlag.NONE
        finally:
            await store.close()
        health = collector.health()
        assert health is not None
        assert health["store"] == "up"
        assert prometheus_value(collector.metrics(), "floodwatch_readings_spooled_total") == 0
    finally:
        assert collector.stop() == 0
    assert f"store SQLite {readings_path}" in collector.log_path.read_text()
    # The bad-topic probes were rejected, never stored.
    check = SQLiteStore(readings_path)
    await check.open()
    try:
        assert await check.count(PROBE_TOPIC.split("/")[2]) == 0
    finally:
        await check.close()
