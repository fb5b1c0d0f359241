"""The ReadingStore contract, run against every store: embedded SQLite and a real influxd."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from floodwatch.errors import StoreRejected
from floodwatch.models import AlertRecord, ForecastPoint, QCFlag, Reading
from floodwatch.storage.base import ReadingStore
from floodwatch.storage.sqlite import SQLiteStore
from tests.harness.influx import opened_influx_store

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def reading(
    minutes: float = 0, level: float = 1.0, station_id: str = "gauge-1", **fields: Any
) -> Reading:
    return Reading(station_id, T0 + timedelta(minutes=minutes), level, **fields)


@pytest_asyncio.fixture(
    params=[
        pytest.param("sqlite"),
        pytest.param("influx", marks=pytest.mark.integration),
    ]
)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ReadingStore]:
    if request.param == "sqlite":
        # A missing parent directory is part of the contract: the store creates it.
        sqlite = SQLiteStore(tmp_path / "not-yet" / "readings.sqlite")
        await sqlite.open()
        try:
            yield sqlite
        finally:
            await sqlite.close()
    else:
        server = request.getfixturevalue("influx_server")
        async with opened_influx_store(server) as influx:
            yield influx


async def test_round_trip_preserves_every_field(store: ReadingStore) -> None:
    written = [
        reading(0, 123.25),
        reading(1, -4.5, seq=0, battery_v=0.0, rssi_dbm=0.0),
        reading(2, 7.0, seq=17, battery_v=3.71, rssi_dbm=-87.5, qc=QCFlag.SPIKE),
        reading(3, 1e-3, seq=2**40, qc=QCFlag.SPIKE | QCFlag.JUMP),
        reading(4, 1e6, battery_v=12.1, qc=QCFlag.FLATLINE | QCFlag.MAINTENANCE),
        Reading("gauge-1", T0 + timedelta(minutes=5, milliseconds=123), 5.0, rssi_dbm=-120.0),
    ]
    await store.write(written)

    got = await store.query("gauge-1", T0, T0 + HOUR)

    assert got == written
    assert [r.qc for r in got] == [r.qc for r in written]
    assert all(isinstance(r.level, float) and isinstance(r.qc, QCFlag) for r in got)
    assert got[1].seq == 0
    assert got[1].battery_v == 0.0
    assert got[3].qc.names() == ["spike", "jump"]


async def test_timestamps_are_kept_to_the_millisecond(store: ReadingStore) -> None:
    exact = Reading("gauge-1", T0 + timedelta(milliseconds=1), 1.0)
    await store.write([exact])

    (got,) = await store.query("gauge-1", T0, T0 + HOUR)

    assert got.ts == T0 + timedelta(milliseconds=1)
    assert got.ts_ms == exact.ts_ms


async def test_same_station_and_timestamp_overwrites(store: ReadingStore) -> None:
    await store.write([reading(0, 1.0, seq=1, battery_v=3.6)])
    await store.write([reading(0, 2.5, seq=2, battery_v=3.5, qc=QCFlag.JUMP)])

    assert await store.count("gauge-1") == 1
    assert await store.query("gauge-1", T0, T0 + HOUR) == [
        reading(0, 2.5, seq=2, battery_v=3.5, qc=QCFlag.JUMP)
    ]


async def test_overwrite_keeps_optional_fields_the_rewrite_lacks(store: ReadingStore) -> None:
    # InfluxDB merges the fields of a rewritten point; SQLite is held to the same rule.
    await store.write([reading(0, 1.0, seq=7, battery_v=3.6, rssi_dbm=-80.0, qc=QCFlag.SPIKE)])
    await store.write([reading(0, 1.5)])

    assert await store.query("gauge-1", T0, T0 + HOUR) == [
        reading(0, 1.5, seq=7, battery_v=3.6, rssi_dbm=-80.0, qc=QCFlag.NONE)
    ]


async def test_a_batch_repeating_a_timestamp_keeps_the_last(store: ReadingStore) -> None:
    await store.write([reading(0, 1.0), reading(1, 5.0), reading(0, 3.0)])

    assert await store.count("gauge-1") == 2
    assert [r.level for r in await store.query("gauge-1", T0, T0 + HOUR)] == [3.0, 5.0]


@pytest.mark.parametrize(
    ("start", "end", "expected_minutes"),
    [
        (T0 + timedelta(minutes=1), T0 + timedelta(minutes=3), [1, 2]),
        (T0, T0 + timedelta(minutes=4), [0, 1, 2, 3]),
        (
            T0 + timedelta(minutes=1, microseconds=1),
            T0 + timedelta(minutes=3, microseconds=1),
            [2, 3],
        ),
        (T0 + timedelta(minutes=2), T0 + timedelta(minutes=2), []),
        (T0 + timedelta(minutes=3), T0 + timedelta(minutes=1), []),
        (T0 - HOUR, T0, []),
        (T0 + timedelta(minutes=3, milliseconds=1), T0 + HOUR, []),
    ],
    ids=["inside", "all", "sub-ms bounds", "empty range", "reversed", "before", "after"],
)
async def test_query_range_is_start_inclusive_end_exclusive(
    store: ReadingStore, start: datetime, end: datetime, expected_minutes: list[int]
) -> None:
    await store.write([reading(minutes, float(minutes)) for minutes in range(4)])

    got = await store.query("gauge-1", start, end)

    assert got == [reading(minutes, float(minutes)) for minutes in expected_minutes]


async def test_query_bounds_may_have_any_utc_offset(store: ReadingStore) -> None:
    await store.write([reading(minutes, float(minutes)) for minutes in range(4)])
    plus_five = timezone(timedelta(hours=5))

    got = await store.query(
        "gauge-1",
        (T0 + timedelta(minutes=1)).astimezone(plus_five),
        T0.astimezone(plus_five) + HOUR,
    )

    assert [r.level for r in got] == [1.0, 2.0, 3.0]


async def test_naive_query_bounds_are_refused(store: ReadingStore) -> None:
    naive = datetime(2024, 3, 1, 12)  # noqa: DTZ001 - the point of the test
    with pytest.raises(ValueError, match="timezone-aware"):
        await store.query("gauge-1", naive, naive + HOUR)


@pytest.mark.parametrize(
    ("limit", "expected_minutes"), [(1, [4]), (3, [2, 3, 4]), (10, [0, 1, 2, 3, 4]), (0, [])]
)
async def test_latest_returns_the_newest_oldest_first(
    store: ReadingStore, limit: int, expected_minutes: list[int]
) -> None:
    # Written out of order so that insertion order cannot pass for time order.
    await store.write([reading(minutes, float(minutes)) for minutes in (3, 0, 4, 1, 2)])

    got = await store.latest("gauge-1", limit)

    assert [r.level for r in got] == [float(minutes) for minutes in expected_minutes]


async def test_latest_defaults_to_one(store: ReadingStore) -> None:
    await store.write([reading(0, 1.0), reading(1, 2.0)])

    assert await store.latest("gauge-1") == [reading(1, 2.0)]


async def test_stations_are_isolated(store: ReadingStore) -> None:
    # Ids that are prefixes of each other catch a filter that matches too loosely.
    stations = {"gauge": 1, "gauge-1": 2, "gauge-10": 3}
    await store.write(
        [
            reading(minutes, float(count), station_id=station)
            for station, count in stations.items()
            for minutes in range(count)
        ]
    )

    for station, count in stations.items():
        assert await store.count(station) == count
        got = await store.query(station, T0, T0 + HOUR)
        assert {r.station_id for r in got} == {station}
        assert len(got) == count
        assert [r.station_id for r in await store.latest(station, 10)] == [station] * count


@pytest.mark.parametrize(
    "station_id", ["with space", "com,ma", "equals=sign", "o'brien", 'double"quote', "back\\slash"]
)
async def test_station_ids_that_need_escaping_round_trip(
    store: ReadingStore, station_id: str
) -> None:
    # Real ids are [a-z0-9-]; these check that the escaping is right anyway.
    odd = reading(0, 9.0, station_id=station_id)
    await store.write([odd, reading(0, 1.0, station_id="plain")])

    assert await store.query(station_id, T0, T0 + HOUR) == [odd]
    assert await store.latest(station_id) == [odd]
    assert await store.count(station_id) == 1
    assert await store.count("plain") == 1


async def test_unknown_station_is_empty(store: ReadingStore) -> None:
    await store.write([reading(0)])

    assert await store.query("nobody", T0 - HOUR, T0 + HOUR) == []
    assert await store.latest("nobody", 5) == []
    assert await store.count("nobody") == 0


async def test_empty_write_is_a_no_op(store: ReadingStore) -> None:
    await store.write([])

    assert await store.count("gauge-1") == 0


async def test_large_batch_in_one_write(store: ReadingStore) -> None:
    written = [
        Reading("gauge-1", T0 + timedelta(seconds=n), 100.0 + n / 100, seq=n, qc=QCFlag(n % 16))
        for n in range(20_000)
    ]
    await store.write(written)

    assert await store.count("gauge-1") == 20_000
    assert await store.query("gauge-1", T0, T0 + 24 * HOUR) == written
    assert await store.latest("gauge-1", 2) == written[-2:]


async def test_results_are_timezone_aware_utc(store: ReadingStore) -> None:
    kolkata = timezone(timedelta(hours=5, minutes=30))
    new_york = timezone(timedelta(hours=-4))
    await store.write(
        [
            Reading("gauge-1", T0.astimezone(kolkata), 1.0),
            Reading("gauge-1", (T0 + timedelta(minutes=1)).astimezone(new_york), 2.0),
        ]
    )

    got = await store.query("gauge-1", T0, T0 + HOUR)

    assert [r.ts for r in got] == [T0, T0 + timedelta(minutes=1)]
    for r in got:
        assert r.ts.tzinfo is not None
        assert r.ts.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "bad",
    [
        {"level": math.nan},
        {"level": math.inf},
        {"level": 1.0, "battery_v": math.nan},
        {"level": 1.0, "rssi_dbm": -math.inf},
    ],
    ids=["nan level", "inf level", "nan battery", "-inf rssi"],
)
async def test_non_finite_values_are_rejected_whole(
    store: ReadingStore, bad: dict[str, Any]
) -> None:
    with pytest.raises(StoreRejected, match="finite"):
        await store.write([reading(0, 1.0), Reading("gauge-1", T0 + HOUR, **bad)])

    assert await store.count("gauge-1") == 0


async def test_ping_answers(store: ReadingStore) -> None:
    await store.ping()


async def test_description_names_the_store(store: ReadingStore) -> None:
    assert store.description.split()[0] in {"SQLite", "InfluxDB"}


# --- forecasts --------------------------------------------------------------------------

H = 3600  # seconds in an hour, for horizons


def forecast(
    valid_minutes: float = 0,
    horizon_s: int = 6 * H,
    level: float = 1.0,
    *,
    issued: datetime | None = None,
    station_id: str = "gauge-1",
    method: str = "trend",
) -> ForecastPoint:
    valid_at = T0 + timedelta(minutes=valid_minutes)
    return ForecastPoint(
        station_id=station_id,
        issued_at=issued if issued is not None else valid_at - timedelta(seconds=horizon_s),
        valid_at=valid_at,
        horizon_s=horizon_s,
        level=level,
        lower=level - 0.5,
        upper=level + 0.5,
        method=method,
    )


def run(
    issued: datetime, horizons_s: list[int], station_id: str = "gauge-1"
) -> list[ForecastPoint]:
    """One forecast run: a point per horizon, valid at issued + horizon."""
    return [
        ForecastPoint(
            station_id=station_id,
            issued_at=issued,
            valid_at=issued + timedelta(seconds=horizon),
            horizon_s=horizon,
            level=100.0 + horizon / H,
            lower=90.0,
            upper=110.0 + horizon / H,
            method="routing",
        )
        for horizon in horizons_s
    ]


def by_valid_then_horizon(points: list[ForecastPoint]) -> list[ForecastPoint]:
    return sorted(points, key=lambda point: (point.valid_at, point.horizon_s))


async def test_forecast_round_trip_preserves_every_field(store: ReadingStore) -> None:
    written = [
        forecast(0, 6 * H, 412.5, method="routing"),
        forecast(0, 15 * 60, -4.25),
        forecast(1, 10 * 60, 1e-3),  # 1/6 h: a horizon_h tag with many digits
        forecast(2, 240 * H, 1e6, method='quote " and back\\slash'),
        ForecastPoint(
            "gauge-1",
            T0 - HOUR + timedelta(milliseconds=7),
            T0 + timedelta(minutes=3, milliseconds=123),
            0,
            0.0,
            0.0,
            0.0,
            "trend",
        ),
    ]
    await store.write_forecasts(written)

    got = await store.query_forecasts("gauge-1", T0, T0 + HOUR)

    assert got == by_valid_then_horizon(written)
    for point in got:
        assert all(isinstance(value, float) for value in (point.level, point.lower, point.upper))
        assert isinstance(point.horizon_s, int)
        assert point.valid_at.utcoffset() == timedelta(0)
        assert point.issued_at.utcoffset() == timedelta(0)


async def test_forecast_rewrite_of_the_same_key_keeps_one_point_with_the_new_values(
    store: ReadingStore,
) -> None:
    older = forecast(60, 6 * H, 300.0, issued=T0 - 5 * HOUR, method="trend")
    newer = ForecastPoint(
        "gauge-1", T0, older.valid_at, 6 * H, 320.0, 310.0, 335.0, method="routing"
    )
    other_horizon = forecast(60, 3 * H, 305.0, issued=T0 - 2 * HOUR)
    await store.write_forecasts([older, other_horizon])
    await store.write_forecasts([newer])

    got = await store.query_forecasts("gauge-1", T0, T0 + 2 * HOUR)

    assert got == [other_horizon, newer]
    assert await store.query_forecasts("gauge-1", T0, T0 + 2 * HOUR, horizon_s=6 * H) == [newer]


async def test_forecast_batch_repeating_a_key_keeps_the_last(store: ReadingStore) -> None:
    await store.write_forecasts([forecast(0, level=1.0), forecast(1), forecast(0, level=3.0)])

    got = await store.query_forecasts("gauge-1", T0, T0 + HOUR)

    assert [(p.valid_at, p.level) for p in got] == [
        (T0, 3.0),
        (T0 + timedelta(minutes=1), 1.0),
    ]


@pytest.mark.parametrize(
    ("horizon_s", "expected"),
    [(15 * 60, [15 * 60] * 3), (6 * H, [6 * H] * 3), (240 * H, [240 * H] * 3), (2 * H, [])],
    ids=["0.25 h", "6 h", "240 h", "no such horizon"],
)
async def test_forecast_query_filters_by_horizon(
    store: ReadingStore, horizon_s: int, expected: list[int]
) -> None:
    await store.write_forecasts(
        [
            forecast(minutes, horizon)
            for minutes in range(3)
            for horizon in (15 * 60, 6 * H, 240 * H)
        ]
    )

    got = await store.query_forecasts("gauge-1", T0, T0 + HOUR, horizon_s=horizon_s)

    assert [p.horizon_s for p in got] == expected
    assert [p.valid_at for p in got] == [T0 + timedelta(minutes=n) for n in range(len(expected))]


async def test_forecasts_are_ordered_by_valid_time_then_horizon(store: ReadingStore) -> None:
    # As text the tags sort "0.25" < "12" < "240" < "6": numeric order must win.
    horizons = [6 * H, 240 * H, 15 * 60, 12 * H]
    written = [forecast(minutes, horizon) for horizon in horizons for minutes in (2, 0, 1)]
    await store.write_forecasts(written)

    got = await store.query_forecasts("gauge-1", T0, T0 + HOUR)

    assert [(p.valid_at, p.horizon_s) for p in got] == [
        (T0 + timedelta(minutes=minutes), horizon)
        for minutes in range(3)
        for horizon in sorted(horizons)
    ]


@pytest.mark.parametrize(
    ("start", "end", "expected_minutes"),
    [
        (T0 + timedelta(minutes=1), T0 + timedelta(minutes=3), [1, 2]),
        (T0, T0 + timedelta(minutes=4), [0, 1, 2, 3]),
        (
            T0 + timedelta(minutes=1, microseconds=1),
            T0 + timedelta(minutes=3, microseconds=1),
            [2, 3],
        ),
        (T0 + timedelta(minutes=2), T0 + timedelta(minutes=2), []),
        (T0 + timedelta(minutes=3), T0 + timedelta(minutes=1), []),
        (T0 - HOUR, T0, []),
        (T0 + timedelta(minutes=3, milliseconds=1), T0 + HOUR, []),
    ],
    ids=["inside", "all", "sub-ms bounds", "empty range", "reversed", "before", "after"],
)
async def test_forecast_range_is_start_inclusive_end_exclusive(
    store: ReadingStore, start: datetime, end: datetime, expected_minutes: list[int]
) -> None:
    await store.write_forecasts([forecast(minutes, level=float(minutes)) for minutes in range(4)])

    got = await store.query_forecasts("gauge-1", start, end)

    assert got == [forecast(minutes, level=float(minutes)) for minutes in expected_minutes]


async def test_forecast_query_refuses_naive_bounds(store: ReadingStore) -> None:
    naive = datetime(2024, 3, 1, 12)  # noqa: DTZ001 - the point of the test
    with pytest.raises(ValueError, match="timezone-aware"):
        await store.query_forecasts("gauge-1", naive, naive + HOUR)


async def test_latest_forecast_run_is_the_newest_issue_only(store: ReadingStore) -> None:
    horizons = [6 * H, 15 * 60, 240 * H, 12 * H, H]
    oldest, newest, middle = (
        run(T0, horizons),
        run(T0 + 2 * HOUR, horizons),
        run(T0 + HOUR, horizons),
    )
    # Write order differs from issue order: the newest issue wins, not the last write.
    await store.write_forecasts(newest)
    await store.write_forecasts(oldest + middle)

    got = await store.latest_forecast_run("gauge-1")

    assert got == sorted(newest, key=lambda point: point.horizon_s)


async def test_latest_forecast_run_after_a_run_overwrote_older_points(
    store: ReadingStore,
) -> None:
    first = run(T0, [H, 2 * H])
    # Same horizons and valid times as the first run, so its points are overwritten.
    second = [
        ForecastPoint(
            p.station_id,
            T0 + timedelta(minutes=30),
            p.valid_at,
            p.horizon_s,
            7.0,
            6.0,
            8.0,
            "trend",
        )
        for p in first
    ]
    await store.write_forecasts(first)
    await store.write_forecasts(second)

    assert await store.latest_forecast_run("gauge-1") == second
    assert await store.query_forecasts("gauge-1", T0, T0 + 3 * HOUR) == second


async def test_latest_forecast_run_of_an_unknown_station_is_empty(store: ReadingStore) -> None:
    await store.write_forecasts(run(T0, [H]))
    await store.write([reading(0, station_id="readings-only")])

    assert await store.latest_forecast_run("nobody") == []
    assert await store.latest_forecast_run("readings-only") == []
    assert await store.query_forecasts("nobody", T0 - HOUR, T0 + 24 * HOUR) == []


async def test_latest_forecast_run_of_an_empty_store_is_empty(store: ReadingStore) -> None:
    assert await store.latest_forecast_run("gauge-1") == []


async def test_forecast_stations_are_isolated(store: ReadingStore) -> None:
    # Ids that are prefixes of each other catch a filter that matches too loosely; each
    # station's newest run is at a different time, so a leaking max(issued) shows.
    issues = {"gauge": T0, "gauge-1": T0 + HOUR, "gauge-10": T0 + 2 * HOUR}
    runs = {station: run(issued, [H, 6 * H], station) for station, issued in issues.items()}
    await store.write_forecasts([point for points in runs.values() for point in points])

    for station, points in runs.items():
        assert await store.latest_forecast_run(station) == points
        got = await store.query_forecasts(station, T0, T0 + 24 * HOUR)
        assert got == by_valid_then_horizon(points)


async def test_forecasts_are_not_readings(store: ReadingStore) -> None:
    await store.write([reading(0, 5.0)])
    await store.write_forecasts([forecast(0, level=9.0), forecast(1, level=9.0)])

    assert await store.count("gauge-1") == 1
    assert await store.query("gauge-1", T0, T0 + HOUR) == [reading(0, 5.0)]
    assert await store.latest("gauge-1", 5) == [reading(0, 5.0)]
    assert [p.level for p in await store.query_forecasts("gauge-1", T0, T0 + HOUR)] == [9.0, 9.0]


@pytest.mark.parametrize(
    "station_id", ["with space", "com,ma", "equals=sign", "o'brien", 'double"quote', "back\\slash"]
)
async def test_forecast_station_ids_that_need_escaping_round_trip(
    store: ReadingStore, station_id: str
) -> None:
    # Real ids are [a-z0-9-]; these check that the escaping is right anyway.
    odd = run(T0, [H], station_id)
    await store.write_forecasts([*odd, *run(T0 + HOUR, [H], "plain")])

    assert await store.query_forecasts(station_id, T0, T0 + 24 * HOUR) == odd
    assert await store.latest_forecast_run(station_id) == odd


async def test_empty_forecast_write_is_a_no_op(store: ReadingStore) -> None:
    await store.write_forecasts([])

    assert await store.latest_forecast_run("gauge-1") == []


async def test_large_forecast_batch_in_one_write(store: ReadingStore) -> None:
    # More than one InfluxDB request's worth of points (5,000 a request).
    written = [
        ForecastPoint(
            "gauge-1", T0, T0 + timedelta(minutes=n), (1 + n % 4) * 15 * 60, n / 8, 0.0, n, "trend"
        )
        for n in range(12_000)
    ]
    await store.write_forecasts(written)

    assert await store.query_forecasts("gauge-1", T0, T0 + 30 * 24 * HOUR) == written
    assert len(await store.latest_forecast_run("gauge-1")) == 12_000


@pytest.mark.parametrize(
    "bad",
    [
        {"level": math.nan},
        {"lower": math.inf},
        {"upper": -math.inf},
        {"horizon_s": 21600.5},
        {"method": "line\nbreak"},
    ],
    ids=["nan level", "inf lower", "-inf upper", "fractional horizon", "line break in method"],
)
async def test_invalid_forecasts_are_rejected_whole(
    store: ReadingStore, bad: dict[str, Any]
) -> None:
    fields: dict[str, Any] = {
        "station_id": "gauge-1",
        "issued_at": T0,
        "valid_at": T0 + HOUR,
        "horizon_s": H,
        "level": 1.0,
        "lower": 0.5,
        "upper": 1.5,
        "method": "trend",
    }
    invalid = ForecastPoint(**(fields | bad))
    name = next(iter(bad))
    with pytest.raises(StoreRejected, match=name):
        await store.write_forecasts([forecast(0), invalid])

    assert await store.query_forecasts("gauge-1", T0 - 24 * HOUR, T0 + 24 * HOUR) == []
    assert await store.latest_forecast_run("gauge-1") == []


async def test_non_finite_forecast_values_are_named_as_such(store: ReadingStore) -> None:
    with pytest.raises(StoreRejected, match="level must be a finite number, got nan"):
        await store.write_forecasts([forecast(0, level=math.nan)])


# --- batch reads: every station's newest reading and forecast run -----------------------

ODD_IDS = ["with space", "com,ma", "equals=sign", "o'brien", 'double"quote', "back\\slash"]


async def per_station(
    store: ReadingStore, station_ids: list[str]
) -> tuple[dict[str, Reading], dict[str, list[ForecastPoint]]]:
    """What the batch reads must equal: the per-station reads, stations without data left out."""
    latest = {sid: got[-1] for sid in station_ids if (got := await store.latest(sid))}
    runs = {sid: run for sid in station_ids if (run := await store.latest_forecast_run(sid))}
    return latest, runs


async def test_latest_each_is_each_stations_newest_reading(store: ReadingStore) -> None:
    # Prefix ids catch a loose filter; "quiet" has no readings, "elsewhere" is not asked.
    await store.write(
        [
            reading(0, 1.0, station_id="gauge"),
            reading(5, 2.0, station_id="gauge", seq=7, battery_v=3.6, qc=QCFlag.SPIKE),
            reading(3, 3.0, station_id="gauge-1", rssi_dbm=-90.0),
            reading(1, 4.0, station_id="gauge-1"),
            reading(9, 5.0, station_id="gauge-10"),
            reading(60, 6.0, station_id="elsewhere"),
        ]
    )
    asked = ["gauge", "gauge-1", "gauge-10", "quiet"]

    got = await store.latest_each(asked)

    assert got == {
        "gauge": reading(5, 2.0, station_id="gauge", seq=7, battery_v=3.6, qc=QCFlag.SPIKE),
        "gauge-1": reading(3, 3.0, station_id="gauge-1", rssi_dbm=-90.0),
        "gauge-10": reading(9, 5.0, station_id="gauge-10"),
    }
    assert got == (await per_station(store, asked))[0]


async def test_latest_forecast_runs_are_each_stations_newest_run(store: ReadingStore) -> None:
    horizons = [6 * H, 15 * 60, H]
    # "gauge-1"'s older run shares its issue time with "gauge"'s newest, and "gauge-10"
    # had a longer run whose points the newer one did not all overwrite.
    written = {
        "gauge": [run(T0 + HOUR, horizons, "gauge")],
        "gauge-1": [run(T0 + HOUR, horizons, "gauge-1"), run(T0 + 2 * HOUR, [H], "gauge-1")],
        "gauge-10": [run(T0, [H, 24 * H], "gauge-10"), run(T0 + HOUR, [H, 2 * H], "gauge-10")],
        "elsewhere": [run(T0 + 3 * HOUR, horizons, "elsewhere")],
    }
    # Newest first: the newest issue wins, not the last write.
    for runs in written.values():
        for points in reversed(runs):
            await store.write_forecasts(points)
    await store.write([reading(0, station_id="readings-only")])
    asked = ["gauge", "gauge-1", "gauge-10", "readings-only", "quiet"]

    got = await store.latest_forecast_runs(asked)

    assert got == {
        "gauge": sorted(written["gauge"][0], key=lambda point: point.horizon_s),
        "gauge-1": written["gauge-1"][1],
        "gauge-10": written["gauge-10"][1],
    }
    assert got == (await per_station(store, asked))[1]


async def test_batch_reads_of_ids_that_need_escaping(store: ReadingStore) -> None:
    await store.write([reading(n, float(n), station_id=sid) for n, sid in enumerate(ODD_IDS)])
    await store.write_forecasts(
        [p for n, sid in enumerate(ODD_IDS) for p in run(T0 + n * HOUR, [H, 2 * H], sid)]
    )
    await store.write([reading(0, station_id="plain")])
    await store.write_forecasts(run(T0, [H], "plain"))

    latest, runs = await per_station(store, ODD_IDS)
    assert set(latest) == set(runs) == set(ODD_IDS)
    assert await store.latest_each(ODD_IDS) == latest
    assert await store.latest_forecast_runs(ODD_IDS) == runs


async def test_batch_reads_of_many_stations(store: ReadingStore) -> None:
    # More stations than one InfluxQL statement takes (100), some without data.
    ids = [f"gauge-{n:04d}" for n in range(1_100)]
    await store.write([reading(n % 50, float(n), station_id=sid) for n, sid in enumerate(ids[:-7])])
    await store.write_forecasts(
        [p for n, sid in enumerate(ids[3:]) for p in run(T0 + (n % 3) * HOUR, [H], sid)]
    )

    latest, runs = await per_station(store, ids)
    assert len(latest) == 1_093
    assert len(runs) == 1_097
    assert await store.latest_each(ids) == latest
    assert await store.latest_forecast_runs(ids) == runs


async def test_batch_reads_of_no_stations_or_an_empty_store(store: ReadingStore) -> None:
    assert await store.latest_each(["gauge-1"]) == {}
    assert await store.latest_forecast_runs(["gauge-1"]) == {}
    await store.write([reading(0)])
    await store.write_forecasts(run(T0, [H]))
    assert await store.latest_each([]) == {}
    assert await store.latest_forecast_runs([]) == {}


# --- alert events -----------------------------------------------------------------------


def alert(
    minutes: float = 0,
    kind: str = "escalation",
    *,
    station_id: str = "gauge-1",
    severity: str | None = "danger",
    **fields: Any,
) -> AlertRecord:
    at = T0 + timedelta(minutes=minutes)
    values: dict[str, Any] = {
        "event_id": f"{station_id}:{kind}:ii:{round(at.timestamp() * 1000)}",
        "station_id": station_id,
        "at": at,
        "kind": kind,
        "severity": severity,
        "title": "Mainz: mark II reached",
        "text": "Rhine at Mainz: 631 cm, rising 4 cm/h. Mark II (630 cm) reached.",
        "level": 631.0,
        "threshold": 630.0,
        "threshold_key": "ii",
    }
    return AlertRecord(**(values | fields))


async def test_alert_event_round_trip_preserves_every_field(store: ReadingStore) -> None:
    written = [
        alert(0),
        alert(1, "offline", severity=None, level=None, threshold=None, threshold_key=None),
        alert(2, "all_clear", severity=None, text='quote " back\\slash, Ока ≥ 3 м', title=""),
        alert(3, "prewarning", severity="watch", at=T0 + timedelta(minutes=3, milliseconds=5)),
    ]
    await store.write_alert_events(written)

    got = await store.query_alert_events("gauge-1", T0, T0 + HOUR)

    assert got == written
    assert got[3].at == T0 + timedelta(minutes=3, milliseconds=5)
    assert all(record.at.tzinfo is not None for record in got)


async def test_an_alert_event_written_twice_is_one_record(store: ReadingStore) -> None:
    # A redelivery after a crash rewrites the same event.
    await store.write_alert_events([alert(0)])
    await store.write_alert_events([alert(0), alert(1, "rapid_rise")])

    got = await store.query_alert_events(None, T0, T0 + HOUR)

    assert got == [alert(0), alert(1, "rapid_rise")]


async def test_alert_events_at_one_time_of_different_kinds_are_kept_apart(
    store: ReadingStore,
) -> None:
    same_time = [alert(0, "escalation"), alert(0, "rapid_rise"), alert(0, "faulty", severity=None)]
    await store.write_alert_events(same_time)

    got = await store.query_alert_events("gauge-1", T0, T0 + HOUR)

    assert sorted(got, key=lambda r: r.event_id) == sorted(same_time, key=lambda r: r.event_id)


async def test_alert_events_by_station_or_all_in_a_half_open_range(store: ReadingStore) -> None:
    events = [alert(m, station_id=s) for m in range(4) for s in ("gauge-1", "gauge-2")]
    await store.write_alert_events(events)
    start, end = T0 + timedelta(minutes=1), T0 + timedelta(minutes=3)

    only_one = await store.query_alert_events("gauge-2", start, end)
    every = await store.query_alert_events(None, start, end)

    assert only_one == [alert(1, station_id="gauge-2"), alert(2, station_id="gauge-2")]
    assert [(r.at, r.station_id) for r in every] == [
        (T0 + timedelta(minutes=m), s) for m in (1, 2) for s in ("gauge-1", "gauge-2")
    ]
    assert await store.query_alert_events("nobody", T0, T0 + HOUR) == []


async def test_alert_events_are_neither_readings_nor_forecasts(store: ReadingStore) -> None:
    await store.write_alert_events([alert(0)])

    assert await store.count("gauge-1") == 0
    assert await store.latest_forecast_run("gauge-1") == []
    assert await store.query_alert_events("gauge-1", T0, T0 + HOUR) == [alert(0)]


async def test_empty_alert_write_is_a_no_op(store: ReadingStore) -> None:
    await store.write_alert_events([])

    assert await store.query_alert_events(None, T0 - HOUR, T0 + HOUR) == []


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"level": math.nan}, "level must be a finite number"),
        ({"threshold": math.inf}, "threshold must be a finite number"),
        ({"text": "two\nlines"}, "text must not contain a line break"),
    ],
)
async def test_invalid_alert_events_are_rejected_whole(
    store: ReadingStore, bad: dict[str, Any], message: str
) -> None:
    with pytest.raises(StoreRejected, match=message):
        await store.write_alert_events([alert(0), alert(1, **bad)])

    assert await store.query_alert_events(None, T0 - HOUR, T0 + HOUR) == []


async def test_alert_query_refuses_naive_bounds(store: ReadingStore) -> None:
    naive = datetime(2024, 3, 1, 12)  # noqa: DTZ001 - the point of the test
    with pytest.raises(ValueError, match="timezone-aware"):
        await store.query_alert_events(None, naive, naive + HOUR)
