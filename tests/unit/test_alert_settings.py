"""The alert engine's settings and the catalog's per-station time zone."""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from alerts.engine import rules_from
from floodwatch.catalog import load_catalog, parse_catalog
from floodwatch.errors import ConfigError
from floodwatch.settings import CATALOG_DIR, Settings, load_settings


def test_alert_defaults() -> None:
    settings = Settings()
    rules = rules_from(settings)
    assert (rules.clear_dwell_s, rules.offline_after_s) == (1800, 3600)
    assert (rules.fault_clear_readings, rules.prewarning_shift_s) == (4, 7200)
    assert (settings.alert_tick_s, settings.catalog_poll_s) == (30, 5)
    assert settings.alert_client_id == "floodwatch-alerts"
    assert settings.zone == ZoneInfo("UTC")


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({"FLOODWATCH_TIMEZONE": "Mars/Olympus_Mons"}, "FLOODWATCH_TIMEZONE"),
        ({"FLOODWATCH_TIMEZONE": "../../etc/passwd"}, "FLOODWATCH_TIMEZONE"),
        ({"FLOODWATCH_ALERT_TICK_S": "0"}, "FLOODWATCH_ALERT_TICK_S"),
        ({"FLOODWATCH_ALERT_CLEAR_DWELL_S": "-1"}, "FLOODWATCH_ALERT_CLEAR_DWELL_S"),
        ({"FLOODWATCH_ALERT_FAULT_CLEAR_READINGS": "0"}, "FLOODWATCH_ALERT_FAULT_CLEAR_READINGS"),
        ({"FLOODWATCH_CATALOG_POLL_S": "0"}, "FLOODWATCH_CATALOG_POLL_S"),
        ({"FLOODWATCH_ALERT_CLIENT_ID": "floodwatch-collector"}, "FLOODWATCH_ALERT_CLIENT_ID"),
        (
            {"FLOODWATCH_FORECAST_CLIENT_ID": "x", "FLOODWATCH_ALERT_CLIENT_ID": "x"},
            "FLOODWATCH_ALERT_CLIENT_ID",
        ),
    ],
)
def test_invalid_alert_settings_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], name: str
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError, match=name):
        load_settings()


def test_a_local_time_zone_setting() -> None:
    assert Settings(timezone="Asia/Vladivostok").zone == ZoneInfo("Asia/Vladivostok")


def _station(**extra: object) -> dict[str, object]:
    return {
        "id": "g1",
        "names": {"en": "G"},
        "river": {"en": "R"},
        "lat": 50,
        "lon": 8,
        "unit": "cm",
        **extra,
    }


def test_a_station_time_zone_wins_over_the_default() -> None:
    catalog = parse_catalog({"stations": [_station(timezone="Europe/Berlin"), _station(id="g2")]})
    assert catalog["g1"].zone("Asia/Yakutsk") == ZoneInfo("Europe/Berlin")
    assert catalog["g2"].zone("Asia/Yakutsk") == ZoneInfo("Asia/Yakutsk")
    assert catalog["g2"].zone() == ZoneInfo("UTC")


def test_an_unknown_station_time_zone_is_refused_naming_the_field() -> None:
    with pytest.raises(ConfigError, match=r"station 'g1': timezone: .*unknown time zone"):
        parse_catalog({"stations": [_station(timezone="Europe/Atlantis")]})


@pytest.mark.parametrize(
    ("catalog", "station_id", "zone"),
    [
        ("rhine.yaml", "rhein-mainz", "Europe/Berlin"),
        ("calder.yaml", "calder-hebden-bridge", "Europe/London"),
        ("amur.yaml", "amur-blagoveshchensk", "Asia/Yakutsk"),
        ("amur.yaml", "amur-pashkovo", "Asia/Vladivostok"),
        ("amur.yaml", "amur-khabarovsk", "Asia/Vladivostok"),
        ("amur.yaml", "amur-komsomolsk-na-amure", "Asia/Vladivostok"),
    ],
)
def test_shipped_catalogs_give_local_zones(catalog: str, station_id: str, zone: str) -> None:
    assert load_catalog(Path(CATALOG_DIR) / catalog)[station_id].timezone == zone


def test_every_shipped_real_station_has_a_zone() -> None:
    for name in ("rhine.yaml", "calder.yaml", "amur.yaml"):
        assert all(station.timezone for station in load_catalog(CATALOG_DIR / name).values())
