"""In-process collectors and small helpers for integration tests that need no kill -9."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from collector.service import Collector
from floodwatch import mqtt as fw_mqtt
from floodwatch.catalog import load_catalog
from floodwatch.replay import gauge_publisher
from floodwatch.settings import MqttEndpoint, Settings
from floodwatch.storage import open_store
from floodwatch.storage.base import ReadingStore
from floodwatch.storage.influx import InfluxStore
from tests.harness.influx import InfluxServer, store_for

# A topic the collector receives (it matches floodwatch/gauges/+/level) but rejects as
# bad_topic: probing with it proves a subscription is live without storing anything.
PROBE_TOPIC = "floodwatch/gauges/PROBE/level"


async def wait_until(
    check: Callable[[], Awaitable[bool] | bool], timeout: float, what: str, step: float = 0.1
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        outcome = check()
        if inspect.isawaitable(outcome):
            outcome = await outcome
        if outcome:
            return
        await asyncio.sleep(step)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def collector_settings(
    tmp_path: Path,
    broker_url: str,
    stations: Path,
    *,
    name: str,
    influx: InfluxServer | None = None,
    database: str = "floodwatch",
    **overrides: Any,
) -> Settings:
    """Settings for one in-process collector: its own client id, spool and SQLite file."""
    values: dict[str, Any] = {
        "mqtt_url": broker_url,
        "mqtt_client_id": name,
        "influx_url": influx.url if influx else None,
        "influx_database": database,
        "stations": stations,
        "spool_path": tmp_path / f"{name}-spool.sqlite",
        "readings_path": tmp_path / f"{name}-readings.sqlite",
        "state_interval_s": 0.2,
    }
    if influx is not None and influx.auth_enabled:
        values["influx_username"] = influx.admin_user
        values["influx_password"] = influx.admin_password
    values.update(overrides)
    return Settings(**values)


@contextlib.asynccontextmanager
async def running_collector(
    settings: Settings, store: ReadingStore | None = None
) -> AsyncIterator[Collector]:
    """A started collector, connected to the broker; stopped (cleanly) on exit."""
    collector = Collector(settings, load_catalog(settings.stations), store or open_store(settings))
    await collector.start()
    try:
        await wait_until(lambda: collector.health()[0], 20, "the collector to connect")
        yield collector
    finally:
        await collector.stop()


def sample(collector: Collector, name: str, **labels: str) -> float:
    """A metric sample of an in-process collector (0 when the labelled child is absent)."""
    value = collector.metrics.registry.get_sample_value(name, labels)
    return float(value) if value is not None else 0.0


async def probe_until_subscribed(
    endpoint: MqttEndpoint,
    received: Sequence[Callable[[], float]],
    *,
    client_id: str = "test-probe",
    timeout: float = 20.0,
) -> None:
    """Publish bad-topic probes until every collector has received at least one, so the
    collectors' subscriptions are certainly in place before a test's real stream."""
    client = fw_mqtt.make_client(endpoint, client_id)
    await fw_mqtt.connect(client, endpoint)
    try:
        deadline = time.monotonic() + timeout
        while not all(count() >= 1 for count in received):
            if time.monotonic() > deadline:
                raise AssertionError("the collectors never received a probe: not subscribed")
            client.publish(PROBE_TOPIC, b"0", qos=1)
            await asyncio.sleep(0.1)
    finally:
        client.disconnect()
        client.loop_stop()


async def publish_raw(
    endpoint: MqttEndpoint, messages: Sequence[tuple[str, bytes]], *, client_id: str
) -> None:
    """Publish (topic, payload) pairs in order at QoS 1 and wait for every PUBACK."""
    async with gauge_publisher(endpoint, client_id) as publisher:
        for topic, payload in messages:
            await publisher.publish(topic, payload)
        await publisher.flush()


@contextlib.asynccontextmanager
async def influx_reader(server: InfluxServer, database: str) -> AsyncIterator[InfluxStore]:
    """A store on `database` for checking what was written (admin login if auth is on)."""
    store = store_for(server, database)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


def prometheus_value(text: str, name: str, labels: str = "") -> float | None:
    """A sample from Prometheus exposition text, e.g. name='x_total', labels='{reason="y"}'."""
    match = re.search(rf"^{re.escape(name)}{re.escape(labels)} (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else None


def clean_env(**variables: str) -> dict[str, str]:
    """This process's environment without any FLOODWATCH_* variable, plus `variables`."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("FLOODWATCH_")}
    env.update(variables)
    return env


def run_cli(
    *args: str, env: dict[str, str], cwd: Path, timeout: float = 120.0
) -> subprocess.CompletedProcess[str]:
    """`python -m floodwatch.cli ARGS` with exactly `env` (see clean_env), output captured."""
    return subprocess.run(
        [sys.executable, "-m", "floodwatch.cli", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
