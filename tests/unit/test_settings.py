"""Settings: parsed once from the environment, errors name the variable, secrets stay secret."""

from __future__ import annotations

import pytest

from floodwatch.errors import ConfigError
from floodwatch.settings import MqttEndpoint, Settings, load_settings


@pytest.mark.parametrize(
    ("url", "host", "port", "tls", "user", "password"),
    [
        ("mqtt://broker", "broker", 1883, False, None, None),
        ("mqtts://broker", "broker", 8883, True, None, None),
        ("mqtt://u:p@10.0.0.5:1884", "10.0.0.5", 1884, False, "u", "p"),
        ("mqtts://svc:s%40cr%3At@mq.example:8884", "mq.example", 8884, True, "svc", "s@cr:t"),
    ],
)
def test_mqtt_url_parses(
    url: str, host: str, port: int, tls: bool, user: str | None, password: str | None
) -> None:
    endpoint = MqttEndpoint.parse(url)
    assert (endpoint.host, endpoint.port, endpoint.tls, endpoint.username) == (
        host,
        port,
        tls,
        user,
    )
    assert (endpoint.password.get_secret_value() if endpoint.password else None) == password


def test_mqtt_password_never_shown() -> None:
    settings = Settings(mqtt_url="mqtt://svc:hunter2@broker:1883")
    assert "hunter2" not in repr(settings)
    assert "hunter2" not in str(settings)
    assert "hunter2" not in settings.mqtt.display()
    assert "hunter2" not in repr(settings.mqtt)
    assert settings.mqtt.display() == "mqtt://svc:***@broker:1883"


def test_influx_secrets_never_shown() -> None:
    settings = Settings(influx_token="tok-123", influx_password="pw-456")
    assert "tok-123" not in repr(settings)
    assert "pw-456" not in repr(settings)


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"FLOODWATCH_MQTT_URL": "http://broker"}, "FLOODWATCH_MQTT_URL"),
        ({"FLOODWATCH_MQTT_URL": "mqtt://broker:notaport"}, "FLOODWATCH_MQTT_URL"),
        ({"FLOODWATCH_INFLUX_URL": "influx:8086"}, "FLOODWATCH_INFLUX_URL"),
        ({"FLOODWATCH_INFLUX_URL": "http://u:p@influx:8086"}, "FLOODWATCH_INFLUX_URL"),
        ({"FLOODWATCH_BATCH_MAX": "0"}, "FLOODWATCH_BATCH_MAX"),
        ({"FLOODWATCH_MQTT_CLIENT_ID": "has space"}, "FLOODWATCH_MQTT_CLIENT_ID"),
        ({"FLOODWATCH_LOG_LEVEL": "LOUD"}, "FLOODWATCH_LOG_LEVEL"),
        ({"FLOODWATCH_TELEGRAM_ADMINS": "12,abc"}, "FLOODWATCH_TELEGRAM_ADMINS"),
        ({"FLOODWATCH_FORECAST_INTERVAL_S": "0"}, "FLOODWATCH_FORECAST_INTERVAL_S"),
        ({"FLOODWATCH_FORECAST_HISTORY_H": "-1"}, "FLOODWATCH_FORECAST_HISTORY_H"),
        ({"FLOODWATCH_FORECAST_LEARN_DAYS": "0"}, "FLOODWATCH_FORECAST_LEARN_DAYS"),
        ({"FLOODWATCH_FORECAST_RELEARN_H": "soon"}, "FLOODWATCH_FORECAST_RELEARN_H"),
        ({"FLOODWATCH_FORECAST_CLIENT_ID": "has space"}, "FLOODWATCH_FORECAST_CLIENT_ID"),
        (
            {
                "FLOODWATCH_MQTT_CLIENT_ID": "fw-1",
                "FLOODWATCH_FORECAST_CLIENT_ID": "fw-1",
            },
            "FLOODWATCH_FORECAST_CLIENT_ID",
        ),
    ],
)
def test_invalid_settings_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], names: str
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert names in str(caught.value)


def test_environment_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOODWATCH_INFLUX_URL", "http://influx:8086/")
    monkeypatch.setenv("FLOODWATCH_TELEGRAM_ADMINS", "12, 34")
    monkeypatch.setenv("FLOODWATCH_MQTT_SHARED_GROUP", "collectors")
    settings = load_settings()
    assert settings.influx_url == "http://influx:8086"
    assert settings.telegram_admins == [12, 34]
    assert settings.mqtt_shared_group == "collectors"


def test_empty_influx_url_means_embedded_store(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOODWATCH_INFLUX_URL", "")
    assert load_settings().influx_url is None


def test_forecaster_defaults() -> None:
    settings = Settings()
    assert settings.forecast_interval_s == 300
    assert settings.forecast_history_h == 168
    assert settings.forecast_learn_days == 365
    assert settings.forecast_relearn_h == 24
    assert settings.forecast_client_id == "floodwatch-forecaster"
    assert settings.forecast_client_id != settings.mqtt_client_id
