"""Line protocol encoding, InfluxQL building and /query parsing, as tables of cases."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest

from floodwatch.models import QCFlag, Reading
from floodwatch.storage import line_protocol as lp

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
T0_MS = 1709294400000


# --- tag escaping -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "escaped"),
    [
        ("gauge-1", "gauge-1"),
        ("with space", r"with\ space"),
        ("com,ma", r"com\,ma"),
        ("equals=sign", r"equals\=sign"),
        ("a, b=c", r"a\,\ b\=c"),
        ("o'brien", "o'brien"),
        ('double"quote', 'double"quote'),
        ("back\\slash", "back\\slash"),
        ("Мста-1", "Мста-1"),
    ],
)
def test_escape_tag(value: str, escaped: str) -> None:
    assert lp.escape_tag(value) == escaped


@pytest.mark.parametrize("value", ["", "line\nbreak", "carriage\rreturn", "trailing\\"])
def test_escape_tag_refuses_what_line_protocol_cannot_carry(value: str) -> None:
    with pytest.raises(ValueError, match="tag value"):
        lp.escape_tag(value)


# --- encoding ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reading", "line"),
    [
        (
            Reading("gauge-1", T0, 123.25),
            f"water_level,station=gauge-1 level=123.25,qc=0i {T0_MS}",
        ),
        (
            Reading("gauge-1", T0, 5, seq=0, battery_v=0.0, rssi_dbm=0.0),
            "water_level,station=gauge-1 level=5.0,qc=0i,seq=0i,battery_v=0.0,rssi_dbm=0.0"
            f" {T0_MS}",
        ),
        (
            Reading("gauge-1", T0, -1.5, seq=42, battery_v=3.71, rssi_dbm=-87.5),
            f"water_level,station=gauge-1 level=-1.5,qc=0i,seq=42i,battery_v=3.71,"
            f"rssi_dbm=-87.5 {T0_MS}",
        ),
        (
            Reading("gauge-1", T0, 1.0, rssi_dbm=-90.0),
            f"water_level,station=gauge-1 level=1.0,qc=0i,rssi_dbm=-90.0 {T0_MS}",
        ),
        (
            Reading("gauge-1", T0, 1.0, qc=QCFlag.SPIKE | QCFlag.JUMP),
            f"water_level,station=gauge-1 level=1.0,qc=5i {T0_MS}",
        ),
        (
            Reading("gauge-1", T0, 1.0, qc=QCFlag.FLATLINE | QCFlag.MAINTENANCE),
            f"water_level,station=gauge-1 level=1.0,qc=10i {T0_MS}",
        ),
        (
            Reading("a b,c=d", T0, 1.0),
            rf"water_level,station=a\ b\,c\=d level=1.0,qc=0i {T0_MS}",
        ),
        (
            Reading("gauge-1", T0, 1e-05),
            f"water_level,station=gauge-1 level=1e-05,qc=0i {T0_MS}",
        ),
    ],
    ids=[
        "minimal",
        "zeros are values",
        "all fields",
        "one optional",
        "qc spike+jump",
        "qc flatline+maintenance",
        "escaped station",
        "exponent float",
    ],
)
def test_encode_reading(reading: Reading, line: str) -> None:
    assert lp.encode_reading(reading) == line


@pytest.mark.parametrize(
    ("ts", "expected_ms"),
    [
        (T0, T0_MS),
        (T0 + timedelta(milliseconds=1), T0_MS + 1),
        (T0 + timedelta(milliseconds=999), T0_MS + 999),
        (T0 + timedelta(microseconds=123_400), T0_MS + 123),
        (T0.astimezone(timezone(timedelta(hours=-4))), T0_MS),
        (T0.astimezone(timezone(timedelta(hours=5, minutes=30))), T0_MS),
        (datetime(1970, 1, 1, tzinfo=UTC), 0),
    ],
    ids=["whole second", "1 ms", "999 ms", "sub-ms", "UTC-4", "UTC+5:30", "epoch"],
)
def test_timestamp_is_epoch_milliseconds(ts: datetime, expected_ms: int) -> None:
    line = lp.encode_reading(Reading("gauge-1", ts, 1.0))

    assert line.rsplit(" ", 1)[1] == str(expected_ms)


@pytest.mark.parametrize(
    ("fields", "name"),
    [
        ({"level": math.nan}, "level"),
        ({"level": math.inf}, "level"),
        ({"level": 1.0, "battery_v": math.nan}, "battery_v"),
        ({"level": 1.0, "rssi_dbm": -math.inf}, "rssi_dbm"),
    ],
)
def test_non_finite_fields_are_refused(fields: dict[str, Any], name: str) -> None:
    with pytest.raises(ValueError, match=f"{name} must be a finite number"):
        lp.encode_reading(Reading("gauge-1", T0, **fields))


def test_encode_readings_joins_lines_with_a_final_newline() -> None:
    body = lp.encode_readings([Reading("a", T0, 1.0), Reading("b", T0, 2.0)])

    assert (
        body
        == (
            f"water_level,station=a level=1.0,qc=0i {T0_MS}\n"
            f"water_level,station=b level=2.0,qc=0i {T0_MS}\n"
        ).encode()
    )


def test_encode_readings_of_nothing_is_empty() -> None:
    assert lp.encode_readings([]) == b""


def test_encode_readings_names_the_bad_reading() -> None:
    with pytest.raises(ValueError, match=r"'gauge-7' at 2024-03-01T12:00:00\+00:00: level"):
        lp.encode_readings([Reading("gauge-1", T0, 1.0), Reading("gauge-7", T0, math.nan)])


@pytest.mark.parametrize(
    ("count", "size", "sizes"),
    [(0, 5, []), (1, 5, [1]), (5, 5, [5]), (6, 5, [5, 1]), (12_001, 5000, [5000, 5000, 2001])],
)
def test_chunked(count: int, size: int, sizes: list[int]) -> None:
    items = [Reading("g", T0 + timedelta(seconds=n), 1.0) for n in range(count)]

    chunks = list(lp.chunked(items, size))

    assert [len(chunk) for chunk in chunks] == sizes
    assert [r for chunk in chunks for r in chunk] == items


# --- InfluxQL ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "literal"),
    [("gauge-1", "'gauge-1'"), ("o'brien", r"'o\'brien'"), ("back\\slash", r"'back\\slash'")],
)
def test_quote_string(value: str, literal: str) -> None:
    assert lp.quote_string(value) == literal


@pytest.mark.parametrize(
    ("name", "identifier"),
    [("floodwatch", '"floodwatch"'), ('we"ird', r'"we\"ird"'), ("a\\b", r'"a\\b"')],
)
def test_quote_identifier(name: str, identifier: str) -> None:
    assert lp.quote_identifier(name) == identifier


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (T0, T0_MS),
        (T0 + timedelta(microseconds=1), T0_MS + 1),
        (T0 + timedelta(microseconds=999), T0_MS + 1),
        (T0 + timedelta(microseconds=1000), T0_MS + 1),
        (T0 - timedelta(microseconds=1), T0_MS),
        (T0.astimezone(timezone(timedelta(hours=3))), T0_MS),
        (datetime(1969, 12, 31, 23, 59, 59, 999_500, tzinfo=UTC), 0),
    ],
)
def test_epoch_ms_ceil(moment: datetime, expected: int) -> None:
    assert lp.epoch_ms_ceil(moment) == expected


def test_epoch_ms_ceil_refuses_naive_datetimes() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        lp.epoch_ms_ceil(datetime(2024, 3, 1))  # noqa: DTZ001 - the point of the test


def test_range_query() -> None:
    query = lp.range_query("o'brien", T0, T0 + timedelta(hours=1, microseconds=1))

    assert query == (
        'SELECT "level", "qc", "seq", "battery_v", "rssi_dbm" FROM "water_level"'
        f" WHERE \"station\" = 'o\\'brien' AND time >= {T0_MS}ms"
        f" AND time < {T0_MS + 3_600_001}ms ORDER BY time ASC"
    )


def test_latest_query() -> None:
    assert lp.latest_query("gauge-1", 3).endswith(
        "WHERE \"station\" = 'gauge-1' ORDER BY time DESC LIMIT 3"
    )


def test_count_query() -> None:
    assert lp.count_query("gauge-1") == (
        'SELECT COUNT("level") FROM "water_level" WHERE "station" = \'gauge-1\''
    )


# --- parsing ----------------------------------------------------------------------------

# Shaped like influxd 1.6's answer to `SELECT ... WHERE station = 'gauge-1'` with epoch=ms;
# JSON has no float type, so a whole-number level arrives as an integer.
SELECT_RESPONSE: dict[str, Any] = {
    "results": [
        {
            "statement_id": 0,
            "series": [
                {
                    "name": "water_level",
                    "columns": ["time", "level", "qc", "seq", "battery_v", "rssi_dbm"],
                    "values": [
                        [T0_MS, 123.25, 0, None, None, None],
                        [T0_MS + 60_000, 5, 5, 17, 3.71, -87.5],
                        [T0_MS + 120_000, 1e-05, 8, 0, 0, 0],
                    ],
                }
            ],
        }
    ]
}

SELECT_READINGS = [
    Reading("gauge-1", T0, 123.25),
    Reading(
        "gauge-1",
        T0 + timedelta(minutes=1),
        5.0,
        seq=17,
        battery_v=3.71,
        rssi_dbm=-87.5,
        qc=QCFlag.SPIKE | QCFlag.JUMP,
    ),
    Reading(
        "gauge-1",
        T0 + timedelta(minutes=2),
        1e-05,
        seq=0,
        battery_v=0.0,
        rssi_dbm=0.0,
        qc=QCFlag.MAINTENANCE,
    ),
]


def test_parse_readings_of_a_real_shaped_response() -> None:
    got = lp.parse_readings(SELECT_RESPONSE, "gauge-1")

    assert got == SELECT_READINGS
    assert all(r.ts.tzinfo is UTC for r in got)
    assert all(isinstance(r.level, float) for r in got)
    assert got[1].qc == QCFlag.SPIKE | QCFlag.JUMP
    assert isinstance(got[1].qc, QCFlag)
    assert isinstance(got[2].battery_v, float)


@pytest.mark.parametrize(
    "response",
    [
        {"results": [{"statement_id": 0}]},
        {"results": [{"statement_id": 0, "series": []}]},
        {"results": []},
        {"results": [{"statement_id": 0, "series": [{"columns": ["time", "level"]}]}]},
    ],
    ids=["no series", "empty series list", "no results", "series without values"],
)
def test_parse_readings_of_an_empty_result(response: dict[str, Any]) -> None:
    assert lp.parse_readings(response, "gauge-1") == []


def test_station_comes_from_a_column_or_the_tags_before_the_default() -> None:
    response = {
        "results": [
            {
                "statement_id": 0,
                "series": [
                    {
                        "name": "water_level",
                        "columns": ["time", "level", "station"],
                        "values": [[T0_MS, 1, "from-column"]],
                    },
                    {
                        "name": "water_level",
                        "tags": {"station": "from-tags"},
                        "columns": ["time", "level"],
                        "values": [[T0_MS, 2]],
                    },
                ],
            }
        ]
    }

    got = lp.parse_readings(response, "default")

    assert [(r.station_id, r.level) for r in got] == [("from-column", 1.0), ("from-tags", 2.0)]


def test_points_without_a_level_are_not_readings() -> None:
    response = {
        "results": [
            {
                "series": [
                    {
                        "columns": ["time", "level", "battery_v"],
                        "values": [[T0_MS, None, 3.7], [T0_MS + 1, 2.0, None]],
                    }
                ]
            }
        ]
    }

    assert lp.parse_readings(response, "gauge-1") == [
        Reading("gauge-1", T0 + timedelta(milliseconds=1), 2.0)
    ]


@pytest.mark.parametrize(
    ("response", "message"),
    [
        ({"results": [{"statement_id": 0, "error": "database not found: x"}]}, "database not"),
        ({"error": "error parsing query: found EOF"}, "error parsing query"),
    ],
)
def test_errors_in_a_response_raise(response: dict[str, Any], message: str) -> None:
    with pytest.raises(lp.InfluxResponseError, match=message):
        lp.parse_readings(response, "gauge-1")
    with pytest.raises(lp.InfluxResponseError, match=message):
        lp.parse_count(response)
    with pytest.raises(lp.InfluxResponseError, match=message):
        lp.check_response([response])


def test_decode_body_of_a_chunked_response() -> None:
    first = orjson.dumps(SELECT_RESPONSE)
    second = orjson.dumps({"results": [{"statement_id": 0}]})

    documents = lp.decode_body(first + b"\n" + second + b"\n")

    assert documents == [SELECT_RESPONSE, {"results": [{"statement_id": 0}]}]
    assert lp.parse_readings(documents, "gauge-1") == SELECT_READINGS


def test_decode_body_refuses_non_json() -> None:
    with pytest.raises(lp.InfluxResponseError, match="non-JSON"):
        lp.decode_body(b"<html>502 Bad Gateway</html>")


@pytest.mark.parametrize(
    ("response", "count"),
    [
        (
            {
                "results": [
                    {
                        "statement_id": 0,
                        "series": [
                            {
                                "name": "water_level",
                                "columns": ["time", "count"],
                                "values": [[0, 42]],
                            }
                        ],
                    }
                ]
            },
            42,
        ),
        ({"results": [{"statement_id": 0}]}, 0),
    ],
    ids=["some", "none"],
)
def test_parse_count(response: dict[str, Any], count: int) -> None:
    assert lp.parse_count(response) == count


def test_encoded_then_parsed_back_is_the_same_reading() -> None:
    # What influxd would echo for the line we send, field for field.
    original = SELECT_READINGS[1]
    line = lp.encode_reading(original)
    fields = dict(item.split("=") for item in line.split(" ")[1].split(","))
    values = {k: int(v[:-1]) if v.endswith("i") else float(v) for k, v in fields.items()}
    columns = ["time", *values]
    response = {
        "results": [
            {"series": [{"columns": columns, "values": [[original.ts_ms, *values.values()]]}]}
        ]
    }

    assert lp.parse_readings(response, original.station_id) == [original]
