"""Replay the recorded floods through the forecaster as if live, and print its skill.

    .venv/bin/python bench/forecast_eval.py [--data ../shared/data] [--period NAME ...]
                                            [--json results.json]

For each period (forecasting/real_floods.py): models learn only from data before the
period; forecasts are issued every hour (every day for the Amur's daily posts) from the
readings known at that moment. Printed per gauge and horizon: Nash–Sutcliffe efficiency
and mean absolute error of the forecaster, of persistence (level stays) and of plain
linear extrapolation; then per threshold each actual crossing with the lead time of the
first correct forecast of it ("first") and of the unbroken run of correct forecasts that
led up to it ("steady"), and every false-alarm episode. Asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from forecasting.real_floods import PERIODS, PeriodResult, StationResult, evaluate_period
from forecasting.routing import LearnedModel

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SHOWN_HORIZONS_H = {1, 3, 6, 12, 24, 48, 72, 120, 240}


def _when(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _lead(seconds: float | None, daily: bool) -> str:
    if seconds is None:
        return "missed"
    return f"{seconds / 86400:.1f} d" if daily else f"{seconds / 3600:.1f} h"


def _describe_model(result: StationResult) -> str:
    model = result.model
    if not isinstance(model, LearnedModel):
        return f"trend only ({model.reason})"
    step = model.step_s / 3600
    links = ", ".join(
        f"{link.station_id} {link.lag_steps * step:g} h (r={link.correlation})"
        for link in model.upstream
    )
    return f"{model.method}" + (f": {links}" if links else "")


def print_station(result: StationResult, daily: bool) -> None:
    print(f"\n  {result.station.id} — {_describe_model(result)}")
    print(
        "     horizon   cases   NSE model / persist / linear     MAE model / persist / linear"
        "   in 90% band"
    )
    for skill in result.skill:
        if skill.horizon_h not in SHOWN_HORIZONS_H:
            continue
        print(
            f"     {skill.horizon_h:>5g} h  {skill.cases:>6}   "
            f"{skill.nse:8.4f} {skill.nse_persistence:8.4f} {skill.nse_linear:8.4f}     "
            f"{skill.mae:7.2f} {skill.mae_persistence:7.2f} {skill.mae_linear:7.2f}"
            f"   {skill.band_coverage:6.1%}"
        )
    for verdict in result.verdicts:
        rung = verdict.threshold
        label = f"{rung.short} {rung.value:g} {result.station.unit}"
        if result.control_ladder:
            label += " (made-up control level)"
        scores = verdict.verdicts.scores
        if not scores:
            print(f"     {label}: not crossed")
        for score in scores:
            print(
                f"     {label}: crossed {_when(score.crossing_at)}; first correct forecast "
                f"{_lead(score.lead_s, daily)} ahead, steady {_lead(score.steady_lead_s, daily)}"
            )
        for first, last in verdict.verdicts.false_alarms:
            print(f"     {label}: FALSE ALARM called {_when(first)} .. {_when(last)}")


def as_json(result: PeriodResult) -> dict[str, Any]:
    return {
        "period": result.period.name,
        "false_alarms": result.false_alarms,
        "stations": [
            {
                "station_id": s.station.id,
                "model": _describe_model(s),
                "skill": [vars_of_skill(k) for k in s.skill],
                "crossings": [
                    {
                        "threshold": v.threshold.key,
                        "value": v.threshold.value,
                        "crossed": [_when(c.crossing_at) for c in v.verdicts.scores],
                        "lead_s": [c.lead_s for c in v.verdicts.scores],
                        "steady_lead_s": [c.steady_lead_s for c in v.verdicts.scores],
                        "false_alarms": [list(e) for e in v.verdicts.false_alarms],
                    }
                    for v in s.verdicts
                ],
            }
            for s in result.stations
        ],
    }


def vars_of_skill(skill: Any) -> dict[str, Any]:
    return {name: getattr(skill, name) for name in skill.__slots__}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--period", action="append", help="substring of a period name")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    if not args.data.is_dir():
        raise SystemExit(f"no shared recordings at {args.data}")
    chosen = [
        p
        for p in PERIODS
        if not args.period or any(s.lower() in p.name.lower() for s in args.period)
    ]
    results = []
    for period in chosen:
        started = time.perf_counter()
        result = evaluate_period(period, args.data)
        results.append(result)
        daily = period.issue_step_h >= 24
        print(
            f"\n=== {period.name}: forecasts issued every {period.issue_step_h:g} h "
            f"from {period.start[:10]} to {period.end[:10]}, models learned before "
            f"{period.train_until[:10]} ({time.perf_counter() - started:.1f} s)"
        )
        for station in result.stations:
            print_station(station, daily)
        if period.control:
            print(f"\n  control: {result.false_alarms} false crossing forecasts")
    if args.json:
        args.json.write_text(json.dumps([as_json(r) for r in results], indent=1))


if __name__ == "__main__":
    main()
