"""/backtest's reading of a real backtest report (telegram_bot/backtest_digest.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from telegram_bot.backtest_digest import MAX_PLOTS, digest, plots_to_show
from tests.harness.bot_api import MESSAGE_LIMIT
from tests.harness.brook import brook_files, run
from tests.harness.telegram_html import assert_valid_telegram_html


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """One real run of `floodwatch backtest` with a proposed change at the lower gauge."""
    tmp = tmp_path_factory.mktemp("brook")
    out = tmp / "lower-danger-240"
    return out, run(brook_files(tmp), out, "--set", "lower.danger=240")


def test_the_digest_says_what_was_tried_and_what_happened(
    report: tuple[Path, dict[str, Any]],
) -> None:
    out, data = report
    text = digest(data, out.name, "en")
    assert text.startswith("<b>Backtest</b> lower-danger-240: 2024-03-01 00:00 UTC – ")
    assert "Tried: lower.danger=240" in text
    totals = data["totals"]
    assert (
        f"{totals['crossings']} crossings on 2 gauges: {totals['prewarned']} pre-warned, "
        f"{totals['misses']} missed" in text
    )
    assert "<b>Lower Brook</b> (peak 30" in text
    assert "• D 240 cm (catalog 250): reached 2024-03-" in text
    lower_danger = next(
        r
        for g in data["gauges"]
        if g["station_id"] == "lower"
        for r in g["thresholds"]
        if r["key"] == "danger"
    )
    lead = lower_danger["crossings"][0]["lead_h"]
    assert f"pre-warned {lead:.1f} h ahead" in text
    assert_valid_telegram_html(text)
    assert len(text) <= MESSAGE_LIMIT


def test_the_digest_in_russian(report: tuple[Path, dict[str, Any]]) -> None:
    out, data = report
    text = digest(data, out.name, "ru")
    assert "<b>Бэктест</b>" in text
    assert "Проверено: lower.danger=240" in text
    assert "(в каталоге 250)" in text
    assert_valid_telegram_html(text)


def test_a_long_report_is_cut_between_gauges(report: tuple[Path, dict[str, Any]]) -> None:
    out, data = report
    many = {**data, "gauges": data["gauges"] * 40}
    text = digest(many, out.name, "en", limit=1500)
    assert len(text) <= 1500 + 200
    assert "more gauges: see summary.json" in text
    assert_valid_telegram_html(text)


@pytest.mark.parametrize(
    "data",
    [
        {"misses": 0, "false_alarms": 2},
        {"schema": "floodwatch-demo/1"},
        ["not", "a", "mapping"],
    ],
)
def test_other_files_are_named_not_rendered(data: object) -> None:
    text = digest(data, "<odd>", "en")
    assert "not a Floodwatch backtest report" in text
    assert "&lt;odd&gt;" in text
    assert plots_to_show(data, Path(".")) == []


def test_plots_of_the_changed_gauge_first(report: tuple[Path, dict[str, Any]]) -> None:
    out, data = report
    assert plots_to_show(data, out) == [(out / "lower.png").resolve()]
    unchanged = {**data, "settings": {**data["settings"], "set": []}}
    shown = plots_to_show(unchanged, out)
    assert shown == [(out / "upper.png").resolve(), (out / "lower.png").resolve()]
    assert len(shown) <= MAX_PLOTS


def test_a_plot_path_out_of_the_folder_is_never_sent(
    report: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    out, data = report
    outside = tmp_path / "secret.png"
    outside.write_bytes(b"\x89PNG")
    forged = {
        **data,
        "gauges": [{**g, "plot": f"../../{outside}"} for g in data["gauges"]],
    }
    assert plots_to_show(forged, out) == []
