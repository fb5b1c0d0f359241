"""The forecaster against real parts: gauges publish through a real Mosquitto, the real
collector checks and stores the readings (real InfluxDB, or the embedded SQLite store) and
republishes the clean ones, and the forecaster forecasts from them, writes the forecast
points to the store and publishes the summary that the collector folds into the state."""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from collector.service import Collector
from floodwatch import topics
from floodwatch.models import QCFlag, Reading, utc_now
from floodwatch.settings import MqttEndpoint, Settings
from forecasting.model_store import ModelStore, StoredModel
from forecasting.series import FloatArray
from forecasting.service import Forecaster
from tests.harness.collector_process import CollectorProcess
from tests.harness.forecaster import (
    WATCH,
    metric,
    ramp,
    river_station,
    running_forecaster,
    write_river_catalog,
)
from tests.harness.gauges import publish
from tests.harness.influx import InfluxServer, random_database
from tests.harness.inprocess import (
    clean_env,
    collector_settings,
    influx_reader,
    probe_until_subscribed,
    prometheus_value,
    run_cli,
    running_collector,
    sample,
    wait_until,
)
from tests.harness.listener import Listener, Message
from tests.harness.mosquitto import MosquittoServer

pytestmark = pytest.mark.integration

MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
HOUR_S = 3600.0


def _settings(
    tmp_path: Path, broker: MosquittoServer, catalog: Path, name: str, **overrides: Any
) -> Settings:
    """One collector's settings plus its forecaster's: own client id and state file."""
    return collector_settings(
        tmp_path,
        broker.url,
        catalog,
        name=name,
        forecast_client_id=f"{name}-forecaster",
        state_path=tmp_path / f"{name}-state.sqlite",
        **overrides,
    )


@contextlib.asynccontextmanager
async def pipeline(settings: Settings) -> AsyncIterator[tuple[Collector, Forecaster]]:
    """A collector and a forecaster, both subscribed before the test publishes anything."""
    async with running_collector(settings) as collector, running_forecaster(settings) as fc:
        received = [lambda: sample(collector, "floodwatch_readings_received_total")]
        await probe_until_subscribed(settings.mqtt, received)
        yield collector, fc


def _forecasts(messages: list[Message], station_id: str) -> list[dict[str, Any]]:
    return [m.json() for m in messages if m.topic == topics.forecast(station_id)]


def _trend_at(body: dict[str, Any]) -> datetime | None:
    trend = body.get("trend")
    return datetime.fromisoformat(trend["at"]) if trend else None


def _from(station_id: str, newest: datetime) -> Callable[[list[Message]], bool]:
    """A forecast of `station_id` made from readings up to `newest`."""
    return lambda ms: any(_trend_at(body) == newest for body in _forecasts(ms, station_id))


def _latest_from(messages: list[Message], station_id: str, newest: datetime) -> dict[str, Any]:
    return [body for body in _forecasts(messages, station_id) if _trend_at(body) == newest][-1]


# --- (a) a rising gauge, end to end -------------------------------------------------------


