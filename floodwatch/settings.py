"""The one settings object. Every value comes from `FLOODWATCH_*` environment variables
(or a `.env` file); credentials are secrets and never appear in logs or reprs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Annotated
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from floodwatch.errors import ConfigError

CATALOG_DIR = Path(__file__).parent / "catalogs"
ENV_PREFIX = "FLOODWATCH_"


@dataclass(frozen=True)
class MqttEndpoint:
    """Where the broker is and how to log in; `repr` hides the password."""

    host: str
    port: int
    tls: bool
    username: str | None
    password: SecretStr | None

    @classmethod
    def parse(cls, url: str) -> MqttEndpoint:
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts"):
            raise ValueError("must start with mqtt:// or mqtts://")
        if not parts.hostname:
            raise ValueError("has no host")
        tls = parts.scheme == "mqtts"
        try:
            port = parts.port or (8883 if tls else 1883)
        except ValueError as exc:
            raise ValueError(f"has an invalid port: {exc}") from None
        return cls(
            host=parts.hostname,
            port=port,
            tls=tls,
            username=unquote(parts.username) if parts.username else None,
            password=SecretStr(unquote(parts.password)) if parts.password else None,
        )

    def display(self) -> str:
        user = f"{self.username}:***@" if self.username else ""
        return f"{'mqtts' if self.tls else 'mqtt'}://{user}{self.host}:{self.port}"


class Settings(BaseSettings):
    """Floodwatch configuration; see the README's configuration reference."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_file=".env", extra="ignore", frozen=True
    )

    # Broker
    mqtt_url: SecretStr = SecretStr("mqtt://127.0.0.1:1883")
    mqtt_client_id: str = Field("floodwatch-collector", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    mqtt_shared_group: str | None = Field(None, pattern=r"^[A-Za-z0-9_-]{1,64}$")
    mqtt_keepalive_s: int = Field(30, ge=5, le=3600)

    # Readings store: InfluxDB when a URL is set, else the embedded SQLite store
    influx_url: str | None = None
    influx_database: str = Field("floodwatch", min_length=1)
    influx_token: SecretStr | None = None
    influx_username: str | None = None
    influx_password: SecretStr | None = None
    influx_timeout_s: float = Field(10.0, gt=0)
    readings_path: Path = Path("var/readings.sqlite")

    # Station catalog and local state
    stations: Path = CATALOG_DIR / "demo.yaml"
    state_path: Path = Path("var/state.sqlite")
    spool_path: Path = Path("var/spool.sqlite")

    # Collector
    max_payload_bytes: int = Field(4096, ge=64, le=1_048_576)
    max_future_s: float = Field(300.0, ge=0)
    max_age_s: float = Field(30 * 86400.0, gt=0)
    batch_max: int = Field(2000, ge=1, le=20000)
    flush_interval_s: float = Field(0.1, gt=0, le=10)
    republish_clean: bool = True
    state_interval_s: float = Field(1.0, ge=0)
    # Station state and collector statistics written to InfluxDB for Grafana this often
    # (0: never); see collector/stats.py.
    stats_interval_s: float = Field(10.0, ge=0)

    # Forecaster
    forecast_interval_s: float = Field(300.0, gt=0)
    forecast_history_h: float = Field(168.0, gt=0)
    forecast_learn_days: float = Field(365.0, gt=0)
    forecast_relearn_h: float = Field(24.0, gt=0)
    forecast_client_id: str = Field("floodwatch-forecaster", pattern=r"^[A-Za-z0-9_.-]{1,64}$")

    # Alert engine
    alert_client_id: str = Field("floodwatch-alerts", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    alert_clear_dwell_s: float = Field(1800.0, ge=0)
    alert_offline_after_s: float = Field(3600.0, gt=0)
    alert_fault_clear_readings: int = Field(4, ge=1)
    alert_prewarning_shift_s: float = Field(7200.0, ge=0)
    alert_tick_s: float = Field(30.0, gt=0)
    # After a restart, readings stored during the downtime are decided, up to this far back.
    alert_catch_up_h: float = Field(48.0, ge=0)
    catalog_poll_s: float = Field(5.0, gt=0)
    # Local time in messages; a station's own `timezone` in the catalog wins.
    timezone: str = "UTC"
    # CAP feed: the <sender> of every alert, and how long an all-clear (Cancel) stays listed.
    cap_sender: str = Field("floodwatch@localhost", pattern=r"^[^\s,<&]+$")
    cap_cancel_keep_h: float = Field(12.0, gt=0)

    # HTTP health and metrics
    http_host: str = "127.0.0.1"
    http_port: int = Field(8080, ge=0, le=65535)

    # Telegram (used by the bot)
    telegram_token: SecretStr | None = None
    telegram_api_url: str | None = None
    telegram_admins: Annotated[list[int], NoDecode] = Field(default_factory=list)
    # Alert delivery: messages per second overall (Telegram allows about 30), attempts
    # before a message counts as failed, and Telegram's paid broadcasts (up to 1000/s).
    telegram_rate_per_s: float = Field(25.0, gt=0, le=1000)
    telegram_allow_paid_broadcast: bool = False
    telegram_max_attempts: int = Field(5, ge=1, le=100)
    # Where `floodwatch backtest --out` reports are kept; the bot's /backtest shows the newest.
    backtest_dir: Path = Path("var/backtests")

    log_level: str = Field("INFO", pattern=r"^(DEBUG|INFO|WARNING|ERROR)$")

    @field_validator("mqtt_url")
    @classmethod
    def _mqtt_url_parses(cls, value: SecretStr) -> SecretStr:
        MqttEndpoint.parse(value.get_secret_value())
        return value

    @field_validator("influx_url")
    @classmethod
    def _influx_url_is_http(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL with a host")
        if parts.username or parts.password:
            raise ValueError(
                "must not carry credentials; use FLOODWATCH_INFLUX_TOKEN or "
                "FLOODWATCH_INFLUX_USERNAME/PASSWORD"
            )
        return value.rstrip("/")

    @field_validator("forecast_client_id")
    @classmethod
    def _own_client_id(cls, value: str, info: ValidationInfo) -> str:
        # Two clients with one id take the session from each other, endlessly.
        if value == info.data.get("mqtt_client_id"):
            raise ValueError("must differ from FLOODWATCH_MQTT_CLIENT_ID")
        return value

    @field_validator("alert_client_id")
    @classmethod
    def _alert_id_is_unique(cls, value: str, info: ValidationInfo) -> str:
        others = (info.data.get("mqtt_client_id"), info.data.get("forecast_client_id"))
        if value in others:
            raise ValueError(
                "must differ from FLOODWATCH_MQTT_CLIENT_ID and FLOODWATCH_FORECAST_CLIENT_ID"
            )
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        check_timezone(value)
        return value

    @field_validator("telegram_admins", mode="before")
    @classmethod
    def _comma_separated_ids(cls, value: object) -> object:
        if isinstance(value, str):
            return [int(part) for part in value.replace(" ", "").split(",") if part]
        return value

    @property
    def mqtt(self) -> MqttEndpoint:
        return MqttEndpoint.parse(self.mqtt_url.get_secret_value())

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def max_future(self) -> timedelta:
        return timedelta(seconds=self.max_future_s)

    @property
    def max_age(self) -> timedelta:
        return timedelta(seconds=self.max_age_s)

    @property
    def forecast_learn_period(self) -> timedelta:
        return timedelta(days=self.forecast_learn_days)

    @property
    def forecast_relearn_after(self) -> timedelta:
        return timedelta(hours=self.forecast_relearn_h)


def check_timezone(name: str) -> None:
    """Raise ValueError unless `name` is an IANA time zone this system knows."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {name!r}; use an IANA name such as Europe/Berlin or UTC"
        ) from None


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment; errors name the environment variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            field = ".".join(str(part) for part in error["loc"])
            lines.append(f"{ENV_PREFIX}{field.upper()}: {error['msg']}")
        raise ConfigError("invalid settings:\n  " + "\n  ".join(lines)) from None
