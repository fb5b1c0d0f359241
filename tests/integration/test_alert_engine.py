"""The alert engine against real parts: gauges publish through a real Mosquitto, the real
collector checks, stores and republishes the readings, and the engine decides and commits
its events to the state store's outbox. One engine runs as its own process, so it can be
killed -9 between deciding and delivering."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from alerts.engine import AlertEngine
from collector.service import Collector
from floodwatch import topics
from floodwatch.models import utc_now
from floodwatch.net import free_port
from floodwatch.settings import MqttEndpoint, Settings
from tests.harness.alerts import (
    StoredAlerts,
    alert_settings,
    probe_engine_process,
    publish_clean,
    running_engine,
)
from tests.harness.collector_process import CollectorProcess
from tests.harness.forecaster import river_station, write_river_catalog
from tests.harness.gauges import Sample, publish
from tests.harness.inprocess import (
    clean_env,
    probe_until_subscribed,
    run_cli,
    running_collector,
    sample,
    wait_until,
)
from tests.harness.listener import Listener
from tests.harness.mosquitto import MosquittoServer

pytestmark = pytest.mark.integration

MINUTE = timedelta(minutes=1)
REPO = Path(__file__).resolve().parents[2]


def _catalog(path: Path, danger: float = 600, **extra: Any) -> Path:
    """g1 and g2: watch 400, danger `danger`, clear margin 10 cm, in cm."""
    first = river_station("g1", clear_margin=10, **extra)
    first["levels"][1]["value"] = danger
    return write_river_catalog(path, [first, river_station("g2", clear_margin=10)])


@contextlib.asynccontextmanager
async def pipeline(settings: Settings) -> AsyncIterator[tuple[Collector, AlertEngine]]:
    """An engine and a collector, both subscribed before the test publishes anything."""
    async with running_engine(settings) as engine, running_collector(settings) as collector:
        received = [lambda: sample(collector, "floodwatch_readings_received_total")]
        await probe_until_subscribed(settings.mqtt, received)
        yield collector, engine


async def _kinds_become(
    stored: StoredAlerts, expected: list[str], station_id: str = "g1", timeout: float = 20
) -> None:
    async def done() -> bool:
        return await stored.kinds(station_id) == expected

    try:
        await wait_until(done, timeout, f"events {expected}")
    except AssertionError:
        raise AssertionError(f"expected {expected}, got {await stored.kinds(station_id)}") from None


# --- (a) through the broker and the collector: up the ladder and down again ----------------


async def test_a_flood_through_the_collector_escalates_and_clears_in_order(
    tmp_path: Path, mosquitto: MosquittoServer
) -> None:
    catalog = _catalog(tmp_path / "stations.yaml")
    settings = alert_settings(tmp_path, mosquitto.url, catalog, name="al-flood")
    settings = settings.model_copy(update={"alert_clear_dwell_s": 1800.0})
    # 15-minute readings, at most 40 cm apart (QC takes them as a real river).
    rise = [350, 380, 410, 440, 470, 500, 530, 560, 590, 620, 640]
    fall = [600, 580, 560, 540, 520, 480, 440, 400, 380, 370, 360, 350]
    start = utc_now() - timedelta(hours=8)
    samples = [Sample("g1", start + 15 * n * MINUTE, level) for n, level in enumerate(rise + fall)]
    async with pipeline(settings), StoredAlerts(settings.state_path) as stored:
        await publish(settings.mqtt, samples, client_id="al-flood-gauges")
        expected = ["escalation", "escalation", "deescalation", "all_clear"]
        await _kinds_become(stored, expected)
        events = [item.event for item in await stored.events("g1")]
    rungs = [
        (e.previous.key if e.previous else None, e.threshold.key) for e in events if e.threshold
    ]
    assert rungs == [(None, "watch"), ("watch", "danger"), ("danger", "watch"), (None, "watch")]
    # Entered at the first reading at or above the mark; left only after the dwell below
    # value − margin (590 for danger, 390 for watch).
    assert events[0].at == samples[2].ts
    assert events[0].level == 410
    assert events[1].at == samples[9].ts
    assert events[1].level == 620
    assert events[2].at == samples[14].ts  # below 590 from 580 on; 30 min later, 540
    assert events[3].at == samples[21].ts  # below 390 from 380 on; 30 min later, 360
    assert [e.unit for e in events] == ["cm"] * 4


# --- (b) killed between deciding and delivering ------------------------------------------


def _engine_env(tmp_path: Path, broker: MosquittoServer, catalog: Path) -> dict[str, str]:
    return {
        **clean_env(),
        "FLOODWATCH_MQTT_URL": broker.url,
        "FLOODWATCH_STATIONS": str(catalog),
        "FLOODWATCH_STATE_PATH": str(tmp_path / "state.sqlite"),
        "FLOODWATCH_ALERT_CLIENT_ID": "kill-alerts",
        # Nothing listens there: the InfluxDB channel cannot deliver, so its copy of every
        # event stays pending, as any channel's does between deciding and delivering.
        "FLOODWATCH_INFLUX_URL": f"http://127.0.0.1:{free_port()}",
        "FLOODWATCH_INFLUX_TIMEOUT_S": "1",
    }


async def test_an_engine_killed_before_delivery_neither_loses_nor_repeats_the_event(
    tmp_path: Path, mosquitto: MosquittoServer
) -> None:
    catalog = _catalog(tmp_path / "stations.yaml")
    env = _engine_env(tmp_path, mosquitto, catalog)
    endpoint = MqttEndpoint.parse(mosquitto.url)
    crossing = utc_now().replace(microsecond=0) - 10 * MINUTE
    async with (
        Listener(endpoint, topics.ALERTS_FILTER, client_id="kill-listener") as residents,
        StoredAlerts(tmp_path / "state.sqlite") as stored,
    ):
        engine = CollectorProcess(env, tmp_path / "engine-1.log", components=("alerts",))
        try:
            engine.start()
            await probe_engine_process(engine, endpoint)
            await publish_clean(endpoint, [("g1", crossing, 450.0)], client_id="kill-1")
            await _kinds_become(stored, ["escalation"])
            await residents.wait_for(bool, 20, "the escalation on MQTT")

            async def mqtt_marked() -> bool:
                return await stored.store.pending("mqtt") == []

            await wait_until(mqtt_marked, 20, "the MQTT delivery to be recorded")
            # Decided and committed; one channel delivered, the other not yet: die now.
        finally:
            engine.kill()
        pending = await stored.store.pending("influx")
        assert [item.event.kind.value for item in pending] == ["escalation"]
        event_id = pending[0].event.event_id

        restarted = CollectorProcess(env, tmp_path / "engine-2.log", components=("alerts",))
        try:
            restarted.start()
            await probe_engine_process(restarted, endpoint)
            # The same reading again (as a redelivery would bring it), then a newer one on
            # the same rung: neither is a new crossing.
            later = crossing + 5 * MINUTE
            await publish_clean(
                endpoint, [("g1", crossing, 450.0), ("g1", later, 460.0)], client_id="kill-2"
            )

            async def saw_later() -> bool:
                state = await stored.state("g1")
                return state is not None and state.last_at == later

            await wait_until(saw_later, 20, "the restarted engine to take the newer reading")
            await asyncio.sleep(1.0)  # time for a wrong second delivery to show up
            assert await stored.kinds("g1") == ["escalation"]
            pending = await stored.store.pending("influx")
            assert [item.event.event_id for item in pending] == [event_id]
            assert await stored.store.pending("mqtt") == []
        finally:
            restarted.stop()
    delivered = [m.json()["event_id"] for m in residents.on(topics.alert("g1"))]
    assert delivered == [event_id]


# --- (c) the catalog edited on disk ------------------------------------------------------


async def test_a_catalog_edit_re_evaluates_at_once_and_a_bad_one_is_refused(
    tmp_path: Path, mosquitto: MosquittoServer
) -> None:
    path = _catalog(tmp_path / "stations.yaml")
    settings = alert_settings(tmp_path, mosquitto.url, path, name="al-cat")
    now = utc_now() - MINUTE
    async with running_engine(settings) as engine, StoredAlerts(settings.state_path) as stored:
        await publish_clean(settings.mqtt, [("g1", now, 450.0)], client_id="al-cat-1")
        await _kinds_become(stored, ["escalation"])
        _catalog(path, danger=440)  # danger lowered below the current level
        await _kinds_become(stored, ["escalation", "escalation"])
        assert engine.states["g1"].active == "danger"
        # An invalid edit: refused, named, the last good catalog kept.
        path.write_text(path.read_text().replace("value: 440", "value: 300"))
        await wait_until(lambda: engine.watch.error is not None, 10, "the refusal")
        healthy, details = engine.health()
        assert healthy  # still working on the last good catalog
        assert details["status"] == "degraded"
        assert "'danger' (300.0) must be above 'watch' (400.0)" in details["catalog"]
        assert engine.catalog["g1"].levels[1].value == 440
        # ... and the engine keeps deciding.
        await publish_clean(settings.mqtt, [("g2", now, 420.0)], client_id="al-cat-2")
        await _kinds_become(stored, ["escalation"], station_id="g2")
        refused = engine.metrics.registry.get_sample_value(
            "floodwatch_alert_catalog_reloads_total", {"outcome": "refused"}
        )
        assert refused == 1


# --- (d) a hydrologist's edit from the CLI while the engine runs --------------------------


async def test_thresholds_set_from_the_cli_re_evaluates_the_running_engine(
    tmp_path: Path, mosquitto: MosquittoServer
) -> None:
    path = _catalog(tmp_path / "stations.yaml")
    settings = alert_settings(tmp_path, mosquitto.url, path, name="al-cli")
    env = clean_env(FLOODWATCH_STATIONS=str(path), FLOODWATCH_STATE_PATH=str(settings.state_path))
    async with running_engine(settings) as engine, StoredAlerts(settings.state_path) as stored:
        await publish_clean(settings.mqtt, [("g1", utc_now() - MINUTE, 450.0)], client_id="c1")
        await _kinds_become(stored, ["escalation"])
        before = utc_now()
        done = await asyncio.to_thread(
            run_cli, "thresholds", "set", "g1.danger=445", "--by", "anna", env=env, cwd=tmp_path
        )
        assert done.returncode == 0, done.stderr
        assert "g1 levels.danger.value: 600 -> 445 (by anna)" in done.stdout
        await _kinds_become(stored, ["escalation", "escalation"])
        escalation = (await stored.events("g1"))[-1].event
        assert escalation.threshold is not None
        assert escalation.threshold.value == 445
        assert engine.catalog["g1"].levels[1].value == 445
        refused = await asyncio.to_thread(
            run_cli, "thresholds", "set", "g1.watch=500", env=env, cwd=tmp_path
        )
        assert refused.returncode == 2
        assert "'danger' (445.0) must be above 'watch' (500.0)" in refused.stderr
        audit = await stored.store.audit("g1")
    assert [(a.by, a.field, a.old, a.new) for a in audit] == [
        ("anna", "levels.danger.value", "600", "445")
    ]
    assert before - MINUTE < audit[0].at <= utc_now()
    shown = await asyncio.to_thread(run_cli, "thresholds", "audit", "g1", env=env, cwd=tmp_path)
    assert "anna" in shown.stdout
    assert "levels.danger.value" in shown.stdout


# --- (e) a gauge that falls silent ---------------------------------------------------------


async def test_a_silent_gauge_goes_offline_and_back_online(
    tmp_path: Path, mosquitto: MosquittoServer
) -> None:
    path = _catalog(tmp_path / "stations.yaml")
    settings = alert_settings(
        tmp_path, mosquitto.url, path, name="al-off", alert_offline_after_s=1.0
    )
    async with running_engine(settings), StoredAlerts(settings.state_path) as stored:
        await publish_clean(settings.mqtt, [("g1", utc_now(), 300.0)], client_id="o1")
        await _kinds_become(stored, ["offline"], timeout=10)
        offline = (await stored.events("g1"))[0].event
        assert offline.operator_only
        assert offline.detail is not None
        assert offline.detail.startswith("no reading for")
        await publish_clean(settings.mqtt, [("g1", utc_now(), 301.0)], client_id="o2")
        await _kinds_become(stored, ["offline", "online"], timeout=10)


# --- (f) a flash rise and a QC-flagged spike ------------------------------------------


async def test_a_flash_rise_held_by_qc_reaches_dispatchers_at_once_and_residents_next(
    tmp_path: Path, mosquitto: MosquittoServer
) -> None:
    """300 → 650 cm in 15 minutes is beyond the gauge's 200 cm/h: QC holds it; the engine
    asks dispatchers to verify, and escalates for residents as soon as the next reading
    confirms it, dated at the first reading above the rung."""
    path = _catalog(tmp_path / "stations.yaml")
    settings = alert_settings(tmp_path, mosquitto.url, path, name="al-flash")
    start = utc_now().replace(microsecond=0) - timedelta(hours=3)
    steady = [Sample("g1", start + 15 * n * MINUTE, 300.0 + (n % 2)) for n in range(6)]
    first = Sample("g1", start + 90 * MINUTE, 650.0)
    second = Sample("g1", start + 105 * MINUTE, 720.0)
    async with pipeline(settings), StoredAlerts(settings.state_path) as stored:
        await publish(settings.mqtt, [*steady, first], client_id="al-flash-1")
        await _kinds_become(stored, ["unconfirmed"])
        held = (await stored.events("g1"))[0].event
        assert held.threshold is not None
        assert held.threshold.key == "danger"
        assert (held.level, held.from_level, held.at) == (650.0, steady[-1].level, first.ts)
        await publish(settings.mqtt, [second], client_id="al-flash-2")
        await _kinds_become(stored, ["unconfirmed", "escalation"])
        escalation = (await stored.events("g1"))[1].event
    assert not escalation.operator_only
    assert escalation.threshold is not None
    assert escalation.threshold.key == "danger"
    assert (escalation.at, escalation.level) == (first.ts, 650.0)


async def test_a_spike_makes_the_gauge_faulty_and_never_alerts_residents(
    tmp_path: Path, mosquitto: MosquittoServer
) -> None:
    path = _catalog(tmp_path / "stations.yaml")
    settings = alert_settings(
        tmp_path, mosquitto.url, path, name="al-spike", alert_fault_clear_readings=3
    )
    start = utc_now().replace(microsecond=0) - timedelta(hours=1)

    def steady(first: int, count: int) -> list[Sample]:
        return [
            Sample("g1", start + (first + n) * MINUTE, 300.0 + 0.2 * ((first + n) % 3))
            for n in range(count)
        ]

    async with pipeline(settings), StoredAlerts(settings.state_path) as stored:

        async def engine_at(ts: datetime) -> bool:
            state = await stored.state("g1")
            return state is not None and state.last_at == ts

        before = steady(0, 8)
        await publish(settings.mqtt, before, client_id="al-spike-1")
        await wait_until(lambda: engine_at(before[-1].ts), 20, "the steady readings")
        spike = Sample("g1", start + 8 * MINUTE, 1518.0)  # beyond danger (600)
        await publish(settings.mqtt, [spike], client_id="al-spike-2")
        # Held suspect by QC: dispatchers are asked to verify, residents hear nothing.
        await _kinds_become(stored, ["unconfirmed"])
        unconfirmed = (await stored.events("g1"))[0].event
        assert unconfirmed.operator_only
        assert unconfirmed.level == 1518.0
        after = steady(9, 3)
        await publish(settings.mqtt, after, client_id="al-spike-3")
        # The next reading came back: the suspect is revised to a spike, the gauge is
        # faulty until 3 clean readings in a row.
        await _kinds_become(stored, ["unconfirmed", "faulty", "fault_cleared"])
        faulty = (await stored.events("g1"))[1].event
        assert faulty.operator_only
        assert faulty.detail is not None
        assert "spike" in faulty.detail
        assert faulty.at == spike.ts
        state = await stored.state("g1")
        assert state is not None
        assert state.active is None
        assert state.last_level != 1518.0