async def test_a_rising_gauge_gets_a_forecast_expecting_its_threshold_on_time(
    tmp_path: Path, mosquitto: MosquittoServer, influx_server: InfluxServer
) -> None:
    catalog = write_river_catalog(tmp_path / "stations.yaml", [river_station("river-a")])
    database = random_database()
    settings = _settings(
        tmp_path,
        mosquitto,
        catalog,
        "fc-rising",
        influx=influx_server,
        database=database,
        forecast_interval_s=2,
    )
    endpoint = settings.mqtt
    now = utc_now().replace(microsecond=0)
    rise_per_h = 20.0
    samples = ramp("river-a", now - 90 * MINUTE, 19, 5 * MINUTE, 300.0, rise_per_h)
    last = samples[-1]
    state_topic = topics.station_state("river-a")
    async with (
        pipeline(settings),
        influx_reader(influx_server, database) as reader,
        Listener(endpoint, topics.forecast("river-a"), state_topic, client_id="dash") as live,
    ):
        await publish(endpoint, samples)
        messages = await live.wait_for(_from("river-a", last.ts), 30, "a forecast from all")
        body = _latest_from(messages, "river-a", last.ts)
        assert body["method"] == "trend"
        assert body["insufficient"] is None
        assert body["trend"]["direction"] == "rising"
        assert body["trend"]["rate_per_h"] == pytest.approx(rise_per_h, rel=0.05)
        upcoming = body["next"]
        assert (upcoming["key"], upcoming["status"]) == ("watch", "expected")
        # The published rise reaches the watch level (WATCH - level) / rise hours later.
        crossing = last.ts + timedelta(hours=(WATCH - last.level) / rise_per_h)
        expected_at = datetime.fromisoformat(upcoming["expected_at"])
        assert abs((expected_at - crossing).total_seconds()) < 300
        statuses = {t["key"]: t["status"] for t in body["thresholds"]}
        assert statuses == {"watch": "expected", "danger": "not_expected"}
        assert [h["horizon_h"] for h in body["horizons"]] == [1, 2, 3, 6]

        # The forecast points are in the real InfluxDB, one per horizon, valid a horizon
        # after the newest reading (later runs from the same readings overwrite them).
        async def stored() -> bool:
            return len(await reader.latest_forecast_run("river-a")) == 4

        await wait_until(stored, 20, "the forecast points in InfluxDB")
        points = await reader.query_forecasts("river-a", last.ts, last.ts + timedelta(hours=7))
        by_horizon = {p.horizon_s: p for p in points}
        assert sorted(by_horizon) == [3600, 7200, 10800, 21600]
        for horizon in body["horizons"]:
            point = by_horizon[round(horizon["horizon_h"] * HOUR_S)]
            assert point.valid_at == last.ts + timedelta(hours=horizon["horizon_h"])
            assert point.level == pytest.approx(horizon["level"], abs=0.01)
            assert point.lower < point.level < point.upper
            assert point.method == "trend"

        # The collector's retained station state carries the trend and a short forecast.
        def state_with_forecast(ms: list[Message]) -> bool:
            states = [m.json() for m in ms if m.topic == state_topic]
            return any(s["trend"] and _trend_at(s) == last.ts for s in states)

        messages = await live.wait_for(state_with_forecast, 20, "the state with the forecast")
        state = [m.json() for m in messages if m.topic == state_topic][-1]
        assert state["level"] == last.level
        assert state["trend"] == body["trend"]
        assert state["alert_level"] is None
        short = state["forecast"]
        assert short["method"] == "trend"
        assert short["next"]["key"] == "watch"
        assert short["next"]["status"] == "expected"
        assert short["horizon"]["horizon_h"] == 6
        assert short["horizon"]["level"] == pytest.approx(last.level + 6 * rise_per_h, abs=1)

    # Retained: a dashboard that starts later gets the latest forecast at once.
    async with Listener(endpoint, topics.FORECASTS_FILTER, client_id="late") as late:
        messages = await late.wait_for(
            lambda ms: bool(_forecasts(ms, "river-a")), 10, "the retained forecast"
        )
        assert messages[0].retain
        assert messages[0].json()["next"]["key"] == "watch"


# --- (b) prompt runs ----------------------------------------------------------------------


