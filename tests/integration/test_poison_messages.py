"""One bad message must never stop the network (a real Mosquitto and a real InfluxDB).

Two timestamps that used to raise out of decode() and end paho's network thread for good,
an unexpected error on one message (a bug, injected), and a network thread that dies all
the same: every good reading around them is stored, the bad one is counted and
acknowledged (nothing is handed back after a restart), and a dead thread is reported by
/healthz and ends `floodwatch run` with a non-zero exit for the supervisor to restart it.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt
import pytest

from collector.qc import Checked
from collector.service import Collector
from floodwatch import topics
from floodwatch import wiring as fw_wiring
from floodwatch.cli import _run
from floodwatch.models import Reading, utc_now
from floodwatch.replay import gauge_payload
from floodwatch.settings import MqttEndpoint, Settings
from floodwatch.watchdog import EXIT_FAILED
from tests.harness.gauges import write_catalog
from tests.harness.influx import InfluxServer, random_database
from tests.harness.inprocess import (
    collector_settings,
    influx_reader,
    probe_until_subscribed,
    publish_raw,
    running_collector,
    sample,
    wait_until,
)
from tests.harness.listener import Listener
from tests.harness.mosquitto import MosquittoServer

pytestmark = pytest.mark.integration

STATION = "gauge-001"
POISON_TIMESTAMPS = ("9999-12-31T23:00:00-01:00", "0001-01-01T00:00:00+03:00")
GOOD_COUNT = 40


@pytest.fixture
def catalog_path(tmp_path: Path) -> Path:
    path = tmp_path / "stations.yaml"
    write_catalog(path, count=3)
    return path


def _settings(
    tmp_path: Path, mosquitto: MosquittoServer, influx: InfluxServer, catalog: Path, name: str
) -> Settings:
    return collector_settings(
        tmp_path, mosquitto.url, catalog, name=name, influx=influx, database=random_database()
    )


def _good(count: int, level: float = 300.0) -> list[tuple[str, bytes]]:
    start = utc_now().replace(microsecond=0) - timedelta(minutes=count + 5)
    return [
        (topics.gauge_level(STATION), gauge_payload(start + timedelta(minutes=i), level + i * 0.1))
        for i in range(count)
    ]


def _rejected(collector: Collector, reason: str) -> float:
    return sample(collector, "floodwatch_readings_rejected_total", reason=reason)


async def _restart_sees_nothing_old(settings: Settings, influx: InfluxServer) -> None:
    """A new collector on the same persistent session gets nothing handed back: the
    sentinel published now is the first and only message it receives."""
    async with (
        running_collector(settings) as again,
        influx_reader(influx, settings.influx_database) as store,
    ):
        sentinel_ts = utc_now().replace(microsecond=0)
        await publish_raw(
            settings.mqtt,
            [(topics.gauge_level(STATION), gauge_payload(sentinel_ts, 299.0))],
            client_id="sentinel-gauge",
        )

        async def sentinel_stored() -> bool:
            latest = await store.latest(STATION, limit=1)
            return bool(latest) and latest[0].ts == sentinel_ts

        await wait_until(sentinel_stored, 30, "the sentinel reading to be stored")
        assert sample(again, "floodwatch_readings_received_total") == 1, "nothing redelivered"
        assert again.metrics.total("floodwatch_readings_rejected") == 0


async def test_poison_timestamps_are_rejected_and_every_good_reading_is_stored(
    tmp_path: Path, mosquitto: MosquittoServer, influx_server: InfluxServer, catalog_path: Path
) -> None:
    settings = _settings(tmp_path, mosquitto, influx_server, catalog_path, "collector-poison-ts")
    endpoint = settings.mqtt
    good = _good(GOOD_COUNT)
    poison = [
        (topics.gauge_level(STATION), orjson.dumps({"ts": ts, "level": 300.0}))
        for ts in POISON_TIMESTAMPS
    ]
    # before, between and after the two poison messages, all on one gauge's connection
    stream = [*good[:10], poison[0], *good[10:20], poison[1], *good[20:]]
    async with (
        running_collector(settings) as collector,
        influx_reader(influx_server, settings.influx_database) as store,
        Listener(endpoint, topics.rejected(STATION), client_id="rejected-reader") as rejected,
    ):
        await probe_until_subscribed(
            endpoint, [lambda: sample(collector, "floodwatch_readings_received_total")]
        )
        await publish_raw(endpoint, stream, client_id="poison-gauge")

        async def all_stored() -> bool:
            return await store.count(STATION) == GOOD_COUNT

        await wait_until(all_stored, 30, "every good reading to be stored")
        published = await rejected.wait_for(lambda ms: len(ms) >= 2, 10, "two rejections")
        assert [m.json()["reason"] for m in published] == ["bad_timestamp", "bad_timestamp"]
        assert "cannot be represented in UTC" in published[0].json()["detail"]
        assert _rejected(collector, "bad_timestamp") == 2
        assert _rejected(collector, "internal_error") == 0
        assert collector.failure() is None
        assert collector.health()[0]
    await _restart_sees_nothing_old(settings, influx_server)


def _inject_bug(collector: Collector, poison_level: float) -> None:
    """Make quality control raise on one level: a stand-in for any bug not yet found."""
    check = collector.qc.check

    def buggy(reading: Reading) -> Checked:
        if reading.level == poison_level:
            raise ZeroDivisionError("an injected bug")
        return check(reading)

    collector.qc.check = buggy  # type: ignore[method-assign]


async def test_an_error_on_one_message_is_counted_acknowledged_and_processing_goes_on(
    tmp_path: Path, mosquitto: MosquittoServer, influx_server: InfluxServer, catalog_path: Path
) -> None:
    settings = _settings(tmp_path, mosquitto, influx_server, catalog_path, "collector-bug")
    endpoint = settings.mqtt
    good = _good(GOOD_COUNT)
    poisoned = (topics.gauge_level(STATION), gauge_payload(utc_now(), 666.0))
    async with (
        running_collector(settings) as collector,
        influx_reader(influx_server, settings.influx_database) as store,
        Listener(endpoint, topics.rejected(STATION), client_id="rejected-reader") as rejected,
    ):
        _inject_bug(collector, 666.0)
        await probe_until_subscribed(
            endpoint, [lambda: sample(collector, "floodwatch_readings_received_total")]
        )
        await publish_raw(endpoint, [*good[:20], poisoned, *good[20:]], client_id="buggy-gauge")

        async def all_stored() -> bool:
            return await store.count(STATION) == GOOD_COUNT

        await wait_until(all_stored, 30, "every good reading to be stored")
        [message] = await rejected.wait_for(lambda ms: len(ms) >= 1, 10, "the rejection")
        assert message.json()["reason"] == "internal_error"
        assert message.json()["detail"].startswith("ZeroDivisionError at ")
        assert _rejected(collector, "internal_error") == 1
        assert (
            sample(
                collector, "floodwatch_collector_internal_errors_total", error="ZeroDivisionError"
            )
            == 1
        )
        assert collector.failure() is None, "paho's thread lives on"
        assert collector.health()[0]
    # The poisoned message was acknowledged: a restart does not get it back.
    await _restart_sees_nothing_old(settings, influx_server)


def _kill_network_thread(client: mqtt.Client) -> None:
    """An exception that reaches paho (as one from an unguarded callback would) ends its
    network thread; here the guarded callback is swapped for one that raises."""

    def unguarded(_c: mqtt.Client, _u: object, _m: mqtt.MQTTMessage) -> None:
        raise RuntimeError("an exception paho's thread does not survive")

    client.on_message = unguarded


# The thread is killed on purpose; pytest would otherwise report its exception.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
async def test_a_dead_network_thread_fails_health_although_still_connected(
    tmp_path: Path, mosquitto: MosquittoServer, influx_server: InfluxServer, catalog_path: Path
) -> None:
    settings = _settings(tmp_path, mosquitto, influx_server, catalog_path, "collector-dead")
    async with running_collector(settings) as collector:
        assert collector.failure() is None
        _kill_network_thread(collector.client)
        await publish_raw(settings.mqtt, _good(1), client_id="gauge")
        await wait_until(lambda: collector.failure() is not None, 10, "the watchdog to notice")
        healthy, details = collector.health()
        assert not healthy
        assert details["status"] == "failing"
        assert details["failure"] == "the MQTT network thread has ended"


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
async def test_floodwatch_run_exits_non_zero_when_a_network_thread_dies(
    tmp_path: Path,
    mosquitto: MosquittoServer,
    influx_server: InfluxServer,
    catalog_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`floodwatch run`'s own loop (cli._run), in process, so the test can reach the
    collector it builds and break its thread; the supervisor sees exit code 70."""
    settings = _settings(tmp_path, mosquitto, influx_server, catalog_path, "collector-run")
    settings = settings.model_copy(update={"http_port": 0})
    built: list[fw_wiring.Wiring] = []
    real_wire = fw_wiring.wire_services

    def capturing(*args: Any, **kwargs: Any) -> fw_wiring.Wiring:
        wiring = real_wire(*args, **kwargs)
        built.append(wiring)
        return wiring

    monkeypatch.setattr(fw_wiring, "wire_services", capturing)
    run = asyncio.create_task(_run(settings, ["collector"]))
    await wait_until(lambda: bool(built), 10, "the services to be built")
    collector = built[0].services["collector"]
    assert isinstance(collector, Collector)
    await wait_until(lambda: collector.health()[0] or run.done(), 20, "the collector to start")
    _kill_network_thread(collector.client)
    endpoint: MqttEndpoint = settings.mqtt
    await publish_raw(endpoint, _good(1), client_id="gauge")
    done, _ = await asyncio.wait({run}, timeout=30)
    assert done, "floodwatch run kept running with a dead network thread"
    assert run.result() == EXIT_FAILED
