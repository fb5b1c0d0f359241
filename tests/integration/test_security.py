"""Credentials and the shipped ACLs against a real Mosquitto (password file, deploy/mosquitto)
and a real InfluxDB with authentication: the collector logs in, gauges reach only their own
topic, a wrong password is reported clearly, and no password ever reaches a log or output."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from floodwatch import topics
from floodwatch.models import utc_now
from floodwatch.replay import gauge_payload
from floodwatch.settings import MqttEndpoint
from tests.harness.collector_process import CollectorProcess
from tests.harness.gauges import write_catalog
from tests.harness.influx import InfluxServer, random_database
from tests.harness.inprocess import (
    clean_env,
    collector_settings,
    influx_reader,
    probe_until_subscribed,
    prometheus_value,
    publish_raw,
    run_cli,
    running_collector,
    wait_until,
)
from tests.harness.mosquitto import MosquittoServer

pytestmark = pytest.mark.integration

MQTT_PASSWORDS = {
    "floodwatch": "mq-Collector-7f3a",
    "gauge-000": "gauge0-Pw-91c2",
    "gauge-001": "gauge1-Pw-55d0",
}
INFLUX_USER = "fwwriter"
INFLUX_PASSWORD = "influx-Writer-3b8e"
WRONG_MQTT_PASSWORD = "wrong-Mq-0000"
WRONG_INFLUX_PASSWORD = "wrong-Influx-1111"
SECRETS = (*MQTT_PASSWORDS.values(), INFLUX_PASSWORD, WRONG_MQTT_PASSWORD, WRONG_INFLUX_PASSWORD)


def assert_no_secret(text: str, where: str) -> None:
    leaked = [secret for secret in SECRETS if secret in text]
    assert not leaked, f"{where} contains passwords {leaked}"


@pytest.fixture(scope="module")
def secured_influx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxServer]:
    """influxd with auth on and a non-admin writer account (granted per database)."""
    with InfluxServer(tmp_path_factory.mktemp("influxd-secured"), auth_enabled=True) as server:
        server.query(f"CREATE USER {INFLUX_USER} WITH PASSWORD '{INFLUX_PASSWORD}'")
        yield server


def writer_database(server: InfluxServer) -> str:
    """A database the non-admin writer may use; it cannot create databases itself."""
    database = random_database()
    server.query(f'CREATE DATABASE "{database}"')
    server.query(f'GRANT ALL ON "{database}" TO "{INFLUX_USER}"')
    return database


@pytest.fixture
def secured_mosquitto(tmp_path: Path) -> Iterator[MosquittoServer]:
    with MosquittoServer(tmp_path / "mosquitto-secured", users=MQTT_PASSWORDS, acl=True) as server:
        yield server


@pytest.fixture
def catalog_path(tmp_path: Path) -> Path:
    path = tmp_path / "stations.yaml"
    write_catalog(path, count=3)
    return path


def url_with_password(broker: MosquittoServer, user: str, password: str) -> str:
    return f"mqtt://{user}:{password}@127.0.0.1:{broker.port}"


async def test_collector_logs_in_stores_what_the_acl_allows_and_logs_no_password(
    tmp_path: Path,
    collector_process: Callable[[dict[str, str]], CollectorProcess],
    secured_mosquitto: MosquittoServer,
    secured_influx: InfluxServer,
    catalog_path: Path,
) -> None:
    database = writer_database(secured_influx)
    env = {
        "FLOODWATCH_MQTT_URL": secured_mosquitto.url_for("floodwatch"),
        "FLOODWATCH_INFLUX_URL": secured_influx.url,
        "FLOODWATCH_INFLUX_DATABASE": database,
        "FLOODWATCH_INFLUX_USERNAME": INFLUX_USER,
        "FLOODWATCH_INFLUX_PASSWORD": INFLUX_PASSWORD,
        "FLOODWATCH_STATIONS": str(catalog_path),
        "FLOODWATCH_SPOOL_PATH": str(tmp_path / "spool.sqlite"),
        "FLOODWATCH_MQTT_CLIENT_ID": "collector-secured",
        # The most talkative level: whatever is logged at all must still hide passwords.
        "FLOODWATCH_LOG_LEVEL": "DEBUG",
    }
    collector = collector_process(env).start()
    try:

        def received() -> float:
            text = collector.metrics()
            return prometheus_value(text, "floodwatch_readings_received_total") or 0.0

        # The service account may publish anywhere under floodwatch/, so it can probe.
        service = MqttEndpoint.parse(secured_mosquitto.url_for("floodwatch"))
        await probe_until_subscribed(service, [received])
        received_before = received()

        gauge = MqttEndpoint.parse(secured_mosquitto.url_for("gauge-000"))
        start = utc_now().replace(microsecond=0) - timedelta(minutes=30)
        own = [(start + timedelta(minutes=m), 250.0 + m / 10) for m in range(20)]
        await publish_raw(
            gauge,
            [
                # Not its own topic: the ACL drops it (MQTT 3.1.1 still acknowledges it).
                (topics.gauge_level("gauge-001"), gauge_payload(start, 999.0)),
                *[(topics.gauge_level("gauge-000"), gauge_payload(ts, lv)) for ts, lv in own],
            ],
            client_id="gauge-000",
        )
        async with influx_reader(secured_influx, database) as store:

            async def all_own_stored() -> bool:
                return await store.count("gauge-000") == len(own)

            await wait_until(all_own_stored, 30, "gauge-000's readings to be stored")
            stored = await store.latest("gauge-000", limit=len(own) + 5)
            assert [(r.ts, r.level) for r in stored] == own
            # Published before gauge-000's own readings on the same connection, so it would
            # have arrived first had the broker delivered it.
            assert await store.count("gauge-001") == 0
        assert received() - received_before == len(own)
        health = collector.health()
        assert health is not None
        assert health["store"] == "up"
        metrics = collector.metrics()
        assert prometheus_value(metrics, "floodwatch_readings_spooled_total") == 0
    finally:
        assert collector.stop() == 0
    log = collector.log_path.read_text()
    # It did log where it connected, with the password masked ...
    assert f"mqtt://floodwatch:***@127.0.0.1:{secured_mosquitto.port}" in log
    assert "InfluxDB" in log
    # ... and no password anywhere.
    assert_no_secret(log, "the collector's log")


async def test_collector_with_a_wrong_broker_password_stays_unhealthy_and_says_why(
    tmp_path: Path,
    secured_mosquitto: MosquittoServer,
    catalog_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from collector.service import Collector
    from floodwatch.catalog import load_catalog
    from floodwatch.storage import open_store

    caplog.set_level(logging.DEBUG)
    settings = collector_settings(
        tmp_path,
        url_with_password(secured_mosquitto, "floodwatch", WRONG_MQTT_PASSWORD),
        catalog_path,
        name="collector-wrong-password",
    )
    collector = Collector(settings, load_catalog(catalog_path), open_store(settings))
    await collector.start()
    try:
        await wait_until(
            lambda: "refused the connection" in caplog.text, 20, "the refusal to be logged"
        )
        healthy, details = collector.health()
        assert not healthy
        assert details["mqtt"] == "disconnected"
    finally:
        await collector.stop()
    assert "mqtt://floodwatch:***@" in caplog.text
    assert_no_secret(caplog.text, "the collector's log")
    # The right account still works: the failure was the password, nothing else.
    ok = collector_settings(
        tmp_path, secured_mosquitto.url_for("floodwatch"), catalog_path, name="collector-right"
    )
    async with running_collector(ok) as good:
        assert good.health()[0]


def _check_env(
    broker: MosquittoServer,
    influx: InfluxServer,
    database: str,
    catalog: Path,
    *,
    mqtt_password: str,
    influx_password: str,
) -> dict[str, str]:
    return clean_env(
        FLOODWATCH_MQTT_URL=url_with_password(broker, "floodwatch", mqtt_password),
        FLOODWATCH_INFLUX_URL=influx.url,
        FLOODWATCH_INFLUX_DATABASE=database,
        FLOODWATCH_INFLUX_USERNAME=INFLUX_USER,
        FLOODWATCH_INFLUX_PASSWORD=influx_password,
        FLOODWATCH_STATIONS=str(catalog),
    )


async def test_check_logs_in_with_credentials_and_reports_wrong_passwords_clearly(
    tmp_path: Path,
    secured_mosquitto: MosquittoServer,
    secured_influx: InfluxServer,
    catalog_path: Path,
) -> None:
    database = writer_database(secured_influx)
    right = _check_env(
        secured_mosquitto,
        secured_influx,
        database,
        catalog_path,
        mqtt_password=MQTT_PASSWORDS["floodwatch"],
        influx_password=INFLUX_PASSWORD,
    )
    result = run_cli("check", env=right, cwd=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert [line[:6] for line in result.stdout.splitlines()] == ["[ok  ]"] * 3
    assert_no_secret(output, "`floodwatch check` output")

    wrong = _check_env(
        secured_mosquitto,
        secured_influx,
        database,
        catalog_path,
        mqtt_password=WRONG_MQTT_PASSWORD,
        influx_password=WRONG_INFLUX_PASSWORD,
    )
    result = run_cli("check", env=wrong, cwd=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    lines = {line.split(":", 1)[0]: line for line in result.stdout.splitlines()}
    assert lines["[ok  ] station catalog"]
    broker_line = lines["[FAIL] MQTT broker"]
    assert f"mqtt://floodwatch:***@127.0.0.1:{secured_mosquitto.port}" in broker_line
    assert "refused" in broker_line
    assert "authori" in broker_line.lower()  # "Not authorized" from the broker
    store_line = lines["[FAIL] readings store"]
    assert "refused the credentials" in store_line
    assert "HTTP 401" in store_line
    assert_no_secret(output, "`floodwatch check` output")