async def test_a_fast_rise_is_forecast_at_once_not_at_the_next_pass(
    tmp_path: Path, mosquitto: MosquittoServer, influx_server: InfluxServer
) -> None:
    catalog = write_river_catalog(tmp_path / "stations.yaml", [river_station("river-b")])
    settings = _settings(
        tmp_path,
        mosquitto,
        catalog,
        "fc-prompt",
        influx=influx_server,
        database=random_database(),
        forecast_interval_s=3600,  # an hour: only a prompt run can explain a new forecast
    )
    endpoint = settings.mqtt
    now = utc_now().replace(microsecond=0)
    steady = ramp("river-b", now - 65 * MINUTE, 8, 5 * MINUTE, 300.0, 0.0)
    rise = ramp("river-b", now - 29 * MINUTE, 30, MINUTE, 302.0, 120.0)
    async with (
        pipeline(settings) as (_collector, forecaster),
        Listener(endpoint, topics.forecast("river-b"), client_id="dash") as live,
    ):
        # Learning at start-up ends with a pass when it learned something: let it be done.
        await asyncio.wait_for(forecaster.models_ready.wait(), 30)
        await publish(endpoint, steady)
        messages = await live.wait_for(_from("river-b", steady[-1].ts), 20, "a steady forecast")
        assert _latest_from(messages, "river-b", steady[-1].ts)["trend"]["direction"] == "steady"
        scheduled = metric(forecaster, "floodwatch_forecast_runs_total", kind="scheduled")
        prompt = metric(forecaster, "floodwatch_forecast_runs_total", kind="prompt")

        await publish(endpoint, rise)
        messages = await live.wait_for(_from("river-b", rise[-1].ts), 15, "the rise forecast")
        body = _latest_from(messages, "river-b", rise[-1].ts)
        assert body["trend"]["direction"] == "rising"
        assert body["trend"]["rate_per_h"] > 60
        assert (body["next"]["key"], body["next"]["status"]) == ("watch", "expected")
        assert metric(forecaster, "floodwatch_forecast_runs_total", kind="scheduled") == scheduled
        assert metric(forecaster, "floodwatch_forecast_runs_total", kind="prompt") > prompt


# --- (c) too little data ------------------------------------------------------------------


async def test_a_gauge_with_too_few_readings_gets_a_forecast_that_says_why(
    tmp_path: Path, mosquitto: MosquittoServer
) -> None:
    """On the embedded SQLite store, which stores forecasts behind the same interface."""
    catalog = write_river_catalog(tmp_path / "stations.yaml", [river_station("river-c")])
    settings = _settings(tmp_path, mosquitto, catalog, "fc-few", forecast_interval_s=1)
    endpoint = settings.mqtt
    now = utc_now().replace(microsecond=0)
    samples = ramp("river-c", now - 10 * MINUTE, 2, 5 * MINUTE, 300.0, 10.0)
    state_topic = topics.station_state("river-c")
    async with (
        pipeline(settings) as (collector, forecaster),
        Listener(endpoint, topics.forecast("river-c"), state_topic, client_id="dash") as live,
    ):
        await publish(endpoint, samples)
        await wait_until(
            lambda: metric(forecaster, "floodwatch_forecast_readings_received_total") == 2,
            20,
            "both readings at the forecaster",
        )

        def explained(ms: list[Message]) -> bool:
            return any(
                "only 2 readings" in (b["insufficient"] or "") for b in _forecasts(ms, "river-c")
            )

        messages = await live.wait_for(explained, 20, "a forecast saying why there is none")
        body = _forecasts(messages, "river-c")[-1]
        assert "at least 4 needed" in body["insufficient"]
        assert body["method"] == "none"
        assert body["trend"] is None
        assert body["horizons"] == []
        assert body["next"] is None
        assert (
            await collector.store.query_forecasts(
                "river-c", now - timedelta(days=1), now + timedelta(days=2)
            )
            == []
        )

        def state_says_why(ms: list[Message]) -> bool:
            states = [m.json() for m in ms if m.topic == state_topic]
            return any(s["forecast"] and s["forecast"]["insufficient"] for s in states)

        messages = await live.wait_for(state_says_why, 20, "the state with the reason")
        state = [m.json() for m in messages if m.topic == state_topic][-1]
        assert state["trend"] is None
        assert state["forecast"]["horizon"] is None
        assert metric(forecaster, "floodwatch_forecast_insufficient_total") >= 1


# --- (d) flagged readings -----------------------------------------------------------------


