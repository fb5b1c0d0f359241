"""The compose stack's broker accounts, for real: deploy/mosquitto/mkpasswd.sh writes the
password files from the environment and a gauges file with the local `mosquitto_passwd`,
and a real Mosquitto running the shipped mosquitto.conf (both listeners) and ACLs with
those files lets each account do exactly what the ACLs say, and no gauge account can take
a service's client id (test_security.py covers the collector behind it)."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr

from floodwatch import topics
from floodwatch.errors import BrokerUnavailable
from floodwatch.models import utc_now
from floodwatch.mqtt import connect, make_client
from floodwatch.replay import gauge_payload
from floodwatch.settings import MqttEndpoint
from floodwatch.storage.sqlite import SQLiteStore
from tests.harness.gauges import write_catalog
from tests.harness.inprocess import (
    collector_settings,
    probe_until_subscribed,
    publish_raw,
    running_collector,
    sample,
    wait_until,
)
from tests.harness.listener import Listener
from tests.harness.mosquitto import REPO, MosquittoServer, mosquitto_binary

pytestmark = pytest.mark.integration

MKPASSWD = REPO / "deploy" / "mosquitto" / "mkpasswd.sh"
SERVICE_PASSWORD = "svc-Pw_1.x~"
VIEWER_PASSWORD = "viewer pw with spaces"
GAUGES = {
    "gauge-a": "gauge-a-Pw-1",
    # Passwords may hold colons: only the first one separates the id.
    "gauge-b": "b:pw:with:colons",
}


def mkpasswd(
    tmp_path: Path, gauges_text: str | None, service: str = SERVICE_PASSWORD
) -> subprocess.CompletedProcess[str]:
    """Runs the script as the broker's entry point does, with `sh` (busybox in the image,
    dash on Debian: both POSIX)."""
    if shutil.which("mosquitto_passwd") is None:
        mosquitto_binary()  # fails in CI, skips elsewhere: the package brings both
        pytest.fail("mosquitto_passwd is missing although mosquitto is installed")
    gauges = tmp_path / "gauges.txt"
    if gauges_text is not None:
        gauges.write_text(gauges_text)
    env = {
        "PATH": os.environ["PATH"],
        "MQTT_FLOODWATCH_PASSWORD": service,
        "MQTT_VIEWER_PASSWORD": VIEWER_PASSWORD,
        "GAUGES_FILE": str(gauges),
        "PASSWD_DIR": str(tmp_path),
    }
    return subprocess.run(["sh", str(MKPASSWD)], env=env, capture_output=True, text=True)


def endpoint(broker: MosquittoServer, user: str, password: str) -> MqttEndpoint:
    """An account on the gauges' listener (1883 in the stack)."""
    return MqttEndpoint("127.0.0.1", broker.port, False, user, SecretStr(password))


def service_endpoint(broker: MosquittoServer, user: str, password: str) -> MqttEndpoint:
    """An account on the services' listener (1884 in the stack)."""
    return MqttEndpoint("127.0.0.1", broker.service_port, False, user, SecretStr(password))


