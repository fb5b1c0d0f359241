"""The alert engine's coordination without a broker: inputs handed to it directly, a real
state store, a real catalog file edited on disk. The MQTT path is in the integration tests."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from alerts.engine import AlertEngine
from alerts.events import EventKind
from alerts.forecast_view import ForecastView, OutlookView
from alerts.gauge_state import GaugeState
from alerts.inputs import ForecastInput, ReadingInput
from alerts.store import AlertStore
from alerts.thresholds import apply_change
from floodwatch.models import QCFlag, utc_now
from floodwatch.settings import Settings
from tests.harness.forecaster import river_station, write_river_catalog

MINUTE = timedelta(minutes=1)


def _catalog(path: Path, danger: float = 600, **extra: Any) -> Path:
    station = river_station("g1", clear_margin=10, **extra)
    station["levels"][1]["value"] = danger
    return write_river_catalog(path, [station, river_station("g2")])


def _settings(tmp_path: Path, catalog: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "stations": catalog,
        "state_path": tmp_path / "state.sqlite",
        "alert_clear_dwell_s": 600,
    }
    values.update(overrides)
    return Settings(**values)


EngineFactory = Callable[..., Awaitable[AlertEngine]]


@pytest.fixture
async def make_engine(tmp_path: Path) -> AsyncIterator[EngineFactory]:
    """Engines on tmp_path's catalog and state file, prepared (store open, no broker)."""
    made: list[AlertEngine] = []

    async def make(**overrides: Any) -> AlertEngine:
        catalog = tmp_path / "stations.yaml"
        if not catalog.exists():
            _catalog(catalog)
        settings = _settings(tmp_path, catalog, **overrides)
        engine = AlertEngine(settings, catalog, AlertStore(settings.state_path))
        await engine.prepare()
        made.append(engine)
        return engine

    yield make
    for engine in made:
        await engine.stop()


def reading(level: float, at: datetime, station_id: str = "g1") -> ReadingInput:
    return ReadingInput(station_id, level, at)


async def kinds(engine: AlertEngine, station_id: str = "g1") -> list[str]:
    items = await engine.store.recent_events(station_id=station_id)
    return [item.event.kind.value for item in reversed(items)]


async def test_readings_escalate_then_clear_after_the_dwell(make_engine: EngineFactory) -> None:
    engine = await make_engine()
    woken: list[int] = []
    engine.on_committed.append(lambda: woken.append(1))
    t = utc_now() - timedelta(hours=2)
    for n, level in enumerate([350, 420, 480, 610, 640, 560, 550, 540, 385, 380, 380, 380]):
        await engine.handle(reading(level, t + 5 * n * MINUTE))
    assert await kinds(engine) == ["escalation", "escalation", "deescalation", "all_clear"]
    assert engine.states["g1"].active is None
    assert len(woken) == 4  # once per commit that added an event
    pending = await engine.store.pending("mqtt")
    assert [item.event.threshold.key for item in pending if item.event.threshold] == [
        "watch",
        "danger",
        "watch",
        "watch",
    ]


async def test_unknown_stations_are_counted_and_ignored(make_engine: EngineFactory) -> None:
    engine = await make_engine()
    assert await engine.handle(reading(900, utc_now(), "nowhere")) == []
    sample = engine.metrics.registry.get_sample_value
    assert sample("floodwatch_alert_inputs_ignored_total", {"reason": "unknown_station"}) == 1


async def test_a_lowered_rung_in_the_catalog_file_escalates_at_once(
    make_engine: EngineFactory, tmp_path: Path
) -> None:
    engine = await make_engine()
    await engine.handle(reading(450, utc_now() - MINUTE))
    assert await kinds(engine) == ["escalation"]
    _catalog(tmp_path / "stations.yaml", danger=440)
    await engine.refresh()
    assert await kinds(engine) == ["escalation", "escalation"]
    assert engine.states["g1"].active == "danger"


