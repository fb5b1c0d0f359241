"""The backtest on real recorded floods (../shared/data): the alerts a hydrologist expects.

Each recording is converted once per module (floodwatch.recordings.convert_files, as
`floodwatch convert` does) into a tmp folder; models learn only from data before each
period. Skipped, with the reason, where the shared data is absent.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
import yaml

from alerts.backtest import Options, backtest
from floodwatch.recordings import convert_files
from floodwatch.replay_csv import read_replay
from floodwatch.settings import CATALOG_DIR
from forecasting.evaluation import series_by_station
from tests.harness.shared_data import require_data_dir

pytestmark = pytest.mark.realdata

# Mainz and Düsseldorf with every gauge their forecasts route from, and one step further.
RHINE_FILES = (
    "2310010_Rhein_Basel-Rheinhalle",
    "23700500_Rhein_Philippsburg",
    "23800900_Neckar_MannheimNeckar",
    "24900108_Main_Raunheim",
    "25100100_Rhein_Mainz",
    "25900700_Rhein_Koblenz_Rhein",
    "2710080_Rhein_Bonn",
    "2750010_Rhein_Duesseldorf",
)
AMUR_FILES = ("05004_", "05012_", "05016_", "05019_", "05024_")  # Leninskoye .. Komsomolsk
MARKED = ["rhein-mainz", "rhein-duesseldorf"]


def t(text: str) -> datetime:
    return datetime.fromisoformat(text)


def summary_of(out: Path) -> dict[str, Any]:
    data: dict[str, Any] = orjson.loads((out / "summary.json").read_bytes())
    return data


def gauge(summary: dict[str, Any], station_id: str) -> dict[str, Any]:
    (found,) = [g for g in summary["gauges"] if g["station_id"] == station_id]
    return dict(found)


def crossing(summary: dict[str, Any], station_id: str, key: str, day: str) -> dict[str, Any]:
    (rung,) = [r for r in gauge(summary, station_id)["thresholds"] if r["key"] == key]
    (found,) = [c for c in rung["crossings"] if c["at"].startswith(day)]
    return dict(found)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("backtest-real")


@pytest.fixture(scope="module")
def rhine(folder: Path) -> Path:
    """Dec 2016 .. Oct 2018: a year to learn from before each Rhine period."""
    source = require_data_dir() / "rhine_capRhein"
    path = folder / "rhine.csv"
    files = [source / f"{name}_15min.csv.gz" for name in RHINE_FILES]
    convert_files(files, path, start=t("2016-12-01T00:00+00:00"))
    return path


@pytest.fixture(scope="module")
def rhine_2018(rhine: Path, folder: Path) -> dict[str, Any]:
    out = folder / "rhine-2018"
    options = Options(
        CATALOG_DIR / "rhine.yaml",
        rhine,
        out,
        gauges=MARKED,
        start=t("2017-12-01T00:00+00:00"),
        until=t("2018-02-10T00:00+00:00"),
    )
    assert backtest(options) == 0
    return summary_of(out)


def test_rhine_2018_duesseldorf_mark_i_is_prewarned_6_hours_ahead_and_alerted(
    rhine_2018: dict[str, Any],
) -> None:
    found = crossing(rhine_2018, "rhein-duesseldorf", "mark-i", "2018-01-05")  # 18:07 UTC
    assert not found["missed"]
    assert found["lead_h"] >= 6
    assert found["alert_at"] is not None
    assert 0 <= found["alert_delay_min"] <= 15  # at the first reading above the mark


def test_rhine_2018_mainz_mark_ii_is_found_and_alerted(rhine_2018: dict[str, Any]) -> None:
    found = crossing(rhine_2018, "rhein-mainz", "mark-ii", "2018-01-07")  # 05:45 UTC
    assert not found["missed"]
    assert found["lead_h"] > 0
    assert found["alert_at"] is not None
    assert found["alert_delay_min"] <= 15


def test_rhine_2018_no_danger_alert_at_duesseldorf(rhine_2018: dict[str, Any]) -> None:
    """The crest was 838 cm; mark II is 880 cm."""
    duesseldorf = gauge(rhine_2018, "rhein-duesseldorf")
    (mark_ii,) = [r for r in duesseldorf["thresholds"] if r["key"] == "mark-ii"]
    assert mark_ii["crossings"] == []
    assert not [
        e
        for e in duesseldorf["events"]
        if e["kind"] == "escalation" and e["threshold"]["key"] == "mark-ii"
    ]
    assert 830 <= duesseldorf["peak"]["level"] < 880
    assert duesseldorf["model"]["method"] == "routing"
    assert duesseldorf["model"]["upstream"][0]["station_id"] == "rhein-bonn"


@pytest.mark.parametrize("made_up", [False, True])
def test_rhine_2018_low_water_gives_no_resident_message(
    rhine: Path, folder: Path, made_up: bool
) -> None:
    """The quiet months are a control. With made-up marks as well (twice as far above
    the median as the highest level of the period: 364 cm at Mainz, 288 cm at Düsseldorf),
    so a forecaster over-reacting to a small rise would raise a pre-warning."""
    sets = ["rhein-mainz.mark-i=364", "rhein-duesseldorf.mark-i=288"] if made_up else []
    out = folder / "rhine-low"  # one folder: the second run reuses models and forecasts
    options = Options(
        CATALOG_DIR / "rhine.yaml",
        rhine,
        out,
        sets=sets,
        gauges=MARKED,
        start=t("2018-07-01T00:00+00:00"),
        learn_until=t("2018-06-01T00:00+00:00"),
        plots=False,
    )
    assert backtest(options) == 0
    summary = summary_of(out)
    assert summary["totals"]["resident_messages"] == 0
    assert summary["totals"]["crossings"] == 0
    for station_id in MARKED:
        assert gauge(summary, station_id)["forecasts"]["issued"] > 2500  # hourly, 112 days


@pytest.fixture(scope="module")
def amur_2013(folder: Path) -> dict[str, Any]:
    source = require_data_dir() / "roshydromet_amur_daily"
    files = sorted(p for p in source.glob("*.csv.gz") if p.name.startswith(AMUR_FILES))
    path = folder / "amur.csv"
    convert_files(files, path, end=t("2013-11-01T00:00+00:00"))
    out = folder / "amur"
    options = Options(
        CATALOG_DIR / "amur.yaml",
        path,
        out,
        start=t("2013-05-01T00:00+00:00"),
        learn_until=t("2013-01-01T00:00+00:00"),
    )
    assert backtest(options) == 0
    return summary_of(out)


@pytest.mark.parametrize(
    ("station_id", "key", "day"),
    [
        ("amur-khabarovsk", "nya", "2013-08-02"),
        ("amur-khabarovsk", "oya", "2013-08-15"),
        ("amur-komsomolsk-na-amure", "oya", "2013-08-24"),
    ],
)
def test_amur_2013_crossings_are_prewarned_and_alerted(
    amur_2013: dict[str, Any], station_id: str, key: str, day: str
) -> None:
    found = crossing(amur_2013, station_id, key, day)
    assert not found["missed"]
    assert found["lead_h"] >= 12
    assert found["alert_at"] is not None
    assert found["alert_delay_min"] <= 24 * 60  # daily posts: the next morning's reading
    assert gauge(amur_2013, station_id)["forecasts"]["every_min"] == 24 * 60


@pytest.fixture(scope="module")
def calder(folder: Path) -> Path:
    source = require_data_dir() / "ea_calder" / "raw"
    path = folder / "calder.csv"
    convert_files(sorted(source.glob("*.csv.gz")), path)
    return path


def control_catalog(calder: Path, folder: Path) -> Path:
    """calder.yaml with a made-up level per gauge (the Calder has no official ones):
    twice as far above the median as the highest level of the recording."""
    series = series_by_station(read_replay(calder))
    raw = yaml.safe_load((CATALOG_DIR / "calder.yaml").read_text(encoding="utf-8"))
    for station in raw["stations"]:
        level = series[station["id"]].level
        median, peak = float(np.median(level)), float(level.max())
        value = round(median + 2 * (peak - median), 3)
        names = {"en": "control"}
        station["levels"] = [
            {"key": "control", "value": value, "severity": "warning", "short": "C", "names": names}
        ]
    path = folder / "calder-control.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path


@pytest.mark.parametrize("made_up", [False, True])
def test_calder_gives_no_resident_message(calder: Path, folder: Path, made_up: bool) -> None:
    catalog = control_catalog(calder, folder) if made_up else CATALOG_DIR / "calder.yaml"
    out = folder / "calder"
    options = Options(catalog, calder, out, start=t("2025-08-30T00:00+00:00"), plots=False)
    assert backtest(options) == 0
    summary = summary_of(out)
    assert len(summary["gauges"]) == 5
    assert summary["totals"]["resident_messages"] == 0
    assert summary["totals"]["crossings"] == 0
    if made_up:
        assert all(len(g["thresholds"]) == 1 for g in summary["gauges"])
