"""CPU time of one forecasting pass over many gauges (the forecaster's scheduled job).

    .venv/bin/python bench/forecast_pass.py [--gauges 1000] [--days 7] [--repeat 5]

Synthetic gauges in chains of five (each downstream gauge has the one above as upstream,
so four in five forecast with a learned routing model, the head with its own history),
15-minute readings for `--days`. A pass is what the service does per tick minus I/O:
`forecast_station` for every gauge, then the points to store and the JSON summary to
publish. Learning the models is done once beforehand and not counted. Prints CPU seconds
per pass (goal: <= 1 s for 1,000 gauges with 7 days of history) and per gauge.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time

import numpy as np

from floodwatch.catalog import Threshold
from forecasting.forecast import forecast_station
from forecasting.learn import learn_model
from forecasting.publish import summary, to_points
from forecasting.routing import LearnedModel
from forecasting.series import Series

STEP = 900.0
HOUR = 3600.0
CHAIN = 5
HORIZONS = [h * HOUR for h in (1, 2, 3, 6, 9, 12, 18, 24)]
LADDER = (
    Threshold(key="watch", value=300, severity="watch", short="W", names={"en": "watch"}),
    Threshold(key="warning", value=350, severity="warning", short="I", names={"en": "I"}),
    Threshold(key="danger", value=420, severity="danger", short="II", names={"en": "II"}),
)


def wave_series(t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    level = np.full(t.size, 200.0)
    for centre in rng.uniform(t[0], t[-1] + 2 * 86400, size=3):
        level += rng.uniform(30, 200) * np.exp(-(((t - centre) / (rng.uniform(8, 30) * HOUR)) ** 2))
    return level + rng.normal(0, 0.5, t.size)


def build(gauges: int, days: float) -> tuple[dict[str, Series], dict[str, LearnedModel | None]]:
    rng = np.random.default_rng(42)
    now = 1_763_769_600.0  # 2025-11-22 00:00 UTC
    t = now - STEP * np.arange(int(days * 86400 / STEP))[::-1]
    series = {f"g{i:05d}": Series.of(t, wave_series(t, rng)) for i in range(gauges)}
    # Two template models learned on the first chain, re-labelled for every gauge.
    head = learn_model(
        "g00000", series["g00000"], {}, step_s=STEP, horizons_s=HORIZONS, max_lag_s=24 * HOUR
    )
    member = learn_model(
        "g00001",
        series["g00001"],
        {"g00000": series["g00000"]},
        step_s=STEP,
        horizons_s=HORIZONS,
        max_lag_s=24 * HOUR,
        overrides_s={"g00000": 6 * HOUR},
    )
    if not isinstance(head, LearnedModel) or not isinstance(member, LearnedModel):
        raise SystemExit(f"learning the template models failed: {head} {member}")
    models: dict[str, LearnedModel | None] = {}
    for i, sid in enumerate(series):
        if i % CHAIN == 0:
            models[sid] = dataclasses.replace(head, station_id=sid)
        else:
            link = dataclasses.replace(member.upstream[0], station_id=f"g{i - 1:05d}")
            models[sid] = dataclasses.replace(member, station_id=sid, upstream=(link,))
    return series, models


def one_pass(series: dict[str, Series], models: dict[str, LearnedModel | None]) -> dict[str, int]:
    methods: dict[str, int] = {}
    for sid, observed in series.items():
        model = models[sid]
        upstream = (
            {link.station_id: series[link.station_id] for link in model.upstream} if model else {}
        )
        fc = forecast_station(
            sid,
            LADDER,
            observed,
            upstream,
            model,
            float(observed.t[-1]),
            horizons_s=HORIZONS,
            trend_window_s=3 * HOUR,
        )
        to_points(fc)
        summary(fc)
        methods[fc.method] = methods.get(fc.method, 0) + 1
    return methods


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gauges", type=int, default=1000)
    parser.add_argument("--days", type=float, default=7.0)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    series, models = build(args.gauges, args.days)
    points = sum(len(s) for s in series.values())
    print(f"{args.gauges} gauges, {points} readings in memory ({points // args.gauges} each)")
    timings = []
    methods: dict[str, int] = {}
    for _ in range(args.repeat):
        started = time.process_time()
        methods = one_pass(series, models)
        timings.append(time.process_time() - started)
    best, median = min(timings), statistics.median(timings)
    print(f"methods: {methods}")
    print(
        f"one pass: {best:.3f} s CPU best, {median:.3f} s median of {args.repeat} "
        f"({median / args.gauges * 1e6:.0f} µs per gauge); goal <= 1 s for 1,000 gauges"
    )


if __name__ == "__main__":
    main()
