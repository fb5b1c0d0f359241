"""Table tests for collector.decode: every rejection reason, and what accepted payloads give."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

import pytest

from collector.decode import DecodeLimits, Rejection, RejectReason, decode
from floodwatch.catalog import Catalog, parse_catalog
from floodwatch.models import QCFlag, Reading
from floodwatch.settings import Settings
from floodwatch.topics import INVALID_STATION

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
EPOCH_NOW = int(NOW.timestamp())
LIMITS = DecodeLimits(
    max_payload_bytes=4096, max_future=timedelta(minutes=5), max_age=timedelta(days=30)
)
TOPIC = "floodwatch/gauges/mannheim-neckar/level"


def _station(station_id: str, **extra: object) -> dict[str, object]:
    return {
        "id": station_id,
        "names": {"en": station_id},
        "river": {"en": "Neckar"},
        "lat": 49.5,
        "lon": 8.5,
        "unit": "cm",
        **extra,
    }


CATALOG: Catalog = parse_catalog(
    {
        "stations": [
            _station("mannheim-neckar", valid_range={"min": -50, "max": 1200}),
            _station("lauffen", maintenance=True),
        ]
    }
)


@dataclass(frozen=True)
class Bad:
    payload: bytes
    reason: RejectReason
    topic: str = TOPIC


def _obj(ts: str) -> bytes:
    return b'{"ts": "' + ts.encode() + b'", "level": 300}'


REJECTIONS: dict[str, Bad] = {
    # topic
    "topic uppercase id": Bad(b"300", RejectReason.BAD_TOPIC, "floodwatch/gauges/Mannheim/level"),
    "topic wrong shape": Bad(b"300", RejectReason.BAD_TOPIC, "floodwatch/gauges/mannheim-neckar"),
    "topic wrong suffix": Bad(
        b"300", RejectReason.BAD_TOPIC, "floodwatch/gauges/mannheim-neckar/flow"
    ),
    "topic id too long": Bad(b"300", RejectReason.BAD_TOPIC, f"floodwatch/gauges/{'a' * 65}/level"),
    "topic empty id": Bad(b"300", RejectReason.BAD_TOPIC, "floodwatch/gauges//level"),
    "unknown station": Bad(b"300", RejectReason.UNKNOWN_STATION, "floodwatch/gauges/nowhere/level"),
    # size comes before parsing: an oversized payload of garbage is too_large, not not_utf8
    "oversized": Bad(b'{"level": 300, "pad": "' + b"x" * 4096 + b'"}', RejectReason.TOO_LARGE),
    "oversized garbage": Bad(b"\xff" * 5000, RejectReason.TOO_LARGE),
    # bytes and JSON
    "not utf-8": Bad(b"\xff\xfe", RejectReason.NOT_UTF8),
    "utf-8 cut mid-character": Bad(b'{"level": 300, "note": "\xd0"}', RejectReason.NOT_UTF8),
    "empty": Bad(b"", RejectReason.MALFORMED_JSON),
    "truncated object": Bad(b'{"level": 300', RejectReason.MALFORMED_JSON),
    "trailing garbage": Bad(b"300 cm", RejectReason.MALFORMED_JSON),
    "single quotes": Bad(b"{'level': 300}", RejectReason.MALFORMED_JSON),
    "deeply nested and unclosed": Bad(b"[" * 3000, RejectReason.MALFORMED_JSON),
    "deeply nested, broken at the bottom": Bad(
        b"[" * 1500 + b"1," + b"]" * 1500, RejectReason.MALFORMED_JSON
    ),
    # valid JSON, but no reading is nested: beyond orjson's 1,024 levels and Python's limit
    "deeply nested arrays": Bad(b"[" * 1500 + b"]" * 1500, RejectReason.BAD_SCHEMA),
    "deeply nested level": Bad(
        b'{"level": ' + b"[" * 1500 + b"]" * 1500 + b"}", RejectReason.BAD_SCHEMA
    ),
    # schema
    "level as string": Bad(b'{"level": "12"}', RejectReason.BAD_SCHEMA),
    "level as boolean": Bad(b'{"level": true}', RejectReason.BAD_SCHEMA),
    "level null": Bad(b'{"level": null}', RejectReason.BAD_SCHEMA),
    "level missing": Bad(b'{"ts": "2026-11-22T09:59:00Z"}', RejectReason.BAD_SCHEMA),
    "level as array": Bad(b'{"level": [300]}', RejectReason.BAD_SCHEMA),
    "empty array": Bad(b"[]", RejectReason.BAD_SCHEMA),
    "bare string": Bad(b'"300"', RejectReason.BAD_SCHEMA),
    "bare true": Bad(b"true", RejectReason.BAD_SCHEMA),
    "bare null": Bad(b"null", RejectReason.BAD_SCHEMA),
    "seq as float": Bad(b'{"level": 300, "seq": 1.5}', RejectReason.BAD_SCHEMA),
    "seq as string": Bad(b'{"level": 300, "seq": "7"}', RejectReason.BAD_SCHEMA),
    "seq as boolean": Bad(b'{"level": 300, "seq": false}', RejectReason.BAD_SCHEMA),
    "seq beyond 64 bits": Bad(
        b'{"level": 300, "seq": 9223372036854775808}', RejectReason.BAD_SCHEMA
    ),
    "battery as string": Bad(b'{"level": 300, "battery_v": "3.7"}', RejectReason.BAD_SCHEMA),
    "rssi as boolean": Bad(b'{"level": 300, "rssi_dbm": true}', RejectReason.BAD_SCHEMA),
    # non-finite numbers: orjson refuses these, they must not come out as malformed_json
    "level NaN": Bad(b'{"level": NaN}', RejectReason.NOT_FINITE),
    "level Infinity": Bad(b'{"level": Infinity}', RejectReason.NOT_FINITE),
    "level -Infinity": Bad(b'{"level": -Infinity}', RejectReason.NOT_FINITE),
    "bare nan": Bad(b"nan", RejectReason.NOT_FINITE),
    "bare NaN": Bad(b"NaN", RejectReason.NOT_FINITE),
    "bare -inf": Bad(b" -inf\n", RejectReason.NOT_FINITE),
    "bare 1e400": Bad(b"1e400", RejectReason.NOT_FINITE),
    "level 1e400": Bad(b'{"level": 1e400}', RejectReason.NOT_FINITE),
    "level huge integer": Bad(b'{"level": 1' + b"0" * 400 + b"}", RejectReason.NOT_FINITE),
    "battery NaN": Bad(b'{"level": 300, "battery_v": NaN}', RejectReason.NOT_FINITE),
    "epoch ts -1e400": Bad(b'{"ts": -1e400, "level": 300}', RejectReason.NOT_FINITE),
    # timestamps
    "ts naive": Bad(_obj("2026-11-22T10:00:00"), RejectReason.BAD_TIMESTAMP),
    "ts date only": Bad(_obj("2026-11-22"), RejectReason.BAD_TIMESTAMP),
    "ts garbage": Bad(_obj("garbage"), RejectReason.BAD_TIMESTAMP),
    "ts empty string": Bad(_obj(""), RejectReason.BAD_TIMESTAMP),
    "ts boolean": Bad(b'{"ts": true, "level": 300}', RejectReason.BAD_TIMESTAMP),
    "ts object": Bad(b'{"ts": {"s": 1}, "level": 300}', RejectReason.BAD_TIMESTAMP),
    "ts epoch milliseconds": Bad(
        f'{{"ts": {EPOCH_NOW * 1000}, "level": 300}}'.encode(), RejectReason.BAD_TIMESTAMP
    ),
    "ts future beyond tolerance": Bad(_obj("2026-11-22T10:05:01Z"), RejectReason.IN_FUTURE),
    "ts future by offset": Bad(_obj("2026-11-22T13:10:00+03:00"), RejectReason.IN_FUTURE),
    "epoch ts an hour ahead": Bad(
        f'{{"ts": {EPOCH_NOW + 3600}, "level": 300}}'.encode(), RejectReason.IN_FUTURE
    ),
    "ts too old": Bad(_obj("2026-10-23T09:59:59Z"), RejectReason.TOO_OLD),
    # valid RFC 3339, but beyond year 9999 / before year 1 once in UTC (an unset clock)
    "ts past year 9999 in UTC": Bad(_obj("9999-12-31T23:00:00-01:00"), RejectReason.BAD_TIMESTAMP),
    "ts before year 1 in UTC": Bad(_obj("0001-01-01T00:00:00+03:00"), RejectReason.BAD_TIMESTAMP),
    "ts year 9999 in UTC": Bad(_obj("9999-12-31T23:59:59Z"), RejectReason.IN_FUTURE),
    "leap second not at a minute's end": Bad(
        _obj("2026-11-22T09:59:61Z"), RejectReason.BAD_TIMESTAMP
    ),
    "leap second without offset": Bad(_obj("2026-11-22T09:59:60"), RejectReason.BAD_TIMESTAMP),
    "epoch ts zero": Bad(b'{"ts": 0, "level": 300}', RejectReason.TOO_OLD),
    # range (mannheim-neckar: -50 .. 1200 cm)
    "level above range": Bad(b"1200.5", RejectReason.OUT_OF_RANGE),
    "level below range": Bad(b'{"level": -51}', RejectReason.OUT_OF_RANGE),
    "sensor max value": Bad(b'{"level": 65535}', RejectReason.OUT_OF_RANGE),
}


@pytest.mark.parametrize("case", REJECTIONS.values(), ids=REJECTIONS.keys())
def test_rejections(case: Bad) -> None:
    result = decode(case.topic, case.payload, NOW, CATALOG, LIMITS)
    assert isinstance(result, Rejection), result
    assert result.reason is case.reason, result.detail
    assert result.detail
    assert len(result.detail) <= 160


def test_every_reject_reason_has_a_case_and_a_description() -> None:
    covered = {case.reason for case in REJECTIONS.values()}
    # internal_error is the collector guard's, for a message whose handling raised
    assert covered == set(RejectReason) - {RejectReason.INTERNAL_ERROR}
    for reason in RejectReason:
        assert reason.description


def test_rejection_names_the_station_only_when_the_topic_is_valid() -> None:
    bad_topic = decode("floodwatch/gauges/X/level", b"1", NOW, CATALOG, LIMITS)
    bad_payload = decode(TOPIC, b"[]", NOW, CATALOG, LIMITS)
    assert isinstance(bad_topic, Rejection)
    assert isinstance(bad_payload, Rejection)
    assert bad_topic.station_id is None
    assert bad_topic.topic_station == INVALID_STATION
    assert bad_payload.station_id == "mannheim-neckar"
    assert bad_payload.topic_station == "mannheim-neckar"


@pytest.mark.parametrize(
    ("topic", "payload"),
    [
        (TOPIC, b'{"level": "' + b"\x1b[31m" * 200 + b'"}'),
        (TOPIC, b"\x00\x01" * 500),
        (TOPIC, b'{"ts": "' + b"9" * 2000 + b'", "level": 1}'),
        ("floodwatch/gauges/" + "\n" * 500 + "/level", b"1"),
    ],
    ids=["escape codes", "binary", "long ts", "long topic"],
)
def test_detail_is_short_and_escaped(topic: str, payload: bytes) -> None:
    result = decode(topic, payload, NOW, CATALOG, LIMITS)
    assert isinstance(result, Rejection)
    assert len(result.detail) <= 160
    assert result.detail.isprintable()


@dataclass(frozen=True)
class Good:
    payload: bytes
    ts: datetime
    level: float
    seq: int | None = None
    battery_v: float | None = None
    rssi_dbm: float | None = None
    topic: str = TOPIC
    qc: QCFlag = QCFlag.NONE


ACCEPTED: dict[str, Good] = {
    "full object with Z": Good(
        b'{"ts": "2026-11-22T09:45:00Z", "level": 317, "seq": 42, '
        b'"battery_v": 3.71, "rssi_dbm": -87}',
        datetime(2026, 11, 22, 9, 45, tzinfo=UTC),
        317.0,
        seq=42,
        battery_v=3.71,
        rssi_dbm=-87.0,
    ),
    "numeric offset converted to UTC": Good(
        b'{"ts": "2026-11-22T12:45:00+03:00", "level": 317.5}',
        datetime(2026, 11, 22, 9, 45, tzinfo=UTC),
        317.5,
    ),
    "negative offset": Good(
        b'{"ts": "2026-11-22T04:45:00.250-05:00", "level": 1}',
        datetime(2026, 11, 22, 9, 45, 0, 250000, tzinfo=UTC),
        1.0,
    ),
    "lower-case t and z (RFC 3339 allows them)": Good(
        b'{"ts": "2026-11-22t09:45:00z", "level": 1}',
        datetime(2026, 11, 22, 9, 45, tzinfo=UTC),
        1.0,
    ),
    "epoch seconds int": Good(
        f'{{"ts": {EPOCH_NOW - 60}, "level": 300}}'.encode(),
        NOW - timedelta(minutes=1),
        300.0,
    ),
    "epoch seconds float": Good(
        f'{{"ts": {EPOCH_NOW - 0.5}, "level": 300}}'.encode(),
        NOW - timedelta(seconds=0.5),
        300.0,
    ),
    "ts absent uses receipt time": Good(b'{"level": 300}', NOW, 300.0),
    # RFC 3339 leap second: kept a microsecond before the next minute, in order
    "leap second": Good(
        _obj("2026-11-22T09:59:60Z"), datetime(2026, 11, 22, 9, 59, 59, 999999, tzinfo=UTC), 300.0
    ),
    "leap second with fraction and offset": Good(
        _obj("2026-11-22t12:59:60.5+03:00"),
        datetime(2026, 11, 22, 9, 59, 59, 999999, tzinfo=UTC),
        300.0,
    ),
    "null optional fields are absent": Good(
        b'{"ts": null, "level": 300, "seq": null, "battery_v": null, "rssi_dbm": null}',
        NOW,
        300.0,
    ),
    "unknown keys ignored": Good(
        b'{"level": 300, "firmware": "2.1", "extra": {"a": [1, 2]}}', NOW, 300.0
    ),
    "bare number": Good(b"123.4", NOW, 123.4),
    "bare integer with whitespace": Good(b"  300\r\n", NOW, 300.0),
    "negative level": Good(b"-12.5", NOW, -12.5),
    "future just inside tolerance": Good(
        _obj("2026-11-22T10:05:00Z"), NOW + timedelta(minutes=5), 300.0
    ),
    "old just inside max age": Good(_obj("2026-10-23T10:00:00Z"), NOW - timedelta(days=30), 300.0),
    "range upper bound inclusive": Good(b"1200", NOW, 1200.0),
    "range lower bound inclusive": Good(b'{"level": -50}', NOW, -50.0),
    "maintenance station flagged, still accepted": Good(
        b'{"level": 300}',
        NOW,
        300.0,
        topic="floodwatch/gauges/lauffen/level",
        qc=QCFlag.MAINTENANCE,
    ),
}


@pytest.mark.parametrize("case", ACCEPTED.values(), ids=ACCEPTED.keys())
def test_accepted(case: Good) -> None:
    result = decode(case.topic, case.payload, NOW, CATALOG, LIMITS)
    assert isinstance(result, Reading), result
    assert result.station_id == case.topic.split("/")[2]
    assert result.ts == case.ts
    assert result.ts.tzinfo is UTC
    assert result.level == case.level
    assert isinstance(result.level, float)
    assert result.seq == case.seq
    assert result.battery_v == case.battery_v
    assert result.rssi_dbm == case.rssi_dbm
    assert result.qc == case.qc
    assert result.received_at == NOW


def test_receipt_time_in_another_zone_is_normalised_for_ts() -> None:
    local = NOW.astimezone(timezone(timedelta(hours=9)))
    result = decode(TOPIC, b"300", local, CATALOG, LIMITS)
    assert isinstance(result, Reading)
    assert result.ts == NOW
    assert result.ts.tzinfo is UTC


def test_naive_receipt_time_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        decode(TOPIC, b"300", NOW.replace(tzinfo=None), CATALOG, LIMITS)


def test_limits_from_settings() -> None:
    settings = Settings(max_payload_bytes=512, max_future_s=60, max_age_s=3600)
    assert DecodeLimits.from_settings(settings) == DecodeLimits(
        max_payload_bytes=512, max_future=timedelta(seconds=60), max_age=timedelta(hours=1)
    )
