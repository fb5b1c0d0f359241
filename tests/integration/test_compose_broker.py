"""The compose stack's broker accounts, for real: deploy/mosquitto/mkpasswd.sh writes the
password file from the environment and a gauges file with the local `mosquitto_passwd`, and
a real Mosquitto running the shipped mosquitto.conf and acl with that file lets each
account do exactly what the ACL says (test_security.py covers the collector behind it)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from pydantic import SecretStr

from floodwatch import topics
from floodwatch.errors import BrokerUnavailable
from floodwatch.mqtt import connect, make_client
from floodwatch.settings import MqttEndpoint
from tests.harness.inprocess import publish_raw
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
        "PASSWD_FILE": str(tmp_path / "passwd"),
    }
    return subprocess.run(["sh", str(MKPASSWD)], env=env, capture_output=True, text=True)


def endpoint(broker: MosquittoServer, user: str, password: str) -> MqttEndpoint:
    return MqttEndpoint("127.0.0.1", broker.port, False, user, SecretStr(password))


async def test_generated_accounts_can_do_exactly_what_the_shipped_acl_allows(
    tmp_path: Path,
) -> None:
    lines = ["# gauges of the test", "", *(f"{sid}:{pw}" for sid, pw in GAUGES.items())]
    # Windows line ends and a last line without one, as hand-edited files have them.
    result = mkpasswd(tmp_path, "\r\n".join(lines))
    assert result.returncode == 0, result.stderr
    assert "2 gauge account(s)" in result.stdout
    passwd = tmp_path / "passwd"
    assert passwd.stat().st_mode & 0o077 == 0, "the password file is private"
    text = passwd.read_text() + result.stdout + result.stderr
    leaked = [pw for pw in (SERVICE_PASSWORD, VIEWER_PASSWORD, *GAUGES.values()) if pw in text]
    assert not leaked, "passwords are stored hashed and never printed"

    with MosquittoServer(tmp_path / "broker", acl=True, passwd_file=passwd) as broker:
        service = endpoint(broker, "floodwatch", SERVICE_PASSWORD)
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
            await publish_raw(
                viewer, [("floodwatch/alerts/gauge-b", b"forged by the viewer")], client_id="v"
            )
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

        for user, password in [
            ("gauge-a", GAUGES["gauge-b"]),  # another gauge's password
            ("gauge-c", "anything"),  # not in the gauges file
            ("floodwatch", SERVICE_PASSWORD + "x"),
        ]:
            client = make_client(endpoint(broker, user, password), f"refused-{user}")
            with pytest.raises(BrokerUnavailable, match="refused"):
                await connect(client, endpoint(broker, user, password), wait_s=10)
            client.loop_stop()


def test_without_a_gauges_file_only_the_two_service_accounts_are_written(
    tmp_path: Path,
) -> None:
    result = mkpasswd(tmp_path, None)
    assert result.returncode == 0, result.stderr
    users = [line.split(":", 1)[0] for line in (tmp_path / "passwd").read_text().splitlines()]
    assert users == ["floodwatch", "viewer"]


@pytest.mark.parametrize(
    ("gauges", "service", "message"),
    [
        ("Gauge-A:pw\n", SERVICE_PASSWORD, "line 1: 'Gauge-A' is not a station id"),
        ("# ok\ngauge_a:pw\n", SERVICE_PASSWORD, "line 2: 'gauge_a' is not a station id"),
        ("gauge-a pw\n", SERVICE_PASSWORD, "line 1: expected station_id:password"),
        ("gauge-a:\n", SERVICE_PASSWORD, "line 1: 'gauge-a' has an empty password"),
        ("gauge-a:x\ngauge-a:y\n", SERVICE_PASSWORD, "line 2: 'gauge-a' is listed twice"),
        ("viewer:x\n", SERVICE_PASSWORD, "'viewer' is listed twice or is a reserved"),
        (f"{'g' * 65}:x\n", SERVICE_PASSWORD, "is longer than 64 characters"),
        ("", "has@at", "MQTT_FLOODWATCH_PASSWORD may only hold"),
        ("", "", "MQTT_FLOODWATCH_PASSWORD is not set"),
    ],
)
def test_a_bad_gauges_file_or_password_stops_the_broker_start_and_names_the_line(
    tmp_path: Path, gauges: str, service: str, message: str
) -> None:
    (tmp_path / "passwd").write_text("previous file\n")
    result = mkpasswd(tmp_path, gauges, service=service)
    assert result.returncode != 0
    assert message in result.stderr
    # The previous file stays as it was, and no half-written one is left behind.
    assert (tmp_path / "passwd").read_text() == "previous file\n"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["gauges.txt", "passwd"]
