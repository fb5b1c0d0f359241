"""The synthetic demo flood: a wave that travels and attenuates down the demo chain,
crosses the demo ladders, and is the same every time for the same seed."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta, timezone

import pytest

from floodwatch.catalog import Catalog, load_catalog
from floodwatch.replay_csv import ReplayRow
from floodwatch.settings import CATALOG_DIR
from floodwatch.synthetic import (
    DEMO_CHAIN,
    DEMO_START,
    STEP,
    WaveGauge,
    pulse,
    synthetic_flood,
    wave_level,
)


@pytest.fixture(scope="module")
def demo() -> Catalog:
    return load_catalog(CATALOG_DIR / "demo.yaml")


@pytest.fixture(scope="module")
def rows() -> list[ReplayRow]:
    return synthetic_flood()


def _series(rows: list[ReplayRow], station_id: str) -> list[ReplayRow]:
    return [row for row in rows if row.station_id == station_id]


def _crest(rows: list[ReplayRow], station_id: str) -> ReplayRow:
    return max(_series(rows, station_id), key=lambda row: row.level)


def test_chain_matches_the_demo_catalog(demo: Catalog) -> None:
    assert [gauge.station_id for gauge in DEMO_CHAIN] == list(demo)
    for upper, lower in itertools.pairwise(DEMO_CHAIN):
        assert demo[lower.station_id].upstream == (upper.station_id,)


def test_wave_travels_downstream(rows: list[ReplayRow]) -> None:
    crest_times = [_crest(rows, gauge.station_id).ts for gauge in DEMO_CHAIN]
    assert crest_times == sorted(crest_times)
    assert len(set(crest_times)) == len(crest_times)


def test_wave_attenuates_and_spreads_downstream(rows: list[ReplayRow]) -> None:
    rises = [_crest(rows, g.station_id).level - g.base for g in DEMO_CHAIN]
    assert rises == sorted(rises, reverse=True)

    def samples_above_half(gauge: WaveGauge) -> int:
        half = gauge.base + gauge.rise / 2
        return sum(1 for row in _series(rows, gauge.station_id) if row.level > half)

    widths = [samples_above_half(gauge) for gauge in DEMO_CHAIN]
    assert widths == sorted(widths)


def test_wave_crosses_every_watch_and_warning_and_some_danger(
    demo: Catalog, rows: list[ReplayRow]
) -> None:
    dangers = 0
    for station in demo.values():
        crest = _crest(rows, station.id).level
        ladder = {level.severity: level.value for level in station.levels}
        assert crest > ladder["watch"] + station.clear_margin, station.id
        assert crest > ladder["warning"] + station.clear_margin, station.id
        dangers += crest > ladder["danger"] + station.clear_margin
    assert dangers >= 1


def test_water_starts_and_ends_below_watch_level(demo: Catalog, rows: list[ReplayRow]) -> None:
    # Before the storm and after the recession every gauge is quiet, so alerts also clear.
    for station in demo.values():
        series = _series(rows, station.id)
        quiet = station.levels[0].value - station.clear_margin
        assert series[0].level < quiet, station.id
        assert series[-1].level < quiet, station.id


def test_rows_are_15_minute_utc_and_time_ordered(rows: list[ReplayRow]) -> None:
    assert len(rows) == 72 * 4 * len(DEMO_CHAIN)
    assert rows[0].ts == DEMO_START
    assert all(row.ts.tzinfo is UTC for row in rows)
    assert all(a.ts <= b.ts for a, b in itertools.pairwise(rows))
    times = sorted({row.ts for row in rows})
    assert {b - a for a, b in itertools.pairwise(times)} == {STEP}


def test_the_wave_is_physically_plausible_for_qc(demo: Catalog, rows: list[ReplayRow]) -> None:
    for station in demo.values():
        series = _series(rows, station.id)
        steps = [abs(b.level - a.level) for a, b in itertools.pairwise(series)]
        assert max(steps) / (STEP / timedelta(hours=1)) < station.max_jump_per_hour
        longest_repeat = max(_runs(series))
        assert longest_repeat * STEP < timedelta(hours=station.qc.flatline_hours)


def _runs(series: list[ReplayRow]) -> list[int]:
    runs = [1]
    for a, b in itertools.pairwise(series):
        runs.append(runs[-1] + 1 if a.level == b.level else 1)
    return runs


def test_deterministic_for_a_seed() -> None:
    assert synthetic_flood(seed=7) == synthetic_flood(seed=7)
    assert synthetic_flood(seed=7) != synthetic_flood(seed=8)


def test_without_noise_it_is_the_smooth_wave() -> None:
    gauge = DEMO_CHAIN[0]
    rows = synthetic_flood([gauge], noise=0.0, duration=timedelta(hours=24))
    expected = [round(wave_level(gauge, i * STEP), 1) for i in range(24 * 4)]
    assert [row.level for row in rows] == expected
    crest = max(rows, key=lambda row: row.level)
    assert crest.ts == DEMO_START + gauge.arrival + gauge.time_to_peak
    assert crest.level == gauge.base + gauge.rise


def test_start_may_have_any_offset_but_must_be_aware() -> None:
    local = datetime(2024, 3, 1, 1, tzinfo=timezone(timedelta(hours=1)))
    assert synthetic_flood(start=local)[0].ts == DEMO_START
    with pytest.raises(ValueError, match="timezone-aware"):
        synthetic_flood(start=datetime(2024, 3, 1))  # noqa: DTZ001


def test_pulse_shape() -> None:
    assert pulse(-1.0, 3.0) == 0.0
    assert pulse(0.0, 3.0) == 0.0
    assert pulse(1.0, 3.0) == 1.0
    # The recession is slower than the rise, as on a real hydrograph.
    assert pulse(1.5, 3.0) > pulse(0.5, 3.0)
