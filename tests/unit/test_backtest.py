"""The backtest on a synthetic replay: two gauges, a wave through a warning and a danger
rung and back. Pure: no servers; files only in tmp_path."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from alerts.backtest import Options, backtest, issue_times
from alerts.backtest_input import BacktestError, apply_overrides
from floodwatch.catalog import load_catalog
from floodwatch.cli import main
from tests.harness.brook import DAYS, LAG_H, T0, brook_files, run


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    return brook_files(tmp_path)


def gauge(summary: dict[str, Any], station_id: str) -> dict[str, Any]:
    (found,) = [g for g in summary["gauges"] if g["station_id"] == station_id]
    return dict(found)


def rung(summary: dict[str, Any], station_id: str, key: str) -> dict[str, Any]:
    (found,) = [t for t in gauge(summary, station_id)["thresholds"] if t["key"] == key]
    return dict(found)


def ts(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_each_crossing_is_prewarned_then_alerted_and_the_gauges_clear(
    files: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    summary = run(files, tmp_path / "out")
    for station_id in ("upper", "lower"):
        for key in ("warn", "danger"):
            (crossing,) = rung(summary, station_id, key)["crossings"]
            assert not crossing["missed"], (station_id, key)
            assert crossing["lead_h"] > 0, (station_id, key)
            assert ts(crossing["prewarned_at"]) < ts(crossing["at"]) <= ts(crossing["alert_at"])
            assert crossing["alert_delay_min"] <= 15  # the next reading
        events = gauge(summary, station_id)["events"]
        kinds = [e["kind"] for e in events]
        assert kinds.count("escalation") == 2
        assert kinds[-1] == "all_clear"
        messages = gauge(summary, station_id)["messages"]
        assert messages["total"] == sum(1 for e in events if not e["operator_only"])
        assert messages["by_kind"]["escalation"] == 2
        assert messages["by_kind"]["all_clear"] == 1
    # The warning rung is crossed about 20 h into the rise, 6 h later downstream.
    upper = ts(rung(summary, "upper", "warn")["crossings"][0]["at"])
    lower = ts(rung(summary, "lower", "warn")["crossings"][0]["at"])
    assert lower - upper == pytest.approx(timedelta(hours=LAG_H), abs=timedelta(minutes=16))
    printed = capsys.readouterr().out
    assert "lower" in printed
    assert "D 250 cm" in printed
    assert re.search(r"hydrographs; \d+\.\d s$", printed.strip())
    assert summary["totals"]["crossings"] == 4
    assert summary["totals"]["misses"] == 0


def test_a_rung_raised_above_the_peak_is_neither_crossed_nor_alerted(
    files: tuple[Path, Path], tmp_path: Path
) -> None:
    before = run(files, tmp_path / "out")
    after = run(files, tmp_path / "out", "--set", "lower.danger=400")
    danger = rung(after, "lower", "danger")
    assert danger["value"] == 400
    assert danger["catalog_value"] == 250
    assert danger["crossings"] == []
    events = gauge(after, "lower")["events"]
    assert not [
        e for e in events if e["kind"] == "escalation" and e["threshold"]["key"] == "danger"
    ]
    assert danger["prewarnings"] < rung(before, "lower", "danger")["prewarnings"]
    assert gauge(after, "lower")["messages"]["total"] < gauge(before, "lower")["messages"]["total"]
    # The other gauge and rung are untouched.
    assert rung(after, "upper", "danger") == rung(before, "upper", "danger")
    assert after["settings"]["set"] == ["lower.danger=400"]


def test_a_rise_that_stops_short_is_a_false_alarm(files: tuple[Path, Path], tmp_path: Path) -> None:
    """Danger set 10 cm above the 300 cm peak: the steep rise makes the forecast expect it,
    the crest makes it withdraw the pre-warning: one false alarm, no crossing."""
    summary = run(files, tmp_path / "out", "--set", "upper.danger=310")
    danger = rung(summary, "upper", "danger")
    assert danger["crossings"] == []
    assert danger["prewarnings"] >= 1
    assert danger["false_alarms"] >= 1
    episode = next(e for e in danger["episodes"] if e["false_alarm"])
    assert episode["outcome"] in ("withdrawn", "expired")


@pytest.mark.parametrize(
    ("option", "needle"),
    [
        (
            ["--set", "lower.warn=300"],
            "lower.warn=300: station 'lower': levels: 'danger' (250.0) must",
        ),
        (["--set", "lower.flood=300"], "station 'lower' has no level 'flood' (warn, danger)"),
        (["--set", "nowhere.warn=1"], "station 'nowhere' is not in"),
        (["--set", "lower-warn=1"], "expected STATION.LEVEL=VALUE"),
        (["--set", "lower.warn=high"], "'high' is not a number"),
        (["--set", "lower.warn=nan"], "finite number"),
        (["--margin", "lower=-5"], "station 'lower': clear_margin"),
        (["--gauges", "elsewhere"], "station 'elsewhere' is not in"),
    ],
)
def test_invalid_overrides_are_refused_with_a_clear_error(
    files: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    option: list[str],
    needle: str,
) -> None:
    catalog, data = files
    argv = ["backtest", "--stations", str(catalog), "--data", str(data)]
    assert main([*argv, "--out", str(tmp_path / "out"), *option]) == 2
    err = capsys.readouterr().err
    assert err.startswith("floodwatch: ")
    assert needle in err
    assert not (tmp_path / "out" / "summary.json").exists()


def test_overrides_keep_the_catalog_and_change_only_the_named_values(
    files: tuple[Path, Path],
) -> None:
    catalog = load_catalog(files[0])
    stations = apply_overrides(catalog, ["lower.warn=170"], ["lower=15"])
    lower = stations["lower"]
    assert [r.value for r in lower.levels] == [170, 250]
    assert lower.clear_margin == 15
    assert stations["upper"] is catalog["upper"]
    assert catalog["lower"].levels[0].value == 180
    with pytest.raises(BacktestError, match="clear_margin"):
        apply_overrides(catalog, [], ["upper=-1"])


def test_summary_schema(files: tuple[Path, Path], tmp_path: Path) -> None:
    summary = run(files, tmp_path / "out", "--issue-every-min", "30")
    assert summary["schema"] == "floodwatch-backtest/1"
    settings = summary["settings"]
    assert set(settings) >= {"catalog", "data", "from", "to", "learn_until", "rules", "set"}
    assert settings["issue_every_min"] == 30
    assert settings["from"] == T0.isoformat()  # under 60 days of data: from its start
    assert settings["rules"]["clear_dwell_s"] == 1800
    assert set(summary["totals"]) == {
        "gauges",
        "crossings",
        "prewarned",
        "misses",
        "false_alarms",
        "resident_messages",
    }
    for g in summary["gauges"]:
        assert set(g) >= {"station_id", "model", "forecasts", "thresholds", "messages", "plot"}
        # No history before the start: the forecaster extrapolates the trend.
        assert g["model"]["method"] == "trend"
        assert "readings of history" in g["model"]["reason"]
        assert set(g["forecasts"]["methods"]) <= {"trend", "none"}
        assert g["forecasts"]["every_min"] == 30
        assert g["forecasts"]["issued"] == pytest.approx(DAYS * 48, abs=2)
        for t in g["thresholds"]:
            assert set(t) >= {"key", "short", "value", "severity", "crossings", "misses"}
            assert set(t) >= {"prewarnings", "false_alarms", "episodes"}
            for c in t["crossings"]:
                assert set(c) == {
                    "at",
                    "prewarned_at",
                    "lead_h",
                    "expected_at",
                    "alert_at",
                    "alert_delay_min",
                    "missed",
                }


def test_one_valid_png_hydrograph_per_gauge(files: tuple[Path, Path], tmp_path: Path) -> None:
    summary = run(files, tmp_path / "out")
    for g in summary["gauges"]:
        png = tmp_path / "out" / g["plot"]
        data = png.read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n")
        assert len(data) > 20_000


def test_a_second_run_reuses_models_and_forecasts(files: tuple[Path, Path], tmp_path: Path) -> None:
    catalog, data = files
    options = Options(catalog, data, tmp_path / "out", plots=False)
    assert backtest(options) == 0
    first = orjson.loads((tmp_path / "out" / "summary.json").read_bytes())
    cached = sorted(p.name for p in (tmp_path / "out" / "cache").iterdir())
    assert cached == ["forecasts-lower.json", "forecasts-upper.json", "models.json"]
    stamps = {p: p.stat().st_mtime_ns for p in (tmp_path / "out" / "cache").iterdir()}
    assert backtest(options) == 0
    second = orjson.loads((tmp_path / "out" / "summary.json").read_bytes())
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    first.pop("elapsed_s")
    second.pop("elapsed_s")
    assert first == second


def test_forecasts_are_issued_on_the_clock_from_a_fresh_reading() -> None:
    t = T0.timestamp() + 900.0 * np.arange(12, dtype=np.float64)
    issued = issue_times(t, T0.timestamp() + 1800, 3600.0)
    assert [(x - T0.timestamp()) / 60 for x in issued] == [30, 60, 120]