async def test_flagged_readings_never_reach_the_forecasters_history(
    tmp_path: Path, mosquitto: MosquittoServer
) -> None:
    catalog = write_river_catalog(tmp_path / "stations.yaml", [river_station("river-d")])
    settings = _settings(tmp_path, mosquitto, catalog, "fc-spike", forecast_interval_s=1)
    endpoint = settings.mqtt
    now = utc_now().replace(microsecond=0)
    before = ramp("river-d", now - 60 * MINUTE, 12, 5 * MINUTE, 300.0, 0.0)
    spike = ramp("river-d", now - 4 * MINUTE, 1, MINUTE, 900.0, 0.0)
    after = ramp("river-d", now - 3 * MINUTE, 4, MINUTE, 300.0, 0.0)
    samples = before + spike + after
    async with (
        pipeline(settings) as (collector, forecaster),
        Listener(endpoint, topics.forecast("river-d"), client_id="dash") as live,
    ):
        await publish(endpoint, samples)
        clean = len(samples) - 1
        # The collector republishes in order, so once the last clean reading is at the
        # forecaster, the spike would have been too, had it been republished.
        await wait_until(
            lambda: metric(forecaster, "floodwatch_forecast_readings_received_total") >= clean,
            20,
            "every clean reading at the forecaster",
        )
        stored = await collector.store.query("river-d", now - 2 * HOUR, now + MINUTE)
        assert len(stored) == len(samples)
        [flagged] = [r for r in stored if not r.is_clean]
        assert flagged.level == spike[0].level
        assert flagged.qc & QCFlag.SPIKE
        assert metric(forecaster, "floodwatch_forecast_readings_received_total") == clean
        history = forecaster.history.series("river-d", time.time())
        assert len(history) == clean
        assert flagged.ts.timestamp() not in history.t.tolist()
        assert history.level.max() < 301

        messages = await live.wait_for(_from("river-d", after[-1].ts), 20, "a forecast")
        trend = _latest_from(messages, "river-d", after[-1].ts)["trend"]
        assert trend["level"] == pytest.approx(300.0, abs=0.5)
        assert trend["direction"] == "steady"


# --- (e) the store goes away and comes back -----------------------------------------------


async def test_the_forecaster_outlives_an_influxdb_outage_and_writes_again(
    tmp_path: Path, mosquitto: MosquittoServer
) -> None:
    catalog = write_river_catalog(tmp_path / "stations.yaml", [river_station("river-e")])
    now = utc_now().replace(microsecond=0)
    samples = ramp("river-e", now - 60 * MINUTE, 13, 5 * MINUTE, 300.0, 5.0)
    with InfluxServer(tmp_path / "influxd") as server:
        database = random_database()
        settings = _settings(
            tmp_path,
            mosquitto,
            catalog,
            "fc-outage",
            influx=server,
            database=database,
            forecast_interval_s=1,
        )
        async with (
            pipeline(settings) as (_collector, forecaster),
            influx_reader(server, database) as reader,
        ):
            await publish(settings.mqtt, samples)

            async def run_stored_since(moment: datetime) -> bool:
                with contextlib.suppress(Exception):
                    run = await reader.latest_forecast_run("river-e")
                    return bool(run) and run[0].issued_at >= moment
                return False

            await wait_until(lambda: run_stored_since(now - HOUR), 30, "forecasts stored")
            server.stop()
            errors = metric(
                forecaster, "floodwatch_forecast_store_errors_total", kind="unavailable"
            )
            await wait_until(
                lambda: (
                    metric(forecaster, "floodwatch_forecast_store_errors_total", kind="unavailable")
                    > errors
                ),
                30,
                "a failed forecast write",
            )
            passes = metric(forecaster, "floodwatch_forecast_runs_total", kind="scheduled")
            await wait_until(
                lambda: (
                    metric(forecaster, "floodwatch_forecast_runs_total", kind="scheduled")
                    >= passes + 2
                ),
                30,
                "passes to go on without the store",
            )
            healthy, details = forecaster.health()
            assert healthy, details
            assert (details["mqtt"], details["store"], details["status"]) == (
                "connected",
                "unavailable",
                "degraded",
            )

            server.start()
            back = utc_now()
            await wait_until(lambda: run_stored_since(back), 30, "forecasts stored again")
            await wait_until(
                lambda: forecaster.health()[1]["store"] == "up", 10, "the store to count as up"
            )


