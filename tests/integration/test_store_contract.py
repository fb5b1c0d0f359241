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
from floodwatch.models import QCFlag, Reading
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
