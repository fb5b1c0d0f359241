"""One PNG hydrograph per gauge: what the water did and what the alerting said.

- observed level (QC-clean readings; flagged readings as grey crosses);
- the threshold ladder as dashed lines labelled with the local short names (НЯ, ОЯ, I, II);
- the forecast band as issued over time: each forecast's level at one horizon (the
  station's horizon nearest a quarter of its longest: 6 h for 15-minute gauges, 3 days
  for the Amur's daily posts) with its 90 % band, drawn at the time it was valid for, so
  the band sits on the observations where the forecast was right;
- the forecast path behind each new pre-warning, dashed, from the moment it was issued;
- vertical marks for pre-warnings (dotted), withdrawals, escalations, de-escalations and
  all-clears, and a triangle at each actual crossing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.dates as mdates
import numpy as np
import numpy.typing as npt
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.transforms import blended_transform_factory

from alerts.backtest import GaugeRun, Run
from alerts.backtest_score import GaugeScore
from alerts.events import EventKind
from floodwatch.catalog import Station
from forecasting.routing import LearnedModel
from forecasting.trend import HOUR

SEVERITY_COLOURS = {"watch": "#c9a400", "warning": "#e07000", "danger": "#c00000"}
MARKS = {  # event kind: colour, line style, legend text
    EventKind.PREWARNING: ("#e07000", ":", "pre-warning"),
    EventKind.PREWARNING_WITHDRAWN: ("#7f7f7f", ":", "pre-warning withdrawn"),
    EventKind.ESCALATION: ("#c00000", "-", "escalation (alert)"),
    EventKind.DEESCALATION: ("#7b3fa0", "--", "de-escalation"),
    EventKind.ALL_CLEAR: ("#2e8b57", "-", "all-clear"),
    EventKind.RAPID_RISE: ("#d62fb0", "-.", "rapid rise"),
}


def days(t: Any) -> npt.NDArray[np.datetime64]:
    """Epoch seconds (UTC) as datetime64, which matplotlib draws on a date axis."""
    return np.round(np.asarray(t, dtype=np.float64) * 1000).astype("datetime64[ms]")


def band_horizon_s(station: Station) -> float:
    horizons = station.forecast.horizons_h
    quarter = horizons[-1] / 4
    return min(horizons, key=lambda h: (abs(h - quarter), -h)) * HOUR


def _band(ax: object, gauge: GaugeRun, horizon_s: float) -> list[float]:
    """Draw the band; return its finite levels (for the vertical extent)."""
    points = [
        (p.valid_at, p.level, p.lower, p.upper)
        for fc in gauge.forecasts
        for p in fc.horizons
        if p.horizon_s == horizon_s
    ]
    if not points:
        return []
    valid, level, lower, upper = np.asarray(points).T
    # Break the band where forecasts are missing (a silent gauge), not paint over it.
    gap = np.concatenate([[False], np.diff(valid) > 3 * gauge.issue_every_s])
    at = np.nonzero(gap)[0]
    valid, level, lower, upper = (np.insert(a, at, np.nan) for a in (valid, level, lower, upper))
    hours = horizon_s / HOUR
    text = f"{hours:g} h" if hours < 48 else f"{hours / 24:g} d"
    ax.fill_between(  # type: ignore[attr-defined]
        days(valid),
        lower,
        upper,
        color="#4a90d9",
        alpha=0.25,
        lw=0,
        label=f"forecast {text} ahead, 90 % band (at its valid time)",
    )
    ax.plot(days(valid), level, color="#4a90d9", lw=0.8)  # type: ignore[attr-defined]
    shown = np.concatenate([lower, upper])
    return [float(x) for x in shown[np.isfinite(shown)]]


def plot_gauge(gauge: GaugeRun, score: GaugeScore, run: Run, out: Path) -> Path:
    station = gauge.station
    fig = Figure(figsize=(12, 6), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    clean = gauge.gauge.clean.window(run.start, run.end)
    ax.plot(days(clean.t), clean.level, color="#1f2f5a", lw=1.3, label="observed level", zorder=3)
    t, flags = gauge.gauge.t, np.asarray(gauge.gauge.flags)
    bad = (flags != 0) & (t >= run.start)
    if bad.any():
        ax.plot(
            days(t[bad]),
            gauge.gauge.level[bad],
            "x",
            color="#888888",
            ms=3,
            label="QC-flagged reading",
        )
    band = _band(ax, gauge, band_horizon_s(station))
    path_legend = True
    by_at = {fc.trend.at: fc for fc in gauge.forecasts if fc.trend is not None}
    for event in gauge.events:
        if event.kind is not EventKind.PREWARNING or event.threshold is None:
            continue
        fc = by_at.get(event.at.timestamp())
        if fc is None or fc.trend is None:
            continue
        xs = days(np.array([fc.trend.at, *(p.valid_at for p in fc.horizons)]))
        ys = [fc.trend.level, *(p.level for p in fc.horizons)]
        ax.plot(
            xs,
            ys,
            ls="--",
            lw=1.4,
            zorder=5,
            color=SEVERITY_COLOURS[event.threshold.severity],
            alpha=0.8,
            label="forecast path at a new pre-warning" if path_legend else None,
        )
        path_legend = False
    right = blended_transform_factory(ax.transAxes, ax.transData)
    levels = [*clean.level.tolist(), *band]
    for rung_score in score.rungs:
        rung = rung_score.rung
        colour = SEVERITY_COLOURS[rung.severity]
        ax.axhline(rung.value, color=colour, ls="--", lw=1)
        label = f"{rung.short} {rung.value:g} {station.unit}"
        if rung_score.catalog_value is not None:
            label += f"\n(catalog {rung_score.catalog_value:g})"
        ax.text(1.005, rung.value, label, transform=right, va="center", fontsize=9, color=colour)
        levels.append(rung.value)
        crossed = [c.at for c in rung_score.crossings]
        ax.plot(
            days(np.array(crossed)),
            [rung.value] * len(crossed),
            "v",
            color=colour,
            ms=7,
            mec="black",
            zorder=4,
        )
    handles, labels = ax.get_legend_handles_labels()
    seen: set[EventKind] = set()
    for event in gauge.events:
        mark = MARKS.get(event.kind)
        if mark is None:
            continue
        colour, style, text = mark
        ax.axvline(days([event.at.timestamp()])[0], color=colour, ls=style, lw=1.1)
        if event.kind not in seen:
            seen.add(event.kind)
            handles.append(Line2D([], [], color=colour, ls=style))
            labels.append(text)
    if score.rungs:
        handles.append(Line2D([], [], marker="v", color="black", ls=""))
        labels.append("actual crossing")
    if levels:
        low, high = min(levels), max(levels)
        pad = 0.05 * (high - low or 1.0)
        ax.set_ylim(low - pad, high + pad)
    ax.set_xlim(*days([run.start, run.end]).tolist())
    locator = mdates.AutoDateLocator()  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]
    ax.set_ylabel(f"level ({station.unit})")
    ax.grid(alpha=0.3)
    ax.legend(
        handles,
        labels,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.09),
        ncol=4,
        fontsize=8,
        frameon=False,
    )
    crossings = [c for r in score.rungs for c in r.crossings]
    model = gauge.model
    method = model.method if isinstance(model, LearnedModel) else f"trend ({model.reason})"
    ax.set_title(
        f"{station.name('en')} ({station.river.get('en') or next(iter(station.river.values()))})"
        f" — {station.id}, times UTC\nmodel: {method}; crossings {len(crossings)}, "
        f"missed {sum(1 for c in crossings if c.missed)}, "
        f"false alarms {sum(len(r.false_alarms) for r in score.rungs)}, "
        f"resident messages {sum(score.messages.values())}",
        fontsize=10,
    )
    fig.subplots_adjust(left=0.06, right=0.91, top=0.9, bottom=0.19)
    path = out / f"{station.id}.png"
    fig.savefig(path)
    return path
