"""Parsing what the alert engine reads from MQTT."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from alerts.inputs import BadInput, ForecastInput, ReadingInput, parse
from collector.service import reading_payload
from floodwatch.models import QCFlag, Reading

TS = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _json(document: object) -> bytes:
    return orjson.dumps(document)


def test_a_clean_reading_as_the_collector_publishes_it() -> None:
    payload = reading_payload(Reading("g1", TS, 412.5, seq=7))
    assert parse("floodwatch/readings/g1", payload) == ReadingInput("g1", 412.5, TS)


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["spike", "jump"], QCFlag.SPIKE | QCFlag.JUMP),
        (["maintenance"], QCFlag.MAINTENANCE),
        (["suspect"], QCFlag.SUSPECT),
        (["flatline"], QCFlag.FLATLINE),
        (["confirmed", "maintenance"], QCFlag.CONFIRMED | QCFlag.MAINTENANCE),
    ],
)
def test_a_flagged_reading_keeps_its_flags(flags: list[str], expected: QCFlag) -> None:
    reading = {"station_id": "g1", "ts": TS.isoformat(), "level": 1518, "qc": flags}
    parsed = parse("floodwatch/flagged/g1", _json(reading))
    assert parsed == ReadingInput("g1", 1518.0, TS, expected)


def test_a_confirmed_reading_is_clean() -> None:
    reading = {"station_id": "g1", "ts": TS.isoformat(), "level": 650, "qc": ["confirmed"]}
    parsed = parse("floodwatch/readings/g1", _json(reading))
    assert parsed == ReadingInput("g1", 650.0, TS, QCFlag.CONFIRMED)


def test_the_station_state_is_ignored_now_that_flagged_readings_have_their_topic() -> None:
    """A persistent session subscribed before the upgrade may still get it."""
    for flags in ([], ["spike"], ["gremlins"]):
        state = {"station_id": "g1", "ts": TS.isoformat(), "level": 300, "qc": flags}
        assert parse("floodwatch/stations/g1/state", _json(state)) is None


def test_a_forecast_summary() -> None:
    summary = {
        "station_id": "g1",
        "issued_at": "2026-03-01T12:02:00+00:00",
        "insufficient": None,
        "trend": {"at": TS.isoformat(), "level": 412.0, "rate_per_h": 6.0, "direction": "rising"},
        "thresholds": [
            {
                "key": "danger",
                "status": "expected",
                "expected_at": "2026-03-01T20:00:00+00:00",
                "earliest": None,
                "latest": None,
            }
        ],
    }
    parsed = parse("floodwatch/forecasts/g1", _json(summary))
    assert isinstance(parsed, ForecastInput)
    assert parsed.issued_at == datetime(2026, 3, 1, 12, 2, tzinfo=UTC)
    assert parsed.view.usable
    assert parsed.view.rate_per_h == 6.0
    outlook = parsed.view.outlook("danger")
    assert outlook is not None
    assert outlook.expected_at == datetime(2026, 3, 1, 20, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("topic", "payload", "reason"),
    [
        ("floodwatch/readings/g1", b"not json", "not JSON"),
        ("floodwatch/readings/g1", b"[1, 2]", "not a JSON object"),
        ("floodwatch/readings/g1", b'{"ts": "2026-03-01T12:00:00+00:00"}', "level"),
        ("floodwatch/readings/g1", b'{"ts": "2026-03-01T12:00:00", "level": 1}', "no UTC offset"),
        ("floodwatch/readings/g1", b'{"ts": "yesterday", "level": 1}', "RFC 3339"),
        ("floodwatch/readings/g1", b'{"ts": 5, "level": true}', "level"),
        (
            "floodwatch/readings/g1",
            b'{"station_id": "g2", "ts": "2026-03-01T12:00:00+00:00", "level": 1}',
            "differs from the topic",
        ),
        (
            "floodwatch/readings/g1",
            b'{"ts": "2026-03-01T12:00:00+00:00", "level": 1, "qc": ["spike"]}',
            "flagged reading on the clean",
        ),
        (
            "floodwatch/flagged/g1",
            b'{"ts": "2026-03-01T12:00:00+00:00", "level": 1, "qc": ["gremlins"]}',
            "unknown flag",
        ),
        (
            "floodwatch/flagged/g1",
            b'{"ts": "2026-03-01T12:00:00+00:00", "level": 1, "qc": ["confirmed"]}',
            "clean reading on the flagged",
        ),
        ("floodwatch/forecasts/g1", b'{"station_id": "g1"}', "not a forecast summary"),
        ("floodwatch/elsewhere/g1", b"{}", "unexpected topic"),
        ("floodwatch/readings/BAD", b"{}", "unexpected topic"),
    ],
)
def test_bad_messages_say_why(topic: str, payload: bytes, reason: str) -> None:
    with pytest.raises(BadInput, match=reason):
        parse(topic, payload)