async def test_an_invalid_catalog_is_refused_and_the_last_good_one_kept(
    make_engine: EngineFactory, tmp_path: Path
) -> None:
    engine = await make_engine()
    path = tmp_path / "stations.yaml"
    path.write_text(path.read_text().replace("value: 600", "value: 300"))  # below watch
    await engine.refresh()
    _healthy, details = engine.health()
    assert "refused" in details["catalog"]
    assert "'danger' (300.0) must be above 'watch' (400.0)" in details["catalog"]
    assert details["status"] != "ok"
    sample = engine.metrics.registry.get_sample_value
    assert sample("floodwatch_alert_catalog_reloads_total", {"outcome": "refused"}) == 1
    await engine.refresh()  # the same bad file is refused once, not every poll
    assert sample("floodwatch_alert_catalog_reloads_total", {"outcome": "refused"}) == 1
    assert engine.catalog["g1"].levels[1].value == 600
    await engine.handle(reading(610, utc_now() - MINUTE))
    assert engine.states["g1"].active == "danger"
    _catalog(path, danger=650)
    await engine.refresh()
    assert engine.health()[1]["catalog"] == "ok"
    assert engine.catalog["g1"].levels[1].value == 650


async def test_an_override_is_applied_and_re_evaluates(make_engine: EngineFactory) -> None:
    engine = await make_engine()
    await engine.handle(reading(450, utc_now() - MINUTE))
    await apply_change(engine.store, engine.base_catalog, "g1", "levels.danger.value", 445, "a")
    await engine.refresh()
    assert engine.states["g1"].active == "danger"
    await engine.refresh()  # nothing new: nothing decided again
    assert await kinds(engine) == ["escalation", "escalation"]


async def test_maintenance_override_on_and_off(make_engine: EngineFactory) -> None:
    engine = await make_engine()
    await apply_change(engine.store, engine.base_catalog, "g1", "maintenance", "on", "a")
    await engine.refresh()
    await engine.handle(reading(700, utc_now() - MINUTE))  # no resident alert meanwhile
    await apply_change(engine.store, engine.base_catalog, "g1", "maintenance", "off", "a")
    await engine.refresh()
    await engine.handle(reading(700, utc_now()))
    assert await kinds(engine) == ["maintenance_on", "maintenance_off", "escalation"]


async def test_changes_made_while_the_engine_was_down_are_decided_at_start(
    make_engine: EngineFactory, tmp_path: Path
) -> None:
    first = await make_engine()
    await first.handle(reading(450, utc_now() - MINUTE))
    await first.stop()
    _catalog(tmp_path / "stations.yaml", danger=440, maintenance=False)
    path = tmp_path / "stations.yaml"
    path.write_text(path.read_text().replace("maintenance: false", "maintenance: true", 1))
    again = await make_engine()
    assert await kinds(again) == ["escalation", "maintenance_on"]
    # A ladder edit while down, with maintenance off, escalates at once.
    await again.stop()
    _catalog(path, danger=445)
    third = await make_engine()
    assert await kinds(third) == ["escalation", "maintenance_on", "maintenance_off", "escalation"]
    fourth_kinds = await kinds(await make_engine())  # nothing changed: nothing decided
    assert fourth_kinds == await kinds(third)


async def test_a_restart_does_not_make_every_gauge_offline(make_engine: EngineFactory) -> None:
    first = await make_engine(alert_offline_after_s=0.3)
    await first.handle(reading(300, utc_now() - timedelta(hours=3)))
    await first.stop()
    engine = await make_engine(alert_offline_after_s=0.3)
    await engine.tick()
    assert await kinds(engine) == []  # silent for 3 h, but the engine itself was down
    await asyncio.sleep(0.4)
    await engine.tick()
    await engine.tick()
    assert await kinds(engine) == ["offline"]
    await engine.handle(reading(300, utc_now()))
    assert await kinds(engine) == ["offline", "online"]


async def test_flagged_readings_make_the_gauge_faulty_never_an_alert(
    make_engine: EngineFactory,
) -> None:
    engine = await make_engine()
    t = utc_now() - timedelta(hours=1)
    await engine.handle(reading(300, t))
    await engine.handle(ReadingInput("g1", 1518, t + MINUTE, QCFlag.SPIKE | QCFlag.JUMP))
    assert await kinds(engine) == ["faulty"]
    assert engine.states["g1"].active is None


