"""The forecaster's local state: the in-memory history windows and the learned-model store
(a real SQLite file), and what the station state shows of a published forecast."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from floodwatch.catalog import ForecastSettings, Station, load_catalog
from floodwatch.models import QCFlag, Reading
from floodwatch.settings import CATALOG_DIR
from forecasting.history import History, StationHistory, parse_clean_reading, window_hours
from forecasting.learning import learn_station
from forecasting.model_store import ModelStore, StoredModel, fingerprint
from forecasting.routing import LearnedModel
from forecasting.series import Series
from forecasting.state import parse_forecast, state_horizon

T0 = 1_800_000_000.0
HOUR = 3600.0


# --- history ------------------------------------------------------------------------------


def test_history_folds_out_of_order_and_repeated_readings_lazily() -> None:
    history = StationHistory(window_s=24 * HOUR)
    for t, level in [(T0 + 120, 3.0), (T0, 1.0), (T0 + 60, 2.0), (T0 + 60, 2.5)]:
        history.add(t, level)
    assert len(history) == 4  # still buffered: nothing folded yet
    series = history.series(now=T0 + 180)
    assert series.t.tolist() == [T0, T0 + 60, T0 + 120]
    assert series.level.tolist() == [1.0, 2.5, 3.0]  # the later of two equal times wins
    history.add(T0 + 30, 1.5)
    assert history.series(now=T0 + 180).level.tolist() == [1.0, 1.5, 2.5, 3.0]


def test_history_keeps_only_the_window_before_now() -> None:
    history = StationHistory(window_s=2 * HOUR)
    for minute in range(0, 300, 10):
        history.add(T0 + minute * 60, float(minute))
    series = history.series(now=T0 + 300 * 60)
    assert series.t[0] >= T0 + 300 * 60 - 2 * HOUR
    assert series.t[-1] == T0 + 290 * 60
    assert len(series) == 12  # minutes 180..290
    # Later, with no new readings, the window keeps moving.
    assert len(history.series(now=T0 + 10 * HOUR)) == 0


def test_priming_merges_stored_history_under_live_readings() -> None:
    history = StationHistory(window_s=24 * HOUR)
    history.add(T0 + 60, 99.0)  # arrived over MQTT while the store was being read
    stored = Series.from_pairs([(T0, 1.0), (T0 + 60, 2.0)])
    history.prime(stored)
    assert history.series(now=T0 + 120).level.tolist() == [1.0, 99.0]


def test_history_refuses_unknown_stations() -> None:
    history = History({"gauge-a": 1.0})
    good = parse_clean_reading(_payload())
    assert good is not None
    assert history.add(good)
    other = parse_clean_reading(_payload(station_id="gauge-x"))
    assert other is not None
    assert not history.add(other)
    assert len(history.series("gauge-x", T0)) == 0


def _payload(**changes: Any) -> bytes:
    body = {
        "station_id": "gauge-a",
        "ts": datetime.fromtimestamp(T0, UTC).isoformat(),
        "level": 312.5,
        "qc": [],
        "seq": 7,
    }
    body.update(changes)
    return orjson.dumps(body)


@pytest.mark.parametrize(
    ("payload", "parsed"),
    [
        (_payload(), (T0, 312.5)),
        (_payload(level=300), (T0, 300.0)),
        (_payload(ts="2027-01-15T11:00:00+03:00"), (T0, 312.5)),
        (_payload(qc=["spike"]), None),
        (_payload(level="312"), None),
        (_payload(level=True), None),
        (_payload(ts="2027-01-15T08:00:00"), None),
        (_payload(ts="yesterday"), None),
        (b"312.5", None),
        (b"{not json", None),
        (orjson.dumps({"ts": "2027-01-15T05:00:00Z", "level": 1.0}), None),
    ],
)
def test_clean_reading_payloads(payload: bytes, parsed: tuple[float, float] | None) -> None:
    reading = parse_clean_reading(payload)
    assert (None if reading is None else (reading.t, reading.level)) == parsed


def test_the_collectors_own_payload_parses() -> None:
    from collector.service import reading_payload

    ts = datetime.fromtimestamp(T0, UTC)
    clean = Reading("gauge-a", ts, 312.5, seq=7)
    assert parse_clean_reading(reading_payload(clean)) is not None
    flagged = Reading("gauge-a", ts, 312.5, qc=QCFlag.SPIKE)
    assert parse_clean_reading(reading_payload(flagged)) is None


def test_upstream_gauges_keep_history_as_long_as_their_travel_times() -> None:
    catalog = load_catalog(CATALOG_DIR / "amur.yaml")
    hours = window_hours(catalog, default_h=168)
    # Khabarovsk searches its upstream posts up to 20 days back, plus a two-day slack.
    [upstream, *_] = catalog["amur-khabarovsk"].upstream
    assert catalog["amur-khabarovsk"].forecast.max_travel_h == 480
    assert hours[upstream] == 480 + 48
    # A post no gauge reads from keeps the default (or its longer trend window).
    heads = set(catalog) - {u for s in catalog.values() for u in s.upstream}
    assert all(hours[sid] == max(168, catalog[sid].forecast.trend_window_h) for sid in heads)
    rhine = window_hours(load_catalog(CATALOG_DIR / "rhine.yaml"), default_h=168)
    assert set(rhine.values()) == {168}


# --- model store --------------------------------------------------------------------------


def station(**forecast: Any) -> Station:
    return Station(
        id="gauge-b",
        names={"en": "B"},
        river={"en": "River"},
        lat=50.0,
        lon=8.0,
        unit="cm",
        upstream=("gauge-a",),
        forecast=ForecastSettings(**forecast),
    )


def learned() -> LearnedModel:
    """A real model learned from a synthetic pair of gauges, 3 days at 15 minutes."""
    t = T0 + 900.0 * np.arange(3 * 96)
    up = 200 + 40 * np.sin(t / 20000.0)
    down = 150 + 30 * np.sin((t - 4 * HOUR) / 20000.0)
    model = learn_station(
        station(horizons_h=(1, 2)),
        Series.of(t, down),
        {"gauge-a": Series.of(t, up)},
    )
    assert isinstance(model, LearnedModel), model
    return model


async def test_model_store_round_trip(tmp_path: Path) -> None:
    store = ModelStore(tmp_path / "state" / "state.sqlite")
    await store.open()
    try:
        model = learned()
        when = datetime(2027, 1, 15, 6, 0, tzinfo=UTC)
        await store.save(StoredModel("gauge-b", fingerprint(station()), when, model))
        await store.save(StoredModel("gauge-c", "f", when, None, "only 12 readings"))
        loaded = await store.load("gauge-b")
        assert loaded is not None
        assert loaded.model == model
        assert loaded.learned_at == when
        assert loaded.model.upstream[0].station_id == "gauge-a"
        failed = await store.load("gauge-c")
        assert failed is not None
        assert (failed.model, failed.reason) == (None, "only 12 readings")
        assert await store.load("gauge-z") is None
        assert [r.station_id for r in await store.load_all()] == ["gauge-b", "gauge-c"]
        assert [r.station_id for r in await store.load_all(["gauge-c"])] == ["gauge-c"]
    finally:
        await store.close()
    mode = sqlite3.connect(tmp_path / "state" / "state.sqlite").execute("PRAGMA journal_mode")
    assert mode.fetchone() == ("wal",)


async def test_a_damaged_row_reads_as_stale_not_as_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    store = ModelStore(path)
    await store.open()
    try:
        now = datetime.now(UTC)
        await store.save(StoredModel("gauge-b", fingerprint(station()), now, learned()))
        with sqlite3.connect(path) as conn:
            conn.execute("UPDATE forecast_models SET model = '{\"step_s\": 1}'")
        record = await store.load("gauge-b")
        assert record is not None
        assert record.model is None
        assert not record.is_current(station(), now, timedelta(hours=24))
    finally:
        await store.close()


NOW = datetime(2027, 1, 15, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("learned_under", "age_h", "current"),
    [
        (station(), 1, True),
        (station(), 23.9, True),
        (station(), 24, False),
        (station(travel_h={"gauge-a": 5}), 1, False),
        (station(max_travel_h=12), 1, False),
        (station(horizons_h=(1, 6)), 1, False),
        (station().model_copy(update={"upstream": ()}), 1, False),
        # Names and thresholds do not change what was learned.
        (station().model_copy(update={"names": {"en": "Renamed"}}), 1, True),
    ],
)
def test_a_stored_model_is_current_until_it_ages_or_the_catalog_changes(
    learned_under: Station, age_h: float, current: bool
) -> None:
    record = StoredModel("gauge-b", fingerprint(learned_under), NOW - timedelta(hours=age_h), None)
    assert record.is_current(station(), NOW, timedelta(hours=24)) is current


# --- the forecast in the station state ----------------------------------------------------


def _horizon(hours: float) -> dict[str, Any]:
    return {"horizon_h": hours, "valid_at": "x", "level": hours, "lower": 0, "upper": 1}


@pytest.mark.parametrize(
    ("hours", "chosen"),
    [
        ([1, 2, 3, 6, 9, 12], 6),
        ([1, 3, 9, 12], 3),  # 3 and 9 are equally near: the shorter is the surer
        ([12, 24], 12),
        ([0.25], 0.25),
        ([], None),
    ],
)
def test_the_state_shows_the_6_hour_or_nearest_horizon(
    hours: list[float], chosen: float | None
) -> None:
    shown = state_horizon([_horizon(h) for h in hours])
    assert (shown["horizon_h"] if shown else None) == chosen


def test_a_forecast_summary_becomes_the_states_trend_and_forecast() -> None:
    summary = {
        "station_id": "gauge-a",
        "issued_at": "2027-01-15T05:00:00+00:00",
        "method": "trend",
        "insufficient": None,
        "trend": {"level": 320.0, "rate_per_h": 12.5, "direction": "rising"},
        "horizons": [_horizon(h) for h in (1, 6, 12)],
        "thresholds": [],
        "next": {"key": "watch", "status": "expected", "expected_at": "2027-01-15T12:00:00+00:00"},
    }
    state = parse_forecast(orjson.dumps(summary))
    assert state is not None
    assert state.issued_at == datetime(2027, 1, 15, 5, 0, tzinfo=UTC)
    assert state.trend == summary["trend"]
    assert state.forecast == {
        "issued_at": "2027-01-15T05:00:00+00:00",
        "method": "trend",
        "insufficient": None,
        "next": summary["next"],
        "horizon": _horizon(6),
    }


@pytest.mark.parametrize(
    "payload",
    [
        b"not json",
        b"[]",
        orjson.dumps({"issued_at": "2027-01-15T05:00:00", "horizons": []}),  # no offset
        orjson.dumps({"issued_at": "2027-01-15T05:00:00Z"}),  # no horizons list
        orjson.dumps({"issued_at": "2027-01-15T05:00:00Z", "horizons": [], "trend": 3}),
    ],
)
def test_what_is_not_a_forecast_summary_is_ignored(payload: bytes) -> None:
    assert parse_forecast(payload) is None


def test_fingerprint_ignores_how_numbers_were_written() -> None:
    from floodwatch.catalog import Station
    from forecasting.model_store import fingerprint

    base = {
        "id": "g",
        "names": {"en": "G"},
        "river": {"en": "R"},
        "lat": 0,
        "lon": 0,
        "unit": "cm",
    }
    as_ints = Station.model_validate({**base, "forecast": {"horizons_h": [1, 6], "learn_days": 30}})
    as_floats = Station.model_validate(
        {**base, "forecast": {"horizons_h": [1.0, 6.0], "learn_days": 30.0}}
    )
    changed = Station.model_validate({**base, "forecast": {"horizons_h": [1, 12]}})
    assert fingerprint(as_ints) == fingerprint(as_floats)
    assert fingerprint(as_ints) != fingerprint(changed)