async def test_generated_accounts_can_do_exactly_what_the_shipped_acl_allows(
    tmp_path: Path,
) -> None:
    lines = ["# gauges of the test", "", *(f"{sid}:{pw}" for sid, pw in GAUGES.items())]
    # Windows line ends and a last line without one, as hand-edited files have them.
    result = mkpasswd(tmp_path, "\r\n".join(lines))
    assert result.returncode == 0, result.stderr
    assert "2 gauge account(s)" in result.stdout
    files = [tmp_path / "passwd-gauges", tmp_path / "passwd-services"]
    for passwd in files:
        assert passwd.stat().st_mode & 0o077 == 0, "the password files are private"
    text = "".join(passwd.read_text() for passwd in files) + result.stdout + result.stderr
    leaked = [pw for pw in (SERVICE_PASSWORD, VIEWER_PASSWORD, *GAUGES.values()) if pw in text]
    assert not leaked, "passwords are stored hashed and never printed"

    with MosquittoServer(tmp_path / "broker", shipped_auth=tmp_path) as broker:
        service = service_endpoint(broker, "floodwatch", SERVICE_PASSWORD)
        viewer = endpoint(broker, "viewer", VIEWER_PASSWORD)
        gauge_a = endpoint(broker, "gauge-a", GAUGES["gauge-a"])
        gauge_b = endpoint(broker, "gauge-b", GAUGES["gauge-b"])
        shared = topics.shared("collectors", topics.GAUGE_LEVEL_FILTER)
        async with (
            # As the compose collectors subscribe: in the shared group.
            Listener(service, shared, client_id="collector-under-test") as collector,
            Listener(viewer, "floodwatch/alerts/#", client_id="dashboard-under-test") as wall,
        ):
            # Each forbidden message goes first on its connection (and is acknowledged:
            # MQTT 3.1.1), so had the broker delivered it, it would arrive first.
            await publish_raw(
                gauge_a,
                [
                    (topics.gauge_level("gauge-b"), b"999"),  # another gauge's topic
                    ("floodwatch/alerts/gauge-a", b"forged by a gauge"),
                    (topics.gauge_level("gauge-a"), b"101"),
                ],
                client_id="gauge-a",
            )
            await publish_raw(gauge_b, [(topics.gauge_level("gauge-b"), b"202")], client_id="b")
            # On the gauges' listener the client id is the username, so a second viewer
            # connection would replace the wall's: the forgery goes out on the wall's own.
            forged = wall.client.publish("floodwatch/alerts/gauge-b", b"forged by the viewer", 1)
            await asyncio.to_thread(forged.wait_for_publish, 10)
            await publish_raw(
                service, [("floodwatch/alerts/gauge-b", b"from the service")], client_id="s"
            )
            got = await collector.wait_for(lambda m: len(m) >= 2, 10, "both gauges' own levels")
            seen = await wall.wait_for(lambda m: len(m) >= 1, 10, "the service's alert")
        assert sorted((m.topic, m.payload) for m in got) == [
            (topics.gauge_level("gauge-a"), b"101"),
            (topics.gauge_level("gauge-b"), b"202"),
        ]
        assert [(m.topic, m.payload) for m in seen] == [
            ("floodwatch/alerts/gauge-b", b"from the service")
        ]

        for where, user, password in [
            (endpoint, "gauge-a", GAUGES["gauge-b"]),  # another gauge's password
            (endpoint, "gauge-c", "anything"),  # not in the gauges file
            (service_endpoint, "floodwatch", SERVICE_PASSWORD + "x"),
            # Each listener knows only its own accounts.
            (endpoint, "floodwatch", SERVICE_PASSWORD),
            (service_endpoint, "gauge-a", GAUGES["gauge-a"]),
            (service_endpoint, "viewer", VIEWER_PASSWORD),
        ]:
            account = where(broker, user, password)
            client = make_client(account, f"refused-{user}")
            with pytest.raises(BrokerUnavailable, match="refused"):
                await connect(client, account, wait_s=10)
            client.loop_stop()


def test_without_a_gauges_file_only_the_two_service_accounts_are_written(
    tmp_path: Path,
) -> None:
    result = mkpasswd(tmp_path, None)
    assert result.returncode == 0, result.stderr

    def users(name: str) -> list[str]:
        return [line.split(":", 1)[0] for line in (tmp_path / name).read_text().splitlines()]

    assert users("passwd-services") == ["floodwatch"]
    assert users("passwd-gauges") == ["viewer"]