# --- (f) learned models survive a restart -------------------------------------------------


def _waves(t: FloatArray) -> tuple[FloatArray, FloatArray]:
    """An upstream gauge and a downstream one that follows it two hours later."""

    def upstream(x: FloatArray) -> FloatArray:
        day = 86_400.0
        wave = 60 * np.sin(2 * math.pi * x / (1.1 * day)) + 25 * np.sin(
            2 * math.pi * x / (0.37 * day)
        )
        return np.asarray(250 + wave, dtype=np.float64)

    noise = np.random.default_rng(7).normal(0, 0.3, (2, t.size))
    return upstream(t) + noise[0], 0.8 * upstream(t - 2 * HOUR_S) + 50 + noise[1]


async def _stored_models(path: Path) -> dict[str, StoredModel]:
    store = ModelStore(path)
    await store.open()
    try:
        return {record.station_id: record for record in await store.load_all()}
    finally:
        await store.close()


async def test_learned_models_are_kept_and_reloaded_and_relearned_when_the_catalog_changes(
    tmp_path: Path, mosquitto: MosquittoServer, influx_server: InfluxServer
) -> None:
    down = river_station("river-down", upstream=["river-up"], forecast={"horizons_h": [1, 2, 3]})
    stations = [river_station("river-up"), down]
    catalog = write_river_catalog(tmp_path / "stations.yaml", stations)
    database = random_database()
    settings = _settings(
        tmp_path,
        mosquitto,
        catalog,
        "fc-models",
        influx=influx_server,
        database=database,
        forecast_interval_s=3600,
    )
    end = time.time() // 300 * 300
    t = np.asarray(end - 300.0 * np.arange(3 * 288)[::-1], dtype=np.float64)
    up, downstream = _waves(t)
    async with influx_reader(influx_server, database) as seeder:
        await seeder.write(
            [
                Reading(sid, datetime.fromtimestamp(ts, UTC), float(level))
                for sid, levels in (("river-up", up), ("river-down", downstream))
                for ts, level in zip(t, levels, strict=True)
            ]
        )

    async with running_forecaster(settings) as first:
        await wait_until(
            lambda: metric(first, "floodwatch_forecast_models_total", outcome="learned") == 2,
            120,
            "both models learned",
        )
        # The pass after learning forecasts the downstream gauge with its routing model.
        await wait_until(
            lambda: "river-down" in first.last and first.last["river-down"].method == "routing",
            30,
            "a routing forecast",
        )
    learned = await _stored_models(settings.state_path)
    model = learned["river-down"].model
    assert model is not None
    [link] = model.upstream
    assert (link.station_id, link.source) == ("river-up", "learned")
    assert abs(link.lag_steps * model.step_s - 2 * HOUR_S) <= HOUR_S
    assert link.correlation is not None
    assert link.correlation > 0.5

    async with running_forecaster(settings) as second:
        await wait_until(
            lambda: metric(second, "floodwatch_forecast_models_total", outcome="loaded") == 2,
            30,
            "both models loaded",
        )
        assert metric(second, "floodwatch_forecast_models_total", outcome="learned") == 0
        assert second.models.models["river-down"] == model
    reloaded = await _stored_models(settings.state_path)
    assert reloaded["river-down"].learned_at == learned["river-down"].learned_at

    env = clean_env(
        FLOODWATCH_STATE_PATH=str(settings.state_path), FLOODWATCH_STATIONS=str(catalog)
    )
    result = run_cli("forecast", "models", "river-down", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "river-down: routing" in result.stdout
    assert "(current)" in result.stdout
    assert "upstream river-up: travel time" in result.stdout
    assert "learned, correlation" in result.stdout
    assert result.stdout.count("ahead: RMSE") == 3

    # A hydrologist sets the travel time: the stored model is stale at the next start.
    down["forecast"]["travel_h"] = {"river-up": 2.5}
    write_river_catalog(catalog, [river_station("river-up"), down])
    result = run_cli("forecast", "models", "river-down", env=env, cwd=tmp_path)
    assert "stale: the catalog changed" in result.stdout
    async with running_forecaster(settings) as third:
        await wait_until(
            lambda: metric(third, "floodwatch_forecast_models_total", outcome="learned") == 1,
            120,
            "the changed station relearned",
        )
        assert metric(third, "floodwatch_forecast_models_total", outcome="loaded") == 1
    relearned = (await _stored_models(settings.state_path))["river-down"]
    assert relearned.model is not None
    assert relearned.model.upstream[0].source == "override"
    assert relearned.model.upstream[0].lag_steps * relearned.model.step_s == 2.5 * HOUR_S
    result = run_cli("forecast", "models", env=env, cwd=tmp_path)
    assert "set in the catalog, forecast.travel_h" in result.stdout
    assert "river-up: autoregressive" in result.stdout


# --- the shipped ACL and the CLI ----------------------------------------------------------


async def test_the_viewer_account_reads_forecasts(tmp_path: Path) -> None:
    passwords = {"floodwatch": "svc-Pw-1", "viewer": "view-Pw-2"}
    catalog = write_river_catalog(tmp_path / "stations.yaml", [river_station("river-v")])
    with MosquittoServer(tmp_path / "mosquitto", users=passwords, acl=True) as broker:
        settings = collector_settings(
            tmp_path,
            broker.url_for("floodwatch"),
            catalog,
            name="fc-acl",
            forecast_client_id="fc-acl-forecaster",
            state_path=tmp_path / "state.sqlite",
        )
        async with running_forecaster(settings) as forecaster:
            await wait_until(
                lambda: metric(forecaster, "floodwatch_forecast_runs_total", kind="scheduled") >= 1,
                20,
                "the start-up pass",
            )
            viewer = MqttEndpoint.parse(broker.url_for("viewer"))
            async with Listener(viewer, topics.FORECASTS_FILTER, client_id="viewer") as seen:
                messages = await seen.wait_for(bool, 10, "a forecast seen by the viewer")
        assert messages[0].topic == topics.forecast("river-v")
        assert messages[0].json()["insufficient"] == "no readings yet"


def test_run_serves_both_components_on_one_health_and_metrics_endpoint(
    tmp_path: Path, mosquitto: MosquittoServer
) -> None:
    catalog = write_river_catalog(tmp_path / "stations.yaml", [river_station("river-r")])
    env = {
        "FLOODWATCH_MQTT_URL": mosquitto.url,
        "FLOODWATCH_INFLUX_URL": "",
        "FLOODWATCH_READINGS_PATH": str(tmp_path / "readings.sqlite"),
        "FLOODWATCH_STATE_PATH": str(tmp_path / "state.sqlite"),
        "FLOODWATCH_SPOOL_PATH": str(tmp_path / "spool.sqlite"),
        "FLOODWATCH_STATIONS": str(catalog),
        "FLOODWATCH_MQTT_CLIENT_ID": "run-collector",
        "FLOODWATCH_FORECAST_CLIENT_ID": "run-forecaster",
    }
    process = CollectorProcess(env, tmp_path / "run.log", components=("collector", "forecaster"))
    try:
        process.start()

        def both_up() -> bool:
            health = process.health() or {}
            return bool(health.get("forecaster", {}).get("mqtt") == "connected")

        deadline = time.monotonic() + 30
        while not both_up():
            assert time.monotonic() < deadline, process.log_tail()
            time.sleep(0.1)
        health = process.health()
        assert health is not None
        assert health["mqtt"] == "connected"  # the collector's fields stay at the top
        assert health["store"] == "up"
        metrics = process.metrics()
        assert prometheus_value(metrics, "floodwatch_readings_received_total") == 0
        assert prometheus_value(metrics, "floodwatch_forecaster_mqtt_connected") == 1
    finally:
        assert process.stop() == 0
    log = process.log_path.read_text()
    assert "collector run-collector started" in log
    assert "forecaster run-forecaster started" in log
