"""Property-based tests (Hypothesis): decode and the QC take anything a gauge, a broken
firmware or an attacker can send, and answer with a reading or a reason; they never raise.

The examples are derandomized (tests/conftest.py registers the profile), so a run is
repeatable; HYPOTHESIS_PROFILE=explore searches further with fresh randomness.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from collector.decode import DecodeLimits, Rejection, RejectReason, decode
from collector.json_nesting import is_well_formed
from collector.qc import QualityControl
from floodwatch.catalog import Catalog, parse_catalog
from floodwatch.models import QCFlag, Reading

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
LIMITS = DecodeLimits(
    max_payload_bytes=4096, max_future=timedelta(minutes=5), max_age=timedelta(days=30)
)
STATIONS: list[tuple[str, str, dict[str, Any]]] = [
    ("gauge-cm", "cm", {}),
    ("gauge-ft", "ft", {"qc": {"flatline_hours": 1}}),
    ("gauge-m", "m", {"maintenance": True}),
]
CATALOG: Catalog = parse_catalog(
    {
        "stations": [
            {
                "id": sid,
                "names": {"en": sid},
                "river": {"en": "Test"},
                "lat": 50.0,
                "lon": 8.0,
                "unit": unit,
                **extra,
            }
            for sid, unit, extra in STATIONS
        ]
    }
)
TOPICS = [f"floodwatch/gauges/{sid}/level" for sid in CATALOG]

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
offsets = st.timedeltas(
    min_value=timedelta(hours=-23, minutes=-59), max_value=timedelta(hours=23, minutes=59)
)
# Every date datetime can hold, in every offset; the first and last days are drawn on their
# own as well, since only there can an offset push a time out of the years 1-9999.
EDGE_DAYS = (
    st.datetimes(max_value=datetime(1, 1, 2))  # noqa: DTZ001 (naive bounds of naive draws)
    | st.datetimes(min_value=datetime(9999, 12, 30))  # noqa: DTZ001
)
moments = st.builds(
    lambda naive, offset: naive.replace(tzinfo=timezone(offset)),
    st.datetimes() | EDGE_DAYS,
    offsets,
)
near_now = st.builds(
    lambda seconds, offset: (NOW + timedelta(seconds=seconds)).astimezone(timezone(offset)),
    st.floats(min_value=-40 * 86400, max_value=600, allow_nan=False),
    offsets,
)


def timestamp_texts() -> st.SearchStrategy[Any]:
    """Timestamps as gauges write them: RFC 3339 (any date, any offset, leap seconds,
    lower case), epoch numbers of every size, and junk."""
    rfc3339 = (moments | near_now).map(lambda moment: moment.isoformat())
    leap = near_now.map(lambda moment: moment.isoformat().replace(f":{moment:%S}", ":60", 1))
    return (
        rfc3339
        | rfc3339.map(str.lower)
        | leap
        | st.floats(allow_nan=True, allow_infinity=True)
        | st.integers(min_value=-(2**70), max_value=2**70)
        | st.text(max_size=40)
        | json_values
    )


def assert_answered(result: Reading | Rejection) -> None:
    """A reading that is valid in every field, or a rejection with a usable reason."""
    if isinstance(result, Rejection):
        assert result.reason in set(RejectReason) - {RejectReason.INTERNAL_ERROR}
        assert 0 < len(result.detail) <= 200
        assert result.detail.isprintable()
        return
    assert result.ts.tzinfo is UTC
    assert NOW - LIMITS.max_age <= result.ts <= NOW + LIMITS.max_future
    assert math.isfinite(result.level)
    low, high = CATALOG[result.station_id].range
    assert low <= result.level <= high


@given(topic=st.sampled_from(TOPICS) | st.text(max_size=80), payload=st.binary(max_size=600))
def test_decode_answers_any_bytes(topic: str, payload: bytes) -> None:
    assert_answered(decode(topic, payload, NOW, CATALOG, LIMITS))


@given(topic=st.sampled_from(TOPICS), document=json_values)
def test_decode_answers_any_json(topic: str, document: Any) -> None:
    payload = json.dumps(document).encode()
    assert_answered(decode(topic, payload, NOW, CATALOG, LIMITS))


@given(
    topic=st.sampled_from(TOPICS),
    ts=timestamp_texts(),
    level=st.floats() | st.integers(min_value=-(2**70), max_value=2**70),
    extra=st.dictionaries(
        st.sampled_from(["seq", "battery_v", "rssi_dbm", "other"]), json_values, max_size=3
    ),
)
def test_decode_answers_any_reading_object(
    topic: str, ts: Any, level: float, extra: dict[str, Any]
) -> None:
    # json.dumps writes NaN and Infinity literals, as broken firmware does
    payload = json.dumps({"ts": ts, "level": level, **extra}).encode()
    assert_answered(decode(topic, payload, NOW, CATALOG, LIMITS))


@given(moment=moments)
def test_a_representable_rfc3339_time_is_read_exactly_or_rejected_by_its_window(
    moment: datetime,
) -> None:
    payload = orjson.dumps({"ts": moment.isoformat(), "level": 1.0})
    result = decode(TOPICS[0], payload, NOW, CATALOG, LIMITS)
    try:
        in_utc = moment.astimezone(UTC)
    except OverflowError:
        assert isinstance(result, Rejection)
        assert result.reason is RejectReason.BAD_TIMESTAMP
        return
    if isinstance(result, Reading):
        assert result.ts == in_utc
    else:
        assert result.reason in {RejectReason.IN_FUTURE, RejectReason.TOO_OLD}


@given(
    text=st.text(alphabet='[]{}:,"\\ 0123456789.eE+-truefalsnu\t\n', max_size=60)
    | json_values.map(json.dumps)
)
def test_the_nesting_parser_agrees_with_json(text: str) -> None:
    try:
        json.loads(text, parse_constant=lambda name: (_ for _ in ()).throw(ValueError(name)))
        valid = True
    except ValueError:
        valid = False
    assert is_well_formed(text) is valid


@given(depth=st.integers(min_value=1, max_value=3000), broken=st.booleans())
def test_the_nesting_parser_takes_any_depth(depth: int, broken: bool) -> None:
    text = "[" * depth + ("1," if broken else "1") + "]" * depth
    assert is_well_formed(text) is not broken


readings_in = st.lists(
    st.tuples(
        st.sampled_from(list(CATALOG)),
        # seconds after NOW; repeats and going back in time are allowed
        st.floats(min_value=-3 * 86400, max_value=3 * 86400, allow_nan=False),
        st.floats(min_value=-1e6, max_value=1e6, allow_nan=False),
    ),
    max_size=80,
)


@given(history=readings_in, live=readings_in)
def test_qc_answers_any_sequence_with_the_reading_and_known_flags(
    history: list[tuple[str, float, float]], live: list[tuple[str, float, float]]
) -> None:
    def reading(station_id: str, seconds: float, level: float) -> Reading:
        return Reading(station_id, NOW + timedelta(seconds=seconds), level)

    qc = QualityControl(CATALOG)
    for station_id in CATALOG:
        qc.prime(station_id, [reading(*item) for item in history if item[0] == station_id])
    known = QCFlag(sum(QCFlag))
    seen: set[tuple[str, datetime]] = set()
    for item in live:
        given_reading = reading(*item)
        result = qc.check(given_reading)
        checked = result.reading
        assert (checked.station_id, checked.ts, checked.level) == (
            given_reading.station_id,
            given_reading.ts,
            given_reading.level,
        )
        assert checked.qc & ~known == 0
        if CATALOG[checked.station_id].maintenance:
            assert checked.qc & QCFlag.MAINTENANCE
        # A revision settles an earlier suspect of the same station: never pending again,
        # never a reading QC has not seen.
        for revised in result.revised:
            assert revised.station_id == checked.station_id
            assert (revised.station_id, revised.ts) in seen
            assert not revised.qc & QCFlag.SUSPECT
            assert revised.qc & (QCFlag.SPIKE | QCFlag.CONFIRMED)
        seen.add((checked.station_id, checked.ts))


@pytest.mark.parametrize("level", [math.nan, math.inf, -math.inf])
def test_qc_takes_readings_decode_could_never_produce(level: float) -> None:
    """QC is also primed from the store and fed by replays; a NaN there must not break it."""
    qc = QualityControl(CATALOG)
    qc.check(Reading("gauge-cm", NOW, 1.0))
    qc.check(Reading("gauge-cm", NOW + timedelta(minutes=15), level))
    qc.check(Reading("gauge-cm", NOW + timedelta(minutes=30), 2.0))