async def test_a_forecast_seen_again_is_not_decided_again(make_engine: EngineFactory) -> None:
    engine = await make_engine()
    now = utc_now()
    await engine.handle(reading(380, now - MINUTE))
    view = ForecastView(
        at=now - MINUTE,
        usable=True,
        rate_per_h=20.0,
        direction="rising",
        outlooks=(OutlookView("watch", "expected", now + timedelta(hours=1)),),
    )
    item = ForecastInput("g1", now, view)
    assert len(await engine.handle(item)) == 1
    assert await engine.handle(item) == []
    sample = engine.metrics.registry.get_sample_value
    assert sample("floodwatch_alert_inputs_total", {"kind": "forecast"}) == 1
    assert await kinds(engine) == ["prewarning"]


async def test_a_failed_commit_changes_nothing_and_is_decided_again(
    make_engine: EngineFactory, tmp_path: Path
) -> None:
    engine = await make_engine()
    with sqlite3.connect(tmp_path / "state.sqlite") as conn:
        conn.execute(
            "CREATE TRIGGER full BEFORE INSERT ON alert_state "
            "BEGIN SELECT RAISE(ABORT, 'disk full'); END"
        )
    t = utc_now() - 2 * MINUTE
    assert await engine.handle(reading(450, t)) == []
    assert engine.states.get("g1", GaugeState()).active is None
    assert engine.health()[1]["store"] == "unavailable"
    with sqlite3.connect(tmp_path / "state.sqlite") as conn:
        conn.execute("DROP TRIGGER full")
    items = await engine.handle(reading(455, t + MINUTE))
    assert [item.event.kind for item in items] == [EventKind.ESCALATION]
    assert engine.health()[1]["store"] == "up"


async def test_metrics_count_gauges_by_state_at_scrape_time(make_engine: EngineFactory) -> None:
    engine = await make_engine()
    await engine.handle(reading(610, utc_now() - MINUTE))
    await engine.handle(ReadingInput("g2", 1518, utc_now() - MINUTE, QCFlag.SPIKE))
    text = engine.render().decode()
    assert 'floodwatch_alert_gauges_active{severity="danger"} 1.0' in text
    assert 'floodwatch_alert_gauges_active{severity="watch"} 0.0' in text
    assert 'floodwatch_alert_gauges_unhealthy{problem="faulty"} 1.0' in text
    assert 'floodwatch_alert_events_total{kind="escalation"} 1.0' in text


async def test_a_change_decided_while_the_store_failed_is_decided_again(
    make_engine: EngineFactory, tmp_path: Path
) -> None:
    engine = await make_engine()
    with sqlite3.connect(tmp_path / "state.sqlite") as conn:
        conn.execute(
            "CREATE TRIGGER full BEFORE INSERT ON alert_state "
            "BEGIN SELECT RAISE(ABORT, 'disk full'); END"
        )
    await apply_change(engine.store, engine.base_catalog, "g1", "maintenance", "on", "a")
    await engine.refresh()
    assert await kinds(engine) == []
    with sqlite3.connect(tmp_path / "state.sqlite") as conn:
        conn.execute("DROP TRIGGER full")
    await engine.refresh()
    assert await kinds(engine) == ["maintenance_on"]
    assert engine.states["g1"].maintenance


async def test_readings_stored_while_the_engine_was_down_are_decided_on_start(
    tmp_path: Path,
) -> None:
    from floodwatch.models import Reading
    from floodwatch.storage.sqlite import SQLiteStore

    catalog = _catalog(tmp_path / "stations.yaml")
    settings = _settings(tmp_path, catalog)
    start = (utc_now() - timedelta(hours=3)).replace(microsecond=0)
    first = AlertEngine(settings, catalog, AlertStore(settings.state_path))
    await first.prepare()
    await first.handle(reading(300, start))
    await first.stop()
    # While the engine is away the collector stores a rise through both marks.
    readings = SQLiteStore(tmp_path / "readings.sqlite")
    await readings.open()
    await readings.write(
        [
            Reading("g1", start + i * 15 * MINUTE, level)
            for i, level in enumerate([300, 350, 420, 650])
        ]
    )
    second = AlertEngine(settings, catalog, AlertStore(settings.state_path), readings)
    await second.prepare()
    try:
        assert await second.catch_up() == 3  # the reading it had already decided is skipped
        assert await kinds(second) == ["escalation", "escalation"]
        assert await second.catch_up() == 0  # a second pass finds nothing new
        assert second.states["g1"].active == "danger"
    finally:
        await second.stop()
        await readings.close()
