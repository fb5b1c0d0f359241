"""The demo's report folder: a PNG hydrograph per gauge (the backtest's plot), summary.json,
summary.md for people, and messages.txt with every resident message in order."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from alerts.backtest import GaugeRun, Run
from alerts.backtest_report import model_summary
from alerts.backtest_score import Crossing, GaugeScore, score_run
from alerts.events import AlertEvent, EventKind

log = logging.getLogger(__name__)
SCHEMA = "floodwatch-demo/1"


@dataclass(frozen=True)
class Message:
    """A resident message as printed: the event and its text (header and lead included)."""

    event: AlertEvent
    text: str


@dataclass(frozen=True)
class Meta:
    title: str
    catalog: str
    language: str
    step_min: float
    readings: int
    interrupted: bool
    elapsed_s: float


def iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")


def _hours(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / 3600, 2)


def _first_reading_at(gauge: GaugeRun, after: float, value: float) -> str | None:
    clean = gauge.gauge.clean
    hits = clean.t[(clean.t >= after) & (clean.level >= value)]
    return iso(float(hits[0])) if hits.size else None


def _crossings(gauge: GaugeRun, score: GaugeScore) -> list[dict[str, Any]]:
    rows = []
    for rung_score in score.rungs:
        rung = rung_score.rung
        for c in rung_score.crossings:
            rows.append(
                {
                    "level": rung.key,
                    "short": rung.short,
                    "severity": rung.severity,
                    "value": rung.value,
                    "at": iso(c.at),
                    "first_at": _first_reading_at(gauge, c.at, rung.value),
                    "prewarned_at": iso(c.prewarned_at),
                    "lead_h": _hours(c.lead_s),
                    "expected_at": iso(c.expected_at),
                    "alert_at": iso(c.alert_at),
                    "missed": c.missed,
                }
            )
    return sorted(rows, key=lambda row: str(row["at"]))


def _next_crossing(score: GaugeScore, key: str, after: float) -> Crossing | None:
    for rung_score in score.rungs:
        if rung_score.rung.key == key:
            return next((c for c in rung_score.crossings if c.at >= after), None)
    return None


def _prewarnings(gauge: GaugeRun, score: GaugeScore) -> list[dict[str, Any]]:
    rows = []
    for event in gauge.events:
        if event.kind not in (EventKind.PREWARNING, EventKind.PREWARNING_UPDATE):
            continue
        if event.threshold is None:
            continue
        at = event.at.timestamp()
        crossing = _next_crossing(score, event.threshold.key, at)
        rows.append(
            {
                "at": event.at.isoformat(),
                "kind": event.kind.value,
                "level": event.threshold.key,
                "value": event.threshold.value,
                "expected_at": event.expected_at.isoformat() if event.expected_at else None,
                "crossed_at": iso(crossing.at) if crossing else None,
                # How early this message came before the water did; null: it did not.
                "lead_h": _hours(crossing.at - at) if crossing else None,
            }
        )
    return rows


def _events(gauge: GaugeRun, kind: EventKind) -> list[dict[str, Any]]:
    return [
        {
            "at": e.at.isoformat(),
            "level": e.threshold.key if e.threshold else None,
            "value": e.threshold.value if e.threshold else None,
            "observed": e.level,
        }
        for e in gauge.events
        if e.kind is kind
    ]


def gauge_summary(gauge: GaugeRun, score: GaugeScore, plot: str | None) -> dict[str, Any]:
    station = gauge.station
    return {
        "station_id": station.id,
        "name": station.name("en"),
        "unit": station.unit,
        "readings": int(gauge.moments.size),
        "qc_flagged": score.flagged,
        "peak_level": score.peak[1] if score.peak else None,
        "peak_at": iso(score.peak[0]) if score.peak else None,
        "model": model_summary(gauge),
        "forecasts": len(gauge.forecasts),
        "crossings": _crossings(gauge, score),
        "prewarnings": _prewarnings(gauge, score),
        "alerts": _events(gauge, EventKind.ESCALATION),
        "all_clears": _events(gauge, EventKind.ALL_CLEAR),
        "false_alarms": sum(len(r.false_alarms) for r in score.rungs),
        "messages": {"total": sum(score.messages.values()), "by_kind": dict(score.messages)},
        "plot": plot,
    }


def summary(
    meta: Meta, run: Run, scores: Sequence[GaugeScore], plots: dict[str, str]
) -> dict[str, Any]:
    gauges = [
        gauge_summary(g, s, plots.get(g.station.id))
        for g, s in zip(run.gauges, scores, strict=True)
    ]
    crossings = [c for g in gauges for c in g["crossings"]]
    return {
        "schema": SCHEMA,
        "title": meta.title,
        "catalog": meta.catalog,
        "language": meta.language,
        "from": iso(run.start),
        "to": iso(run.end),
        "forecast_every_min": meta.step_min,
        "played_readings": meta.readings,
        "interrupted": meta.interrupted,
        "elapsed_s": round(meta.elapsed_s, 1),
        "totals": {
            "crossings": len(crossings),
            "prewarned": sum(1 for c in crossings if not c["missed"]),
            "missed": sum(1 for c in crossings if c["missed"]),
            "false_alarms": sum(g["false_alarms"] for g in gauges),
            "resident_messages": sum(g["messages"]["total"] for g in gauges),
        },
        "stations": gauges,
    }


def _lead(hours: float | None) -> str:
    return "missed" if hours is None else f"{hours:.1f} h"


def markdown(data: dict[str, Any]) -> str:
    totals = data["totals"]
    lines = [
        "# Floodwatch demo report",
        "",
        f"{data['title']}: {data['from']} .. {data['to']} (UTC), forecasts every "
        f"{data['forecast_every_min']:g} simulated minutes"
        + (" — **interrupted**, partial report" if data["interrupted"] else "")
        + ".",
        "",
        f"{totals['crossings']} threshold crossings, {totals['prewarned']} pre-warned, "
        f"{totals['missed']} missed, {totals['false_alarms']} false alarms, "
        f"{totals['resident_messages']} resident messages (messages.txt).",
        "",
        "| gauge | threshold | crossed (UTC) | pre-warned (UTC) | lead | alert (UTC) |",
        "|---|---|---|---|---|---|",
    ]
    for gauge in data["stations"]:
        for c in gauge["crossings"]:
            lines.append(
                f"| {gauge['name']} | {c['short']} {c['value']:g} {gauge['unit']} | "
                f"{_short(c['at'])} | {_short(c['prewarned_at'])} | {_lead(c['lead_h'])} | "
                f"{_short(c['alert_at'])} |"
            )
    lines += ["", "| gauge | model | peak | messages | all-clear (UTC) | hydrograph |"]
    lines.append("|---|---|---|---|---|---|")
    for gauge in data["stations"]:
        model = gauge["model"]
        travel = ", ".join(f"{u['station_id']} {u['travel_h']:g} h" for u in model["upstream"])
        peak = (
            f"{gauge['peak_level']:g} {gauge['unit']} at {_short(gauge['peak_at'])}"
            if gauge["peak_level"] is not None
            else "-"
        )
        clears = ", ".join(_short(c["at"]) for c in gauge["all_clears"]) or "-"
        plot = f"[{gauge['plot']}]({gauge['plot']})" if gauge["plot"] else "-"
        lines.append(
            f"| {gauge['name']} | {model['method']}{f' ({travel})' if travel else ''} | {peak} "
            f"| {gauge['messages']['total']} | {clears} | {plot} |"
        )
    return "\n".join(lines) + "\n"


def _short(value: str | None) -> str:
    if value is None:
        return "-"
    return datetime.fromisoformat(value).astimezone(UTC).strftime("%m-%d %H:%M")


def write(
    out: Path, meta: Meta, run: Run, messages: Sequence[Message], *, plots: bool = True
) -> dict[str, Any]:
    """Everything into `out`; returns the summary."""
    scores = score_run(run)
    drawn: dict[str, str] = {}
    if plots:
        from alerts.backtest_plot import plot_gauge

        for gauge, score in zip(run.gauges, scores, strict=True):
            if gauge.gauge.clean.t.size:
                drawn[gauge.station.id] = plot_gauge(gauge, score, run, out).name
    data = summary(meta, run, scores, drawn)
    (out / "summary.json").write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2) + b"\n")
    (out / "summary.md").write_text(markdown(data), encoding="utf-8")
    text = "\n\n".join(message.text for message in messages)
    (out / "messages.txt").write_text(text + "\n" if text else "", encoding="utf-8")
    return data
