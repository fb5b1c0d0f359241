"""What the collector does with each kind of input, through a real Mosquitto into a real
InfluxDB: every rejection reason is published, counted and not stored (and does not
poison what follows); QC-flagged readings are stored with their flags and counted."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from collector.decode import RejectReason
from collector.service import Collector
from floodwatch import topics
from floodwatch.models import QCFlag, utc_now
from floodwatch.replay import gauge_payload
from floodwatch.settings import MqttEndpoint
from floodwatch.storage.influx import InfluxStore
from tests.harness.gauges import write_catalog
from tests.harness.influx import InfluxServer, random_database
from tests.harness.inprocess import (
    collector_settings,
    influx_reader,
    probe_until_subscribed,
    publish_raw,
    running_collector,
    sample,
    wait_until,
)
from tests.harness.listener import Listener
from tests.harness.mosquitto import MosquittoServer

pytestmark = pytest.mark.integration

GOOD_STATION = "gauge-001"
UNKNOWN_STATION = "atlantis-1"
BAD_TOPIC_ID = "BAD"


# --- rejections ---------------------------------------------------------------------------


def _reading(ts: datetime, level: float) -> bytes:
    return gauge_payload(ts, level)


@dataclass(frozen=True)
class BadMessage:
    """One bad gauge message: where it goes, what it carries (built from `now`), and the
    rejected topic and reason the collector must answer with."""

    reason: RejectReason
    station_in_topic: str
    payload: Callable[[datetime], bytes]

    @property
    def topic(self) -> str:
        return topics.gauge_level(self.station_in_topic)

    @property
    def rejected_topic(self) -> str:
        if self.reason is RejectReason.BAD_TOPIC:
            return topics.rejected(topics.INVALID_STATION)
        return topics.rejected(self.station_in_topic)


BAD_MESSAGES: tuple[BadMessage, ...] = (
    BadMessage(
        RejectReason.BAD_TOPIC,
        BAD_TOPIC_ID,
        lambda now: _reading(now - timedelta(minutes=2), 300.0),
    ),
    BadMessage(
        RejectReason.UNKNOWN_STATION,
        UNKNOWN_STATION,
        lambda now: _reading(now - timedelta(minutes=2), 300.0),
    ),
    BadMessage(
        RejectReason.TOO_LARGE,
        GOOD_STATION,
        # Valid JSON with a valid reading in it: only its size is wrong.
        lambda now: orjson.dumps(
            {"ts": (now - timedelta(minutes=2)).isoformat(), "level": 300.0, "pad": "x" * 5000}
        ),
    ),
    BadMessage(RejectReason.NOT_UTF8, GOOD_STATION, lambda _now: b'{"level": 300, "note": "\xff"}'),
    BadMessage(RejectReason.MALFORMED_JSON, GOOD_STATION, lambda _now: b'{"level": 300'),
    BadMessage(RejectReason.BAD_SCHEMA, GOOD_STATION, lambda _now: b'{"level": "300"}'),
    BadMessage(RejectReason.NOT_FINITE, GOOD_STATION, lambda _now: b'{"level": NaN}'),
    BadMessage(
        RejectReason.BAD_TIMESTAMP,
        GOOD_STATION,
        # No UTC offset: ambiguous by hours, so refused rather than guessed.
        lambda now: orjson.dumps(
            {"ts": (now - timedelta(minutes=2)).replace(tzinfo=None).isoformat(), "level": 300}
        ),
    ),
    BadMessage(
        RejectReason.IN_FUTURE,
        GOOD_STATION,
        lambda now: _reading(now + timedelta(hours=1), 300.0),
    ),
    BadMessage(
        RejectReason.TOO_OLD,
        GOOD_STATION,
        lambda now: _reading(now - timedelta(days=45), 300.0),
    ),
    BadMessage(
        RejectReason.OUT_OF_RANGE,
        GOOD_STATION,
        # The catalog's valid range is 0..2000 cm.
        lambda now: _reading(now - timedelta(minutes=2), 2500.0),
    ),
)


def test_the_broker_table_covers_every_reject_reason() -> None:
    """internal_error has its own test (test_poison_messages.py): only a bug can cause it."""
    reasons = [case.reason for case in BAD_MESSAGES]
    assert sorted(reasons) == sorted(set(RejectReason) - {RejectReason.INTERNAL_ERROR})


@pytest.fixture
def catalog_path(tmp_path: Path) -> Path:
    path = tmp_path / "stations.yaml"
    write_catalog(path, count=3)
    return path


def _counters(collector: Collector) -> dict[str, float]:
    names = ("received", "accepted", "written", "spooled")
    counters = {name: sample(collector, f"floodwatch_readings_{name}_total") for name in names}
    counters["rejected"] = collector.metrics.total("floodwatch_readings_rejected")
    for reason in RejectReason:
        counters[reason.value] = sample(
            collector, "floodwatch_readings_rejected_total", reason=reason.value
        )
    return counters


async def _count(store: InfluxStore, station_id: str) -> int:
    with contextlib.suppress(Exception):
        return await store.count(station_id)
    return -1


@pytest.mark.parametrize("bad", BAD_MESSAGES, ids=lambda bad: bad.reason.value)
async def test_bad_message_is_published_counted_not_stored_and_harmless(
    bad: BadMessage,
    tmp_path: Path,
    mosquitto: MosquittoServer,
    influx_server: InfluxServer,
    catalog_path: Path,
) -> None:
    database = random_database()
    endpoint = MqttEndpoint.parse(mosquitto.url)
    settings = collector_settings(
        tmp_path,
        mosquitto.url,
        catalog_path,
        name=f"collector-reject-{bad.reason.value}",
        influx=influx_server,
        database=database,
    )
    async with (
        running_collector(settings) as collector,
        influx_reader(influx_server, database) as store,
    ):
        await probe_until_subscribed(
            endpoint, [lambda: sample(collector, "floodwatch_readings_received_total")]
        )
        before = _counters(collector)
        async with Listener(
            endpoint, "floodwatch/rejected/#", client_id="rejected-reader"
        ) as inbox:
            now = utc_now().replace(microsecond=0)
            good_ts = now - timedelta(minutes=1)
            await publish_raw(
                endpoint,
                [
                    (bad.topic, bad.payload(now)),
                    # The very next message from the same gauge link must still be stored.
                    (topics.gauge_level(GOOD_STATION), _reading(good_ts, 321.5)),
                ],
                client_id="bad-gauge",
            )

            def ours(messages: list[Any]) -> list[Any]:
                # Bad-topic probes share floodwatch/rejected/_invalid; ours names BAD.
                return [
                    m
                    for m in messages
                    if m.topic == bad.rejected_topic
                    and (
                        bad.reason is not RejectReason.BAD_TOPIC
                        or BAD_TOPIC_ID in m.json()["detail"]
                    )
                ]

            messages = await inbox.wait_for(
                lambda ms: bool(ours(ms)), 20, f"a message on {bad.rejected_topic}"
            )
        [rejected] = ours(messages)
        body = rejected.json()
        assert body["reason"] == bad.reason.value, body
        assert isinstance(body["detail"], str)
        assert body["detail"]
        assert datetime.fromisoformat(body["received_at"]).tzinfo is not None

        await wait_until(
            lambda: (
                _count(store, GOOD_STATION).__await__().__next__ if False else _stored_one(store)
            ),
            30,
            "the good reading after the bad one to be stored",
        )
        await wait_until(
            lambda: _counters(collector)["written"] - before["written"] >= 1,
            10,
            "the written counter",
        )
        after = _counters(collector)
        delta = {name: after[name] - before[name] for name in after}
        assert delta[bad.reason.value] == 1
        assert delta["rejected"] == 1, "no other reason may count this message"
        assert delta["received"] == 2
        assert delta["accepted"] == 1
        assert delta["written"] == 1
        assert delta["spooled"] == 0

        # Only the good reading is stored: the bad one, published first on the same
        # connection, would have reached the store no later than it.
        stored = await store.latest(GOOD_STATION, limit=10)
        assert [(r.ts, r.level, r.qc) for r in stored] == [(good_ts, 321.5, QCFlag.NONE)]
        for station_id in ("gauge-000", "gauge-002", UNKNOWN_STATION, BAD_TOPIC_ID):
            assert await store.count(station_id) == 0
        assert collector.health()[0], "the collector is still connected and healthy"


async def _stored_one(store: InfluxStore) -> bool:
    return await _count(store, GOOD_STATION) == 1


# --- quality control ----------------------------------------------------------------------


def _station(station_id: str, index: int, **extra: Any) -> dict[str, Any]:
    return {
        "id": station_id,
        "names": {"en": station_id},
        "river": {"en": "Testbrook"},
        "lat": 50.0 + index / 100,
        "lon": 8.0,
        "unit": "cm",
        "valid_range": {"min": 0, "max": 2000},
        **extra,
    }


@pytest.fixture
def qc_catalog(tmp_path: Path) -> Path:
    path = tmp_path / "qc-stations.yaml"
    stations = [
        # A rate limit no spike can break, so the spike is flagged as a spike alone.
        _station("qc-spike", 0, qc={"max_jump_per_hour": 100000}),
        _station("qc-jump", 1),
        _station("qc-flat", 2, qc={"flatline_hours": 1}),
        _station("qc-maint", 3, maintenance=True),
        _station("qc-flash", 4),
    ]
    path.write_text(yaml.safe_dump({"stations": stations}))
    return path


def _qc_stream(base: datetime) -> list[tuple[str, datetime, float, QCFlag]]:
    """(station, ts, level, expected final flags) in publishing order."""
    rows: list[tuple[str, datetime, float, QCFlag]] = []
    five = timedelta(minutes=5)
    spike_levels = [300.0, 300.4, 300.1, 300.6, 300.2, 300.5, 900.0, 300.3, 300.6, 300.2]
    for step, level in enumerate(spike_levels):
        flag = QCFlag.SPIKE if level == 900.0 else QCFlag.NONE
        rows.append(("qc-spike", base + step * five, level, flag))
    # 100 cm in 5 minutes is far beyond 200 cm/h: held, and it came back.
    jump = [
        (300.0, QCFlag.NONE),
        (300.5, QCFlag.NONE),
        (400.5, QCFlag.SPIKE | QCFlag.JUMP),
        (300.8, QCFlag.NONE),
    ]
    for step, (level, flag) in enumerate(jump):
        rows.append(("qc-jump", base + step * five, level, flag))
    # A flash rise: held, and the next reading confirmed it (stored again, CONFIRMED).
    flash = [
        (250.0, QCFlag.NONE),
        (250.5, QCFlag.NONE),
        (450.0, QCFlag.CONFIRMED),
        (620.0, QCFlag.NONE),
    ]
    for step, (level, flag) in enumerate(flash):
        rows.append(("qc-flash", base + step * 3 * five, level, flag))
    # Exactly 250.0 every 10 minutes: flagged once the run is longer than 1 hour.
    for step in range(15):
        flag = QCFlag.FLATLINE if step * 10 > 60 else QCFlag.NONE
        rows.append(("qc-flat", base + step * 2 * five, 250.0, flag))
    rows.append(("qc-flat", base + 15 * 2 * five, 251.0, QCFlag.NONE))
    for step, level in enumerate([120.0, 121.5, 123.0]):
        rows.append(("qc-maint", base + step * five, level, QCFlag.MAINTENANCE))
    rows.sort(key=lambda row: row[1])  # interleave the stations, each still in time order
    return rows


async def test_qc_flagged_readings_are_stored_with_their_flags_and_counted(
    tmp_path: Path, mosquitto: MosquittoServer, influx_server: InfluxServer, qc_catalog: Path
) -> None:
    database = random_database()
    endpoint = MqttEndpoint.parse(mosquitto.url)
    settings = collector_settings(
        tmp_path,
        mosquitto.url,
        qc_catalog,
        name="collector-qc",
        influx=influx_server,
        database=database,
    )
    base = utc_now().replace(microsecond=0) - timedelta(hours=3)
    rows = _qc_stream(base)
    # Flags on arrival: the three held readings were suspect then.
    expected_counts = {"suspect": 3, "flatline": 8, "maintenance": 3}
    assert sum(1 for row in rows if row[3]) == 14  # table sanity: final flags
    async with (
        running_collector(settings) as collector,
        influx_reader(influx_server, database) as store,
    ):
        await probe_until_subscribed(
            endpoint, [lambda: sample(collector, "floodwatch_readings_received_total")]
        )
        live = await Listener(endpoint, "floodwatch/readings/#", client_id="qc-consumer").start()
        flagged = await Listener(
            endpoint, topics.FLAGGED_READINGS_FILTER, client_id="qc-flagged"
        ).start()
        await publish_raw(
            endpoint,
            [(topics.gauge_level(s), gauge_payload(ts, level)) for s, ts, level, _ in rows],
            client_id="qc-gauges",
        )
        per_station: dict[str, int] = {}
        for station_id, *_ in rows:
            per_station[station_id] = per_station.get(station_id, 0) + 1

        async def all_stored() -> bool:
            return all([await _count(store, s) == n for s, n in per_station.items()])

        await wait_until(all_stored, 30, "every reading, flagged or not, to be stored")
        stored = {
            (station_id, reading.ts): reading
            for station_id in per_station
            for reading in await store.query(station_id, base, base + timedelta(hours=4))
        }
        assert len(stored) == len(rows)
        for station_id, ts, level, flag in rows:
            reading = stored[(station_id, ts)]
            assert (reading.level, reading.qc) == (level, flag), (station_id, ts)

        # Only QC-clean readings go out on the clean readings topic, confirmed ones too
        # (once confirmed).
        clean = {(s, ts) for s, ts, _level, flag in rows if flag in (0, QCFlag.CONFIRMED)}
        republished = await live.wait_for(
            lambda ms: len(ms) >= len(clean), 30, "every clean reading republished"
        )
        live.stop()
        assert {
            (m.json()["station_id"], datetime.fromisoformat(m.json()["ts"])) for m in republished
        } == clean
        assert len(republished) == len(clean)

        # Every other reading goes out on the flagged topic: the suspects on arrival, and
        # again with their verdict once it was a spike.
        def verdicts(m: Any) -> tuple[str, datetime, tuple[str, ...]]:
            body = m.json()
            return body["station_id"], datetime.fromisoformat(body["ts"]), tuple(body["qc"])

        expected_flagged = {
            (s, ts, tuple(flag.names())) for s, ts, _level, flag in rows if flag not in (0, 32)
        }
        held = [(s, ts) for s, ts, level, _flag in rows if level in (900.0, 400.5, 450.0)]
        expected_flagged |= {(s, ts, ("suspect",)) for s, ts in held}
        got = await flagged.wait_for(
            lambda ms: len(ms) >= len(expected_flagged), 30, "every flagged reading"
        )
        flagged.stop()
        assert {verdicts(m) for m in got} == expected_flagged
        assert len(got) == len(expected_flagged)

        for flag_name, count in expected_counts.items():
            assert sample(collector, "floodwatch_readings_flagged_total", flag=flag_name) == count
        revised = "floodwatch_readings_revised_total"
        assert sample(collector, revised, verdict="spike") == 2
        assert sample(collector, revised, verdict="confirmed") == 1
        assert sample(collector, "floodwatch_readings_accepted_total") == len(rows)
        assert collector.metrics.total("floodwatch_readings_rejected") == sample(
            collector, "floodwatch_readings_rejected_total", reason="bad_topic"
        ), "only the subscription probes are rejected"