@pytest.mark.parametrize(
    ("gauges", "service", "message"),
    [
        ("Gauge-A:pw\n", SERVICE_PASSWORD, "line 1: 'Gauge-A' is not a station id"),
        ("# ok\ngauge_a:pw\n", SERVICE_PASSWORD, "line 2: 'gauge_a' is not a station id"),
        ("gauge-a pw\n", SERVICE_PASSWORD, "line 1: expected station_id:password"),
        ("gauge-a:\n", SERVICE_PASSWORD, "line 1: 'gauge-a' has an empty password"),
        ("gauge-a:x\ngauge-a:y\n", SERVICE_PASSWORD, "line 2: 'gauge-a' is listed twice"),
        ("viewer:x\n", SERVICE_PASSWORD, "'viewer' is listed twice or is a reserved"),
        ("floodwatch-collector-1:x\n", SERVICE_PASSWORD, "kept for the services' client ids"),
        (f"{'g' * 65}:x\n", SERVICE_PASSWORD, "is longer than 64 characters"),
        ("", "has@at", "MQTT_FLOODWATCH_PASSWORD may only hold"),
        ("", "", "MQTT_FLOODWATCH_PASSWORD is not set"),
    ],
)
def test_a_bad_gauges_file_or_password_stops_the_broker_start_and_names_the_line(
    tmp_path: Path, gauges: str, service: str, message: str
) -> None:
    for name in ("passwd-gauges", "passwd-services"):
        (tmp_path / name).write_text("previous file\n")
    result = mkpasswd(tmp_path, gauges, service=service)
    assert result.returncode != 0
    assert message in result.stderr
    # The previous files stay as they were, and no half-written one is left behind.
    for name in ("passwd-gauges", "passwd-services"):
        assert (tmp_path / name).read_text() == "previous file\n"
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "gauges.txt",
        "passwd-gauges",
        "passwd-services",
    ]


async def test_a_gauge_account_can_neither_disconnect_a_service_nor_touch_its_session(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A gauge account connects with the collector's client id, clean session, while the
    collector runs and while it is away: the collector is never disconnected, and every
    reading queued for its persistent session reaches it when it comes back."""
    caplog.set_level(logging.WARNING)
    catalog = tmp_path / "stations.yaml"
    write_catalog(catalog, count=1)  # gauge-000
    assert mkpasswd(tmp_path, "gauge-000:pw-0\n").returncode == 0
    with MosquittoServer(tmp_path / "broker", shipped_auth=tmp_path) as broker:
        service = service_endpoint(broker, "floodwatch", SERVICE_PASSWORD)
        gauge = endpoint(broker, "gauge-000", "pw-0")
        settings = collector_settings(
            tmp_path,
            f"mqtt://floodwatch:{SERVICE_PASSWORD}@127.0.0.1:{broker.service_port}",
            catalog,
            name="floodwatch-collector-1",
            readings_path=tmp_path / "readings.sqlite",
        )
        start = utc_now().replace(microsecond=0) - timedelta(hours=1)

        def readings(first: int, count: int) -> list[tuple[str, bytes]]:
            return [
                (
                    topics.gauge_level("gauge-000"),
                    gauge_payload(start + timedelta(minutes=i), 300 + i),
                )
                for i in range(first, first + count)
            ]

        store = SQLiteStore(settings.readings_path)
        await store.open()
        try:
            async with running_collector(settings, store=store) as collector:
                await probe_until_subscribed(
                    service, [lambda: sample(collector, "floodwatch_readings_received_total")]
                )
                # The takeover attempt while the collector runs, then a reading on it.
                await publish_raw(gauge, readings(0, 1), client_id=settings.mqtt_client_id)
                await wait_until(
                    lambda: sample(collector, "floodwatch_readings_accepted_total") == 1,
                    10,
                    "the attacker's own reading",
                )
                assert collector.health()[0]
            assert not [r for r in caplog.records if "lost broker" in r.getMessage()]

            # Away: 20 readings queue for its session; then the takeover attempt, clean
            # session (it would delete that queue), and 10 more readings meanwhile.
            await publish_raw(gauge, readings(1, 20), client_id="gauge-000")
            await publish_raw(gauge, readings(21, 10), client_id=settings.mqtt_client_id)
            async with running_collector(settings, store=store) as collector:
                await wait_until(
                    lambda: sample(collector, "floodwatch_readings_accepted_total") == 30,
                    20,
                    "every reading queued while the collector was away",
                )
                await wait_until(
                    lambda: sample(collector, "floodwatch_readings_written_total") == 30,
                    20,
                    "them to be stored",
                )
                assert await store.count("gauge-000") == 31
        finally:
            await store.close()
