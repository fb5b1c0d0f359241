"""A small two-gauge river ("Brook") with one flood wave, and a backtest run over it.

Used by the backtest's own tests and by the bot's /backtest tests, which need a real report.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from floodwatch.cli import main
from floodwatch.replay_csv import ReplayRow, write_replay

T0 = datetime(2024, 3, 1, tzinfo=UTC)
STEP = timedelta(minutes=15)
DAYS = 6
LAG_H = 6.0  # the wave reaches the lower gauge this much later
CATALOG = """
stations:
  - id: upper
    names: {en: Upper Brook}
    river: {en: Brook}
    lat: 50.0
    lon: 8.0
    unit: cm
    levels:
      - {key: warn, value: 180, severity: warning, short: W, names: {en: Warning}}
      - {key: danger, value: 250, severity: danger, short: D, names: {en: Danger}}
    clear_margin: 10
  - id: lower
    names: {en: Lower Brook}
    river: {en: Brook}
    lat: 50.1
    lon: 8.1
    unit: cm
    levels:
      - {key: warn, value: 180, severity: warning, short: W, names: {en: Warning}}
      - {key: danger, value: 250, severity: danger, short: D, names: {en: Danger}}
    clear_margin: 10
    upstream: [upper]
"""


def wave(hours: float) -> float:
    """100 cm with a slight wiggle (a real gauge never flatlines), a raised-cosine wave to
    300 cm: 48 h up from hour 36, 48 h down."""
    base = 100.0 + 1.5 * math.sin(hours / 3.0)
    x = (hours - 36.0) / 48.0
    if 0.0 <= x <= 2.0:
        base += 100.0 * (1 - math.cos(math.pi * x))
    return round(base, 1)


def rows() -> Iterator[ReplayRow]:
    for i in range(DAYS * 96):
        ts = T0 + i * STEP
        hours = i * STEP.total_seconds() / 3600
        yield ReplayRow("upper", ts, wave(hours))
        yield ReplayRow("lower", ts, wave(hours - LAG_H))


def brook_files(tmp_path: Path) -> tuple[Path, Path]:
    """The catalog and the replay CSV, written into `tmp_path`."""
    catalog = tmp_path / "brook.yaml"
    catalog.write_text(CATALOG, encoding="utf-8")
    data = tmp_path / "brook.csv"
    write_replay(data, rows())
    return catalog, data


def run(files: tuple[Path, Path], out: Path, *extra: str) -> dict[str, Any]:
    catalog, data = files
    argv = ["backtest", "--stations", str(catalog), "--data", str(data), "--out", str(out)]
    assert main([*argv, *extra]) == 0
    summary: dict[str, Any] = orjson.loads((out / "summary.json").read_bytes())
    return summary
