"""The backtest's outputs for people and programs: summary.json and the printed table."""

from __future__ import annotations

import math
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from alerts.backtest import GaugeRun, Run
from alerts.backtest_score import Crossing, Episode, GaugeScore, RungScore
from forecasting.routing import LearnedModel

SCHEMA = "floodwatch-backtest/1"
SHORT = {  # resident event kinds, as the gauge table names them
    "prewarning": "pre-warning",
    "prewarning_update": "update",
    "prewarning_withdrawn": "withdrawn",
    "escalation": "alert",
    "deescalation": "lowered",
    "all_clear": "all-clear",
    "rapid_rise": "rapid rise",
}


def iso(epoch: float | None) -> str | None:
    if epoch is None or not math.isfinite(epoch):
        return None
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")


def _hours(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / 3600, 2)


def model_summary(gauge: GaugeRun) -> dict[str, Any]:
    """The gauge's forecast model as the reports show it (method, upstream, travel times)."""
    model = gauge.model
    if not isinstance(model, LearnedModel):
        return {"method": "trend", "reason": model.reason, "upstream": []}
    return {
        "method": model.method,
        "reason": None,
        "upstream": [
            {
                "station_id": link.station_id,
                "travel_h": round(link.lag_steps * model.step_s / 3600, 2),
                "correlation": link.correlation,
            }
            for link in model.upstream
        ],
        "trained_from": iso(model.trained_from),
        "trained_to": iso(model.trained_to),
    }


def _crossing(c: Crossing) -> dict[str, Any]:
    return {
        "at": iso(c.at),
        "prewarned_at": iso(c.prewarned_at),
        "lead_h": _hours(c.lead_s),
        "expected_at": iso(c.expected_at),
        "alert_at": iso(c.alert_at),
        "alert_delay_min": None if c.alert_at is None else round((c.alert_at - c.at) / 60, 1),
        "missed": c.missed,
    }


def _episode(e: Episode) -> dict[str, Any]:
    return {
        "from": iso(e.start),
        "to": iso(e.end),
        "outcome": e.outcome,
        "expected_at": iso(e.expected_at),
        "crossings": [iso(c) for c in e.crossings],
        "false_alarm": e.false_alarm,
    }


def _rung(score: RungScore) -> dict[str, Any]:
    rung = score.rung
    return {
        "key": rung.key,
        "short": rung.short,
        "value": rung.value,
        "catalog_value": score.catalog_value,
        "severity": rung.severity,
        "crossings": [_crossing(c) for c in score.crossings],
        "misses": score.misses,
        "prewarnings": score.prewarnings,
        "prewarning_updates": score.updates,
        "false_alarms": len(score.false_alarms),
        "episodes": [_episode(e) for e in score.episodes],
    }


def _gauge(gauge: GaugeRun, score: GaugeScore, plot: str | None) -> dict[str, Any]:
    station = gauge.station
    return {
        "station_id": station.id,
        "name": station.name("en"),
        "unit": station.unit,
        "model": model_summary(gauge),
        "forecasts": {
            "issued": len(gauge.forecasts),
            "every_min": round(gauge.issue_every_s / 60, 2),
            "methods": dict(score.methods),
        },
        "readings": int(gauge.moments.size),
        "qc_flagged": score.flagged,
        "peak": None if score.peak is None else {"at": iso(score.peak[0]), "level": score.peak[1]},
        "clear_margin": station.clear_margin,
        "thresholds": [_rung(r) for r in score.rungs],
        "messages": {"total": sum(score.messages.values()), "by_kind": dict(score.messages)},
        "operator_events": dict(score.operator),
        "events": [e.to_dict() | {"operator_only": e.operator_only} for e in gauge.events],
        "plot": plot,
    }


