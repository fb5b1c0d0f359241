"""The `floodwatch` command line end to end: each command as a subprocess, configured only
through FLOODWATCH_* environment variables, against real Mosquitto and InfluxDB servers."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from floodwatch.net import free_port
from floodwatch.replay_csv import HEADER, ReplayRow, read_replay, write_replay
from floodwatch.settings import MqttEndpoint
from floodwatch.storage.influx import InfluxStore
from tests.harness.gauges import write_catalog
from tests.harness.influx import InfluxServer, random_database
from tests.harness.inprocess import (
    clean_env,
    collector_settings,
    influx_reader,
    probe_until_subscribed,
    run_cli,
    running_collector,
    sample,
    wait_until,
)
from tests.harness.mosquitto import MosquittoServer

pytestmark = pytest.mark.integration


@pytest.fixture
def catalog_path(tmp_path: Path) -> Path:
    path = tmp_path / "stations.yaml"
    write_catalog(path, count=5)
    return path


def _lines(stdout: str) -> dict[str, str]:
    """`check` output by check name: {"MQTT broker": "[ok  ] MQTT broker: ..."}."""
    return {line[7:].split(":", 1)[0]: line for line in stdout.splitlines() if line[:1] == "["}


# --- check --------------------------------------------------------------------------------


def test_check_passes_against_running_servers(
    tmp_path: Path, mosquitto: MosquittoServer, influx_server: InfluxServer, catalog_path: Path
) -> None:
    database = random_database()
    env = clean_env(
        FLOODWATCH_MQTT_URL=mosquitto.url,
        FLOODWATCH_INFLUX_URL=influx_server.url,
        FLOODWATCH_INFLUX_DATABASE=database,
        FLOODWATCH_STATIONS=str(catalog_path),
    )
    try:
        result = run_cli("check", env=env, cwd=tmp_path)
    finally:
        influx_server.query(f'DROP DATABASE "{database}"')
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 3
    assert all(line.startswith("[ok  ] ") for line in lines), lines
    checks = _lines(result.stdout)
    assert "5 stations" in checks["station catalog"]
    assert f"127.0.0.1:{mosquitto.port}" in checks["MQTT broker"]
    assert "InfluxDB" in checks["readings store"]
    assert database in checks["readings store"]


def test_check_fails_naming_the_broker_when_its_port_is_closed(
    tmp_path: Path, catalog_path: Path
) -> None:
    port = free_port()  # nothing listens there
    env = clean_env(
        FLOODWATCH_MQTT_URL=f"mqtt://127.0.0.1:{port}",
        FLOODWATCH_READINGS_PATH=str(tmp_path / "readings.sqlite"),
        FLOODWATCH_STATIONS=str(catalog_path),
    )
    result = run_cli("check", env=env, cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    checks = _lines(result.stdout)
    assert checks["MQTT broker"].startswith("[FAIL] ")
    assert f"mqtt://127.0.0.1:{port}" in checks["MQTT broker"]
    assert checks["station catalog"].startswith("[ok  ] ")
    assert checks["readings store"].startswith("[ok  ] ")


@pytest.mark.parametrize(
    ("variable", "value", "secret"),
    [
        ("FLOODWATCH_MQTT_URL", "http://broker.example:1883", None),
        ("FLOODWATCH_MQTT_URL", "mqtt://floodwatch:Hunter2-Secret@broker:notaport", "Hunter2"),
        ("FLOODWATCH_INFLUX_URL", "http://admin:Infl-Secret-9@influx:8086", "Infl-Secret"),
        ("FLOODWATCH_MAX_PAYLOAD_BYTES", "10", None),
        ("FLOODWATCH_MQTT_SHARED_GROUP", "a/b", None),
    ],
    ids=["mqtt-scheme", "mqtt-port", "influx-credentials", "payload-limit", "shared-group"],
)
def test_invalid_settings_exit_2_naming_the_variable(
    tmp_path: Path, variable: str, value: str, secret: str | None
) -> None:
    result = run_cli("check", env=clean_env(**{variable: value}), cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stdout == ""
    assert "invalid settings" in result.stderr
    assert f"{variable}:" in result.stderr
    assert "Traceback" not in result.stderr
    if secret is not None:
        assert secret not in result.stderr


def test_broken_catalog_is_named_by_file_station_and_field(
    tmp_path: Path, mosquitto: MosquittoServer
) -> None:
    good = {
        "id": "good-gauge",
        "names": {"en": "Good"},
        "river": {"en": "Testbrook"},
        "lat": 50.0,
        "lon": 8.0,
        "unit": "cm",
    }
    broken = {**good, "id": "broken-gauge", "lat": 123.0}
    catalog = tmp_path / "broken-stations.yaml"
    catalog.write_text(yaml.safe_dump({"stations": [good, broken]}))
    env = clean_env(
        FLOODWATCH_MQTT_URL=mosquitto.url,
        FLOODWATCH_READINGS_PATH=str(tmp_path / "readings.sqlite"),
        FLOODWATCH_STATIONS=str(catalog),
    )
    result = run_cli("check", env=env, cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    checks = _lines(result.stdout)
    assert checks["station catalog"].startswith("[FAIL] ")
    assert checks["MQTT broker"].startswith("[ok  ] ")
    assert checks["readings store"].startswith("[ok  ] ")
    for text in (str(catalog), "station 'broken-gauge'", "lat:"):
        assert text in result.stdout
    assert "good-gauge" not in result.stdout

    # `run` refuses to start on it, with the same message and no traceback.
    result = run_cli("run", env=env, cwd=tmp_path, timeout=60)
    assert result.returncode == 2, result.stdout + result.stderr
    for text in (str(catalog), "station 'broken-gauge'", "lat:"):
        assert text in result.stderr
    assert "Traceback" not in result.stderr


# --- replay -------------------------------------------------------------------------------


def _rows(station_ids: list[str], start: datetime, count: int, step: timedelta) -> list[ReplayRow]:
    return [
        ReplayRow(station_id, start + n * step, round(200.0 + 3 * n + index / 10, 1))
        for n in range(count)
        for index, station_id in enumerate(station_ids)
    ]


async def _stored(store: InfluxStore, station_id: str) -> list[tuple[datetime, float]]:
    return [(r.ts, r.level) for r in await store.latest(station_id, limit=1000)]


async def test_replay_publishes_a_csv_that_the_collector_stores_completely(
    tmp_path: Path, mosquitto: MosquittoServer, influx_server: InfluxServer, catalog_path: Path
) -> None:
    database = random_database()
    endpoint = MqttEndpoint.parse(mosquitto.url)
    settings = collector_settings(
        tmp_path,
        mosquitto.url,
        catalog_path,
        name="collector-replay",
        influx=influx_server,
        database=database,
    )
    env = clean_env(FLOODWATCH_MQTT_URL=mosquitto.url)
    recent_start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=2)
    recent = _rows(["gauge-000", "gauge-001", "gauge-002"], recent_start, 20, timedelta(minutes=5))
    recent_csv = tmp_path / "recent.csv"
    write_replay(recent_csv, recent)
    # A recording from January 2018: too old to accept unless rebased to end now.
    old_start = datetime(2018, 1, 8, 12, 0, tzinfo=UTC)
    old = _rows(["gauge-003", "gauge-004"], old_start, 12, timedelta(minutes=15))
    old_csv = tmp_path / "old.csv"
    write_replay(old_csv, old)

    async with (
        running_collector(settings) as collector,
        influx_reader(influx_server, database) as store,
    ):
        await probe_until_subscribed(
            endpoint, [lambda: sample(collector, "floodwatch_readings_received_total")]
        )
        result = run_cli("replay", str(recent_csv), "--speed", "max", env=env, cwd=tmp_path)
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"published {len(recent)} readings" in result.stdout
        for station_id in ("gauge-000", "gauge-001", "gauge-002"):
            expected = [(r.ts, r.level) for r in recent if r.station_id == station_id]

            async def complete(station_id: str = station_id, n: int = len(expected)) -> bool:
                return len(await _stored(store, station_id)) >= n

            await wait_until(complete, 30, f"{station_id} to be stored")
            assert await _stored(store, station_id) == expected

        # As recorded, the old flood is refused as too old: every row, and none stored.
        too_old_before = sample(collector, "floodwatch_readings_rejected_total", reason="too_old")
        result = run_cli("replay", str(old_csv), env=env, cwd=tmp_path)
        assert result.returncode == 0, result.stdout + result.stderr
        await wait_until(
            lambda: (
                sample(collector, "floodwatch_readings_rejected_total", reason="too_old")
                - too_old_before
                >= len(old)
            ),
            30,
            "the old recording to be rejected",
        )
        assert await store.count("gauge-003") == 0

        # --rebase moves it to end now, keeping its spacing, and it is stored completely.
        before = datetime.now(UTC)
        result = run_cli(
            "replay", str(old_csv), "--rebase", "--speed", "max", env=env, cwd=tmp_path
        )
        assert result.returncode == 0, result.stdout + result.stderr
        for station_id in ("gauge-003", "gauge-004"):
            recorded = [r for r in old if r.station_id == station_id]

            async def complete(station_id: str = station_id, n: int = len(recorded)) -> bool:
                return len(await _stored(store, station_id)) >= n

            await wait_until(complete, 30, f"rebased {station_id} to be stored")
            stored = await _stored(store, station_id)
            assert [level for _, level in stored] == [r.level for r in recorded]
            shift = stored[0][0] - recorded[0].ts
            assert [ts for ts, _ in stored] == [r.ts + shift for r in recorded]
            last = stored[-1][0]
            assert before - timedelta(minutes=2) <= last <= datetime.now(UTC)


# --- convert ------------------------------------------------------------------------------

CONVERT_SAMPLES: list[dict[str, Any]] = [
    {
        "id": "caprhein",
        "file": "2750010_Rhein_Duesseldorf_15min.csv",
        "text": (
            "timestamp_CET,W_cm,Q_m3s\n"
            "2018-01-08 23:00:00,836,2930\n"
            "2018-01-08 23:15:00,838,2940\n"
            "2018-01-08 23:30:00,,\n"
            "2018-01-08 23:45:00,837,2935\n"
        ),
        "station_id": "rhein-duesseldorf",
        # CET is UTC+01:00 all year; the empty level is a gap, skipped.
        "rows": [
            ("2018-01-08T22:00:00+00:00", 836.0),
            ("2018-01-08T22:15:00+00:00", 838.0),
            ("2018-01-08T22:45:00+00:00", 837.0),
        ],
    },
    {
        "id": "amur-daily",
        "file": "05012_Khabarovsk_Amur_daily_1984-2017.csv",
        "text": (
            "date,level_mean_cm,level_min_cm,level_max_cm,water_temp_C,KSVO_code\n"
            '2013-09-02,802,796,806,17.2,"15, 3"\n'
            "2013-09-03,808,805,812,17.0,\n"
        ),
        "station_id": "amur-khabarovsk",
        # The daily mean is placed at the 08:00 observation term, Khabarovsk time (UTC+10).
        "rows": [("2013-09-01T22:00:00+00:00", 802.0), ("2013-09-02T22:00:00+00:00", 808.0)],
    },
    {
        "id": "ea-hydrology",
        "file": "Hebden-Bridge-level-15min-Qualified.csv.gz",
        "text": (
            '"measure","dateTime","date","value","completeness","quality","qcode"\n'
            '"http://environment.data.gov.uk/hydrology/id/measures/x-level-i-900-m-qualified",'
            '"2025-09-12T06:00:00","2025-09-12","0.512","","Good",""\n'
            '"http://environment.data.gov.uk/hydrology/id/measures/x-level-i-900-m-qualified",'
            '"2025-09-12T06:15:00","2025-09-12","0.534","","Good",""\n'
        ),
        "station_id": "calder-hebden-bridge",
        "rows": [("2025-09-12T06:00:00+00:00", 0.512), ("2025-09-12T06:15:00+00:00", 0.534)],
    },
]


@pytest.mark.parametrize("recording", CONVERT_SAMPLES, ids=[s["id"] for s in CONVERT_SAMPLES])
def test_convert_writes_a_valid_replay_csv_for_each_shared_data_format(
    tmp_path: Path, recording: dict[str, Any]
) -> None:
    source = tmp_path / recording["file"]
    data = recording["text"].encode()
    source.write_bytes(gzip.compress(data) if source.name.endswith(".gz") else data)
    out = tmp_path / "replay.csv"
    result = run_cli("convert", str(source), "--out", str(out), env=clean_env(), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    expected = recording["rows"]
    assert f"wrote {len(expected)} rows" in result.stdout
    text = out.read_text()
    assert text.splitlines()[0] == ",".join(HEADER)
    rows = list(read_replay(out))  # the contract's own parser accepts it
    assert [(r.station_id, r.ts.isoformat(), r.level) for r in rows] == [
        (recording["station_id"], ts, level) for ts, level in expected
    ]
    # Every timestamp in the file itself carries its UTC offset.
    assert all(line.split(",")[1].endswith("+00:00") for line in text.splitlines()[1:])
