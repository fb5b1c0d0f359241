"""Line protocol encoding, InfluxQL building and /query parsing, as tables of cases."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest

from floodwatch.models import AlertRecord, ForecastPoint, QCFlag, Reading
from floodwatch.storage import alert_lines
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


# --- forecasts --------------------------------------------------------------------------

H = 3600


def point(
    horizon_s: int = 6 * H,
    level: float = 412.25,
    *,
    station_id: str = "gauge-1",
    method: str = "routing",
    **fields: Any,
) -> ForecastPoint:
    values: dict[str, Any] = {
        "station_id": station_id,
        "issued_at": T0,
        "valid_at": T0 + timedelta(seconds=horizon_s),
        "horizon_s": horizon_s,
        "level": level,
        "lower": 400.0,
        "upper": 425.5,
        "method": method,
    }
    return ForecastPoint(**(values | fields))


@pytest.mark.parametrize(
    ("horizon_s", "text"),
    [
        (6 * H, "6"),
        (15 * 60, "0.25"),
        (240 * H, "240"),
        (0, "0"),
        (H, "1"),
        (90 * 60, "1.5"),
        (45 * 60, "0.75"),
        (9, "0.0025"),
        (10 * 60, "0.16666666666666666"),
        (1, "0.0002777777777777778"),
        (-H, "-1"),
        (10_000 * 365 * 24 * H, "87600000"),
    ],
)
def test_format_horizon_h(horizon_s: int, text: str) -> None:
    assert lp.format_horizon_h(horizon_s) == text


def test_format_horizon_h_takes_numpy_integers() -> None:
    np = pytest.importorskip("numpy")

    assert lp.format_horizon_h(np.int64(6 * H)) == "6"


@pytest.mark.parametrize("horizon", [21600.0, 21600.5, "6", None])
def test_format_horizon_h_refuses_what_is_not_whole_seconds(horizon: Any) -> None:
    with pytest.raises(ValueError, match="whole number of seconds"):
        lp.format_horizon_h(horizon)


@pytest.mark.parametrize(
    ("text", "horizon_s"),
    [
        ("6", 6 * H),
        ("0.25", 15 * 60),
        ("240", 240 * H),
        ("0", 0),
        ("6.0", 6 * H),
        ("0.16666666666666666", 10 * 60),
        ("0.0002777777777777778", 1),
        ("-1", -H),
        ("1e1", 10 * H),
    ],
)
def test_parse_horizon_h(text: str, horizon_s: int) -> None:
    assert lp.parse_horizon_h(text) == horizon_s


@pytest.mark.parametrize("text", ["", "six", "6h", "NaN", "inf", "-Infinity"])
def test_parse_horizon_h_refuses_what_is_not_a_number(text: str) -> None:
    with pytest.raises(ValueError, match="horizon_h is not"):
        lp.parse_horizon_h(text)


def test_horizon_h_round_trips_every_second_of_two_days() -> None:
    for horizon_s in range(-H, 48 * H + 1):
        assert lp.parse_horizon_h(lp.format_horizon_h(horizon_s)) == horizon_s


T6_MS = T0_MS + 6 * H * 1000


@pytest.mark.parametrize(
    ("forecast", "line"),
    [
        (
            point(),
            "forecast,station_id=gauge-1,horizon_h=6 level=412.25,lower=400.0,upper=425.5,"
            f'issued={T0_MS}i,method="routing" {T6_MS}',
        ),
        (
            point(15 * 60, 5, lower=-1, upper=1e-05, method="trend"),
            "forecast,station_id=gauge-1,horizon_h=0.25 level=5.0,lower=-1.0,upper=1e-05,"
            f'issued={T0_MS}i,method="trend" {T0_MS + 900_000}',
        ),
        (
            point(240 * H, valid_at=T0 + timedelta(milliseconds=7)),
            "forecast,station_id=gauge-1,horizon_h=240 level=412.25,lower=400.0,upper=425.5,"
            f'issued={T0_MS}i,method="routing" {T0_MS + 7}',
        ),
        (
            point(station_id="a b,c=d"),
            r"forecast,station_id=a\ b\,c\=d,horizon_h=6 level=412.25,lower=400.0,"
            f'upper=425.5,issued={T0_MS}i,method="routing" {T6_MS}',
        ),
        (
            point(method='say "hi" \\ bye'),
            "forecast,station_id=gauge-1,horizon_h=6 level=412.25,lower=400.0,upper=425.5,"
            f'issued={T0_MS}i,method="say \\"hi\\" \\\\ bye" {T6_MS}',
        ),
        (
            point(issued_at=T0.astimezone(timezone(timedelta(hours=5, minutes=30)))),
            "forecast,station_id=gauge-1,horizon_h=6 level=412.25,lower=400.0,upper=425.5,"
            f'issued={T0_MS}i,method="routing" {T6_MS}',
        ),
    ],
    ids=[
        "6 h",
        "0.25 h, int level",
        "240 h, ms valid time",
        "escaped station",
        "quoted method",
        "issued with offset",
    ],
)
def test_encode_forecast(forecast: ForecastPoint, line: str) -> None:
    assert lp.encode_forecast(forecast) == line


@pytest.mark.parametrize("name", ["level", "lower", "upper"])
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_forecast_values_are_refused(name: str, value: float) -> None:
    fields: dict[str, Any] = {name: value}
    bad = point(**fields)

    with pytest.raises(ValueError, match=f"{name} must be a finite number"):
        lp.encode_forecast(bad)
    with pytest.raises(
        ValueError, match=f"'gauge-1' horizon 21600 s .*: {name} must be a finite number"
    ):
        lp.check_forecast(bad)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"horizon_s": 21600.5}, "horizon_s must be a whole number of seconds"),
        ({"method": "two\nlines"}, "method must not contain a line break"),
        ({"method": "carriage\rreturn"}, "method must not contain a line break"),
    ],
)
def test_other_invalid_forecasts_are_refused(fields: dict[str, Any], message: str) -> None:
    bad = point(**fields)

    with pytest.raises(ValueError, match=message):
        lp.encode_forecast(bad)
    with pytest.raises(ValueError, match=message):
        lp.check_forecast(bad)


def test_check_forecast_passes_a_good_point() -> None:
    lp.check_forecast(point())


def test_encode_forecasts_joins_lines_with_a_final_newline() -> None:
    body = lp.encode_forecasts([point(H), point(2 * H)])

    assert body.decode().splitlines() == [
        lp.encode_forecast(point(H)),
        lp.encode_forecast(point(2 * H)),
    ]
    assert body.endswith(b"\n")
    assert lp.encode_forecasts([]) == b""


def test_encode_forecasts_names_the_bad_point() -> None:
    with pytest.raises(
        ValueError,
        match=r"forecast 'gauge-7' horizon 3600 s valid at 2024-03-01T13:00:00\+00:00: upper",
    ):
        lp.encode_forecasts([point(), point(H, station_id="gauge-7", upper=math.nan)])


def test_encode_forecasts_names_a_bad_station() -> None:
    with pytest.raises(ValueError, match=r"forecast 'bad\\n' .*line break"):
        lp.encode_forecasts([point(station_id="bad\n")])


def test_forecast_range_query() -> None:
    query = lp.forecast_range_query("o'brien", T0, T0 + timedelta(hours=1, microseconds=1))

    assert query == (
        'SELECT "horizon_h", "level", "lower", "upper", "issued", "method" FROM "forecast"'
        f" WHERE \"station_id\" = 'o\\'brien' AND time >= {T0_MS}ms"
        f" AND time < {T0_MS + 3_600_001}ms ORDER BY time ASC"
    )


@pytest.mark.parametrize(
    ("horizon_s", "clause"),
    [(6 * H, "'6'"), (15 * 60, "'0.25'"), (240 * H, "'240'")],
)
def test_forecast_range_query_of_one_horizon(horizon_s: int, clause: str) -> None:
    query = lp.forecast_range_query("gauge-1", T0, T0 + timedelta(hours=1), horizon_s)

    assert f'WHERE "station_id" = \'gauge-1\' AND "horizon_h" = {clause} AND time >=' in query


def test_latest_issue_query() -> None:
    assert lp.latest_issue_query("o'brien") == (
        'SELECT MAX("issued") FROM "forecast" WHERE "station_id" = \'o\\\'brien\''
    )


def test_forecast_run_query() -> None:
    assert lp.forecast_run_query("gauge-1", T0_MS) == (
        'SELECT "horizon_h", "level", "lower", "upper", "issued", "method" FROM "forecast"'
        f' WHERE "station_id" = \'gauge-1\' AND "issued" = {T0_MS}'
    )


FORECAST_COLUMNS = ["time", "horizon_h", "level", "lower", "upper", "issued", "method"]

# What influxd 1.6.7 answered to forecast_range_query with epoch=ms (a whole-number float
# arrives as a JSON integer).
FORECAST_RESPONSE: dict[str, Any] = {
    "results": [
        {
            "statement_id": 0,
            "series": [
                {
                    "name": "forecast",
                    "columns": FORECAST_COLUMNS,
                    "values": [
                        [T0_MS + 900_000, "0.25", 412.25, 400, 425.5, T0_MS, "routing"],
                        [T6_MS, "6", 5, 400, 425.5, T0_MS, "trend"],
                    ],
                }
            ],
        }
    ]
}

FORECAST_POINTS = [point(15 * 60), point(6 * H, 5.0, method="trend")]


def test_parse_forecasts_of_a_real_shaped_response() -> None:
    got = lp.parse_forecasts(FORECAST_RESPONSE, "gauge-1")

    assert got == FORECAST_POINTS
    assert all(isinstance(p.lower, float) and isinstance(p.level, float) for p in got)
    assert all(p.valid_at.tzinfo is UTC and p.issued_at.tzinfo is UTC for p in got)


def test_parse_forecasts_takes_the_horizon_and_station_from_tags() -> None:
    response = {
        "results": [
            {
                "series": [
                    {
                        "name": "forecast",
                        "tags": {"station_id": "from-tags", "horizon_h": "0.25"},
                        "columns": ["time", "level", "lower", "upper", "issued", "method"],
                        "values": [[T0_MS + 900_000, 412.25, 400, 425.5, T0_MS, "routing"]],
                    }
                ]
            }
        ]
    }

    assert lp.parse_forecasts(response, "default") == [point(15 * 60, station_id="from-tags")]


def test_points_missing_a_forecast_field_are_skipped() -> None:
    response = {
        "results": [
            {
                "series": [
                    {
                        "columns": [
                            "time",
                            "horizon_h",
                            "level",
                            "lower",
                            "upper",
                            "issued",
                            "method",
                        ],
                        "values": [
                            [T0_MS, "1", 1.0, None, 2.0, T0_MS, "trend"],
                            [T0_MS, None, 1.0, 0.0, 2.0, T0_MS, "trend"],
                            [T0_MS, "1", 1.0, 0.0, 2.0, T0_MS, None],
                        ],
                    }
                ]
            }
        ]
    }

    assert lp.parse_forecasts(response, "gauge-1") == []


def test_a_horizon_tag_that_is_not_a_number_is_a_response_error() -> None:
    response = {
        "results": [
            {
                "series": [
                    {
                        "columns": [
                            "time",
                            "horizon_h",
                            "level",
                            "lower",
                            "upper",
                            "issued",
                            "method",
                        ],
                        "values": [[T0_MS, "six", 1.0, 0.0, 2.0, T0_MS, "trend"]],
                    }
                ]
            }
        ]
    }

    with pytest.raises(lp.InfluxResponseError, match="horizon_h is not a number"):
        lp.parse_forecasts(response, "gauge-1")


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        (
            {
                "results": [
                    {
                        "statement_id": 0,
                        "series": [
                            {
                                "name": "forecast",
                                "columns": ["time", "max"],
                                "values": [[T0_MS + 900_000, T0_MS]],
                            }
                        ],
                    }
                ]
            },
            T0_MS,
        ),
        ({"results": [{"statement_id": 0}]}, None),
    ],
    ids=["some", "none"],
)
def test_parse_max(response: dict[str, Any], expected: int | None) -> None:
    assert lp.parse_max(response) == expected


@pytest.mark.parametrize(
    "response",
    [
        {"results": [{"statement_id": 0, "error": "database not found: x"}]},
        {"error": "error parsing query: found EOF"},
    ],
)
def test_errors_in_a_forecast_response_raise(response: dict[str, Any]) -> None:
    with pytest.raises(lp.InfluxResponseError):
        lp.parse_forecasts(response, "gauge-1")
    with pytest.raises(lp.InfluxResponseError):
        lp.parse_max(response)


@pytest.mark.parametrize("horizon_s", [0, 15 * 60, 10 * 60, 6 * H, 240 * H])
def test_encoded_forecast_parsed_back_is_the_same_point(horizon_s: int) -> None:
    # What influxd would echo for the line we send, tag and field for field.
    original = point(horizon_s, 1e-05)
    series_key, field_set, timestamp = lp.encode_forecast(original).split(" ")
    tags = dict(item.split("=") for item in series_key.split(",")[1:])
    fields = dict(item.split("=") for item in field_set.split(","))
    row = [
        int(timestamp),
        tags["horizon_h"],
        *(float(fields[name]) for name in ("level", "lower", "upper")),
        int(fields["issued"].removesuffix("i")),
        fields["method"].strip('"'),
    ]
    response = {"results": [{"series": [{"columns": FORECAST_COLUMNS, "values": [row]}]}]}

    assert lp.parse_forecasts(response, original.station_id) == [original]


# --- alert events -----------------------------------------------------------------------


def alert(**fields: Any) -> AlertRecord:
    values: dict[str, Any] = {
        "event_id": "gauge-1:escalation:ii:1709294400000",
        "station_id": "gauge-1",
        "at": T0,
        "kind": "escalation",
        "severity": "danger",
        "title": "Gauge 1: mark II reached",
        "text": 'Water at "mark II" \\ 630 cm',
        "level": 631.5,
        "threshold": 630.0,
        "threshold_key": "ii",
    }
    values.update(fields)
    return AlertRecord(**values)


@pytest.mark.parametrize(
    ("record", "line"),
    [
        (
            alert(),
            "alert,station_id=gauge-1,kind=escalation,severity=danger"
            ' event_id="gauge-1:escalation:ii:1709294400000",title="Gauge 1: mark II reached",'
            'text="Water at \\"mark II\\" \\\\ 630 cm",level=631.5,threshold=630.0,'
            f'threshold_key="ii" {T0_MS}',
        ),
        (
            alert(kind="offline", severity=None, level=None, threshold=None, threshold_key=None),
            "alert,station_id=gauge-1,kind=offline,severity=none"
            ' event_id="gauge-1:escalation:ii:1709294400000",title="Gauge 1: mark II reached",'
            f'text="Water at \\"mark II\\" \\\\ 630 cm" {T0_MS}',
        ),
        (
            alert(station_id="a b,c", title="", text="", at=T0 + timedelta(milliseconds=7)),
            r"alert,station_id=a\ b\,c,kind=escalation,severity=danger"
            ' event_id="gauge-1:escalation:ii:1709294400000",title="",text="",level=631.5,'
            f'threshold=630.0,threshold_key="ii" {T0_MS + 7}',
        ),
    ],
    ids=["full", "gauge health", "escaped tag, empty texts, ms"],
)
def test_encode_alert(record: AlertRecord, line: str) -> None:
    assert alert_lines.encode_alert(record) == line


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"level": math.nan}, "level must be a finite number"),
        ({"threshold": math.inf}, "threshold must be a finite number"),
        ({"text": "two\nlines"}, "text must not contain a line break"),
        ({"title": "carriage\rreturn"}, "title must not contain a line break"),
        ({"kind": ""}, "tag value must not be empty"),
        ({"station_id": "bad\n"}, "tag value must not contain a line break"),
    ],
)
def test_alerts_line_protocol_cannot_carry_are_refused(
    fields: dict[str, Any], message: str
) -> None:
    bad = alert(**fields)
    with pytest.raises(ValueError, match=message):
        alert_lines.check_alert(bad)
    with pytest.raises(ValueError, match=r"alert event 'gauge-1:escalation:ii:\d+'"):
        alert_lines.encode_alerts([alert(), bad])


def test_encode_alerts_joins_lines_with_a_final_newline() -> None:
    second = alert(event_id="x", at=T0 + timedelta(minutes=1))
    body = alert_lines.encode_alerts([alert(), second])

    assert body.decode().split("\n") == [
        alert_lines.encode_alert(alert()),
        alert_lines.encode_alert(second),
        "",
    ]
    assert alert_lines.encode_alerts([]) == b""


def test_alert_range_query() -> None:
    end = T0 + timedelta(hours=1)
    columns = (
        '"station_id", "kind", "severity", "event_id", "title", "text", "level", "threshold",'
        ' "threshold_key"'
    )
    assert alert_lines.alert_range_query(None, T0, end) == (
        f'SELECT {columns} FROM "alert" WHERE time >= {T0_MS}ms AND time < {T0_MS + 3600000}ms'
        " ORDER BY time ASC"
    )
    assert alert_lines.alert_range_query("o'brien", T0, end) == (
        f'SELECT {columns} FROM "alert" WHERE "station_id" = \'o\\\'brien\' AND'
        f" time >= {T0_MS}ms AND time < {T0_MS + 3600000}ms ORDER BY time ASC"
    )


def test_parse_alerts_reads_tags_as_columns_and_orders_by_time_then_id() -> None:
    columns = ["time", *alert_lines.ALERT_TAGS, *alert_lines.ALERT_FIELDS]
    document = {
        "results": [
            {
                "series": [
                    {
                        "name": "alert",
                        "columns": columns,
                        "values": [
                            [T0_MS + 1, "g", "offline", "none", "b", "t", "x", None, None, None],
                            [T0_MS, "g", "escalation", "danger", "z", "T", "X", 5, 4.5, "ii"],
                            [T0_MS, "g", "prewarning", "watch", "a", "", "", 1.0, 2.0, "i"],
                            [T0_MS, "g", "escalation", "danger", None, "", "", 1, 1, "i"],
                        ],
                    }
                ]
            }
        ]
    }

    got = alert_lines.parse_alerts(document)

    assert [(r.event_id, r.at_ms) for r in got] == [("a", T0_MS), ("z", T0_MS), ("b", T0_MS + 1)]
    assert got[1] == AlertRecord("z", "g", T0, "escalation", "danger", "T", "X", 5.0, 4.5, "ii")
    assert got[2].severity is None
    assert got[2].level is None


def test_parse_alerts_raises_on_an_error_response() -> None:
    with pytest.raises(lp.InfluxResponseError, match="database not found"):
        alert_lines.parse_alerts({"results": [{"error": "database not found: x"}]})


# --- batch reads ------------------------------------------------------------------------

READING_SELECT = 'SELECT "level", "qc", "seq", "battery_v", "rssi_dbm" FROM "water_level"'
FORECAST_SELECT = (
    'SELECT "horizon_h", "level", "lower", "upper", "issued", "method" FROM "forecast"'
)


@pytest.mark.parametrize(
    ("station_id", "literal"),
    [
        ("gauge-1", "'gauge-1'"),
        ("o'brien", "'o\\'brien'"),
        ("back\\slash", "'back\\\\slash'"),
        ("trailing\\", "'trailing\\\\'"),
        ('double"quote', "'double\"quote'"),
        ("semi; DROP DATABASE x", "'semi; DROP DATABASE x'"),
        ("x' OR '1'='1", "'x\\' OR \\'1\\'=\\'1'"),
    ],
)
def test_batch_queries_escape_station_ids(station_id: str, literal: str) -> None:
    assert lp.latest_each_query([station_id]) == (
        f'{READING_SELECT} WHERE ("station" = {literal})'
        ' GROUP BY "station" ORDER BY time DESC LIMIT 1'
    )
    assert lp.latest_issue_each_query([station_id]) == (
        f'SELECT MAX("issued") FROM "forecast" WHERE ("station_id" = {literal})'
        ' GROUP BY "station_id"'
    )
    assert lp.forecast_runs_query({station_id: T0_MS}) == (
        f'{FORECAST_SELECT} WHERE "issued" = {T0_MS} AND ("station_id" = {literal})'
        ' GROUP BY "station_id"'
    )


def test_latest_each_query_names_every_station() -> None:
    assert lp.latest_each_query(["gauge", "gauge-1"]) == (
        f"{READING_SELECT} WHERE (\"station\" = 'gauge' OR \"station\" = 'gauge-1')"
        ' GROUP BY "station" ORDER BY time DESC LIMIT 1'
    )


def test_forecast_runs_query_has_a_statement_per_issue_time() -> None:
    query = lp.forecast_runs_query({"c": T0_MS + 1, "a": T0_MS, "b": T0_MS + 1})

    assert query.split("; ") == [
        f'{FORECAST_SELECT} WHERE "issued" = {T0_MS} AND ("station_id" = \'a\')'
        ' GROUP BY "station_id"',
        f'{FORECAST_SELECT} WHERE "issued" = {T0_MS + 1}'
        ' AND ("station_id" = \'b\' OR "station_id" = \'c\') GROUP BY "station_id"',
    ]


@pytest.mark.parametrize(
    ("stations", "statements"),
    [(1, 1), (lp.BATCH_STATIONS, 1), (lp.BATCH_STATIONS + 1, 2), (2 * lp.BATCH_STATIONS + 1, 3)],
)
def test_batch_queries_split_into_statements_of_bounded_size(
    stations: int, statements: int
) -> None:
    ids = [f"gauge-{n:05d}" for n in range(stations)]
    for query in (
        lp.latest_each_query(ids),
        lp.latest_issue_each_query(ids),
        lp.forecast_runs_query(dict.fromkeys(ids, T0_MS)),
    ):
        parts = query.split("; ")
        assert len(parts) == statements
        assert all(part.startswith("SELECT ") for part in parts)
        assert all(f"'{sid}'" in query for sid in ids)


@pytest.mark.parametrize(
    "build",
    [lp.latest_each_query, lp.latest_issue_each_query, lambda ids: lp.forecast_runs_query({})],
    ids=["latest_each", "latest_issue_each", "forecast_runs"],
)
def test_batch_queries_need_a_station(build: Any) -> None:
    with pytest.raises(ValueError, match="at least one station"):
        build([])


def _statement(statement_id: int, *series: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = {"statement_id": statement_id}
    if series:
        result["series"] = list(series)
    return {"results": [result]}


READING_COLUMNS = ["time", "level", "qc", "seq", "battery_v", "rssi_dbm"]

# What influxd 1.6.7 answered to latest_each_query over two statements (chunked=true: one
# document a statement), the second station with readings, a third without.
LATEST_EACH_RESPONSE = [
    _statement(
        0,
        {
            "name": "water_level",
            "tags": {"station": "gauge-1"},
            "columns": READING_COLUMNS,
            "values": [[T0_MS + 60_000, 2, 5, 3, None, None]],
        },
    ),
    _statement(
        1,
        {
            "name": "water_level",
            "tags": {"station": "o'b"},
            "columns": READING_COLUMNS,
            "values": [[T0_MS, 3.5, 0, None, 3.7, -90]],
        },
    ),
    _statement(2),
]


def test_parse_latest_each_of_a_real_shaped_response() -> None:
    assert lp.parse_latest_each(LATEST_EACH_RESPONSE) == {
        "gauge-1": Reading(
            "gauge-1", T0 + timedelta(minutes=1), 2.0, seq=3, qc=QCFlag.SPIKE | QCFlag.JUMP
        ),
        "o'b": Reading("o'b", T0, 3.5, battery_v=3.7, rssi_dbm=-90.0),
    }


def test_parse_latest_each_keeps_the_newest_of_a_station_seen_twice() -> None:
    older = [T0_MS, 1, 0, None, None, None]
    newer = [T0_MS + 1, 2, 0, None, None, None]
    series = {"tags": {"station": "g"}, "columns": READING_COLUMNS}
    response = [_statement(0, series | {"values": [newer]}, series | {"values": [older]})]

    assert lp.parse_latest_each(response) == {
        "g": Reading("g", T0 + timedelta(milliseconds=1), 2.0)
    }


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        (
            [
                _statement(
                    0,
                    {
                        "name": "forecast",
                        "tags": {"station_id": "a"},
                        "columns": ["time", "max"],
                        "values": [[T0_MS + 3_600_000, T0_MS]],
                    },
                    {
                        "name": "forecast",
                        "tags": {"station_id": "back\\slash"},
                        "columns": ["time", "max"],
                        "values": [[T0_MS, T0_MS + 5]],
                    },
                ),
                _statement(1),
            ],
            {"a": T0_MS, "back\\slash": T0_MS + 5},
        ),
        ([_statement(0)], {}),
    ],
    ids=["two stations", "none"],
)
def test_parse_max_each(response: list[dict[str, Any]], expected: dict[str, int]) -> None:
    assert lp.parse_max_each(response) == expected


def _run_series(station_id: str, *rows: list[Any]) -> dict[str, Any]:
    return {
        "name": "forecast",
        "tags": {"station_id": station_id},
        "columns": FORECAST_COLUMNS,
        "values": list(rows),
    }


def test_parse_forecast_runs_sorts_each_run_and_drops_other_issue_times() -> None:
    response = [
        _statement(
            0,
            _run_series(
                "a",
                [T6_MS, "6", 5, 400, 425.5, T0_MS, "trend"],
                [T0_MS + 900_000, "0.25", 412.25, 400, 425.5, T0_MS, "routing"],
                [T0_MS + 1, "0.25", 1, 0, 2, T0_MS - 1, "trend"],  # an older run's point
            ),
            _run_series("not-asked", [T6_MS, "6", 5, 400, 425.5, T0_MS, "trend"]),
        ),
        _statement(1, _run_series("o'b", [T6_MS, "6", 5, 400, 425.5, T0_MS, "trend"])),
    ]

    got = lp.parse_forecast_runs(response, {"a": T0_MS, "o'b": T0_MS, "quiet": T0_MS})

    assert got == {
        "a": [point(15 * 60, station_id="a"), point(6 * H, 5.0, station_id="a", method="trend")],
        "o'b": [point(6 * H, 5.0, station_id="o'b", method="trend")],
    }


@pytest.mark.parametrize(
    "response",
    [
        [_statement(0), {"results": [{"statement_id": 1, "error": "database not found: x"}]}],
        [{"error": "error parsing query: found EOF"}],
    ],
    ids=["second statement failed", "request failed"],
)
def test_errors_in_a_batch_response_raise(response: list[dict[str, Any]]) -> None:
    with pytest.raises(lp.InfluxResponseError):
        lp.parse_latest_each(response)
    with pytest.raises(lp.InfluxResponseError):
        lp.parse_max_each(response)
    with pytest.raises(lp.InfluxResponseError):
        lp.parse_forecast_runs(response, {"a": T0_MS})