def summary(
    run: Run, scores: list[GaugeScore], plots: dict[str, str], elapsed_s: float
) -> dict[str, Any]:
    options = run.options
    rungs = [r for s in scores for r in s.rungs]
    crossings = [c for r in rungs for c in r.crossings]
    return {
        "schema": SCHEMA,
        "settings": {
            "catalog": str(options.catalog),
            "data": str(options.data),
            "from": iso(run.start),
            "to": iso(run.end),
            "learn_until": iso(run.learn_until),
            "issue_every_min": options.issue_every_min,
            "gauges": list(options.gauges),
            "set": list(options.sets),
            "margin": list(options.margins),
            "rules": asdict(options.rules),
        },
        "elapsed_s": round(elapsed_s, 2),
        "ignored_stations": run.ignored,
        "totals": {
            "gauges": len(scores),
            "crossings": len(crossings),
            "prewarned": sum(1 for c in crossings if not c.missed),
            "misses": sum(1 for c in crossings if c.missed),
            "false_alarms": sum(len(r.false_alarms) for r in rungs),
            "resident_messages": sum(sum(s.messages.values()) for s in scores),
        },
        "gauges": [
            _gauge(g, s, plots.get(g.station.id)) for g, s in zip(run.gauges, scores, strict=True)
        ],
    }


def write_summary(
    run: Run, scores: list[GaugeScore], plots: dict[str, str], elapsed_s: float, path: Path
) -> None:
    data = summary(run, scores, plots, elapsed_s)
    path.write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2) + b"\n")


def _when(epoch: float | None) -> str:
    if epoch is None:
        return "-"
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M")


def _lead(seconds: float | None) -> str:
    if seconds is None:
        return "missed"
    return f"{seconds / 3600:.1f} h" if seconds < 72 * 3600 else f"{seconds / 86400:.1f} d"


def _rows(gauge: GaugeRun, score: GaugeScore) -> list[list[str]]:
    unit = gauge.station.unit
    rows = []
    for r in score.rungs:
        label = f"{r.rung.short} {r.rung.value:g} {unit}"
        if r.catalog_value is not None:
            label += f" (was {r.catalog_value:g})"
        tail = [str(r.prewarnings), str(len(r.false_alarms))]
        if not r.crossings:
            peak = "-" if score.peak is None else f"peak {score.peak[1]:g} {unit}"
            rows.append([score.station_id, label, "not crossed", peak, "", "", *tail])
        for n, c in enumerate(r.crossings):
            cells = [_when(c.at), _when(c.prewarned_at), _lead(c.lead_s), _when(c.alert_at)]
            rows.append([score.station_id, label, *cells, *(tail if n == 0 else ["", ""])])
    return rows


def _format(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    ]


def summary_table(run: Run, scores: list[GaugeScore]) -> str:
    options = run.options
    lines = [
        f"Backtest of {options.catalog.name} on {options.data.name}: "
        f"{_when(run.start)} .. {_when(run.end)} UTC, models learned until "
        f"{_when(run.learn_until)} UTC",
        "",
    ]
    rows = [row for g, s in zip(run.gauges, scores, strict=True) for row in _rows(g, s)]
    header = [
        "gauge",
        "threshold",
        "crossed (UTC)",
        "pre-warned (UTC)",
        "lead",
        "alert (UTC)",
        "pre-warnings",
        "false alarms",
    ]
    lines += _format(header, rows) if rows else ["no gauge in the data has thresholds"]
    lines.append("")
    gauge_rows = []
    for g, s in zip(run.gauges, scores, strict=True):
        model = g.model.method if isinstance(g.model, LearnedModel) else "trend"
        crossings = [c for r in s.rungs for c in r.crossings]
        used = ", ".join(f"{m} {n}" for m, n in s.methods.most_common())
        gauge_rows.append(
            [
                s.station_id,
                model,
                used,
                str(len(crossings)),
                str(sum(1 for c in crossings if c.missed)),
                str(sum(len(r.false_alarms) for r in s.rungs)),
                str(sum(s.messages.values())),
                ", ".join(f"{SHORT.get(k, k)} {n}" for k, n in s.messages.items()),
            ]
        )
    header = [
        "gauge",
        "model",
        "forecasts by method",
        "crossings",
        "missed",
        "false alarms",
        "messages",
        "of which",
    ]
    lines += _format(header, gauge_rows)
    return "\n".join(lines)
