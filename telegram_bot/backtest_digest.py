"""A hydrologist's reading of a backtest report (`floodwatch backtest --out`), for /backtest.

The report's summary.json (schema `floodwatch-backtest/1`, see alerts/backtest_report.py)
becomes a short Telegram HTML text: the period, the changes tried against the catalog,
the totals, and per gauge each rung's crossings with how early they were pre-warned,
misses and false alarms. Gauges where nothing happened are left out. Pure: the handler
reads the file and sends the text and the hydrographs `plots_to_show` picks.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any

from telegram_bot.texts import t

SCHEMA = "floodwatch-backtest/1"
MAX_PLOTS = 3
MAX_CHARS = 3900  # under Telegram's 4,096 for one message, room for the "more" line


def digest(data: Any, name: str, lang: str, limit: int = MAX_CHARS) -> str:
    """The text for a report folder called `name`, or why it is not a backtest report."""
    if not isinstance(data, Mapping) or data.get("schema") != SCHEMA:
        found = data.get("schema") if isinstance(data, Mapping) else None
        return t(lang, "bt_not_a_report", name=escape(name), schema=escape(str(found)))
    settings = data.get("settings", {})
    lines = [
        t(
            lang,
            "bt_header",
            name=escape(name),
            start=_when(settings.get("from")),
            end=_when(settings.get("to")),
        ),
        _changes(settings, lang),
        _totals(data.get("totals", {}), lang),
    ]
    blocks = [_gauge_lines(g, lang) for g in data.get("gauges", []) if _eventful(g)]
    text = "\n".join(lines)
    for shown, block in enumerate(blocks):
        more = "\n\n".join([text, "\n".join(block)])
        if len(more) > limit:  # whole gauges only: a cut tag would be refused by Telegram
            return text + "\n\n" + t(lang, "bt_more", count=len(blocks) - shown)
        text = more
    return text


def plots_to_show(data: Any, report_dir: Path) -> list[Path]:
    """The hydrographs worth a look: gauges whose thresholds the run changed, else the
    gauges that crossed a rung; at most MAX_PLOTS, each inside the report folder."""
    if not isinstance(data, Mapping) or data.get("schema") != SCHEMA:
        return []
    changed = _changed_stations(data.get("settings", {}))
    gauges = data.get("gauges", [])
    chosen = [g for g in gauges if g.get("station_id") in changed]
    if not chosen:
        chosen = [g for g in gauges if any(r.get("crossings") for r in g.get("thresholds", []))]
    root = report_dir.resolve()
    found = []
    for gauge in chosen:
        plot = gauge.get("plot")
        if not isinstance(plot, str):
            continue
        path = (report_dir / plot).resolve()
        if path.is_relative_to(root) and path.is_file():  # never a path out of the folder
            found.append(path)
    return found[:MAX_PLOTS]


def _totals(totals: Mapping[str, Any], lang: str) -> str:
    keys = ("gauges", "crossings", "prewarned", "misses", "false_alarms", "resident_messages")
    return t(lang, "bt_totals", **{key: totals.get(key, 0) for key in keys})


def _changes(settings: Mapping[str, Any], lang: str) -> str:
    tried = [*settings.get("set", []), *(f"margin {m}" for m in settings.get("margin", []))]
    if not tried:
        return t(lang, "bt_catalog")
    return t(lang, "bt_changes", changes=escape(", ".join(str(c) for c in tried)))


def _changed_stations(settings: Mapping[str, Any]) -> set[str]:
    """`--set STATION.LEVEL=VALUE` and `--margin STATION=VALUE` name the stations."""
    names = {str(s).split("=", 1)[0].rsplit(".", 1)[0] for s in settings.get("set", [])}
    return names | {str(m).split("=", 1)[0] for m in settings.get("margin", [])}


def _eventful(gauge: Mapping[str, Any]) -> bool:
    rungs = gauge.get("thresholds", [])
    return bool(gauge.get("messages", {}).get("total")) or any(
        r.get("crossings") or r.get("false_alarms") or r.get("catalog_value") is not None
        for r in rungs
    )


def _gauge_lines(gauge: Mapping[str, Any], lang: str) -> list[str]:
    unit = escape(str(gauge.get("unit", "")))
    peak = gauge.get("peak") or {}
    head = f"<b>{escape(str(gauge.get('name', gauge.get('station_id', '?'))))}</b>"
    if peak:
        head += " " + t(lang, "bt_peak", level=_num(peak.get("level")), unit=unit)
    lines = [head]
    for rung in gauge.get("thresholds", []):
        lines.append(_rung_line(rung, unit, peak, lang))
    total = gauge.get("messages", {}).get("total", 0)
    lines.append(t(lang, "bt_messages", count=total))
    return lines


def _rung_line(rung: Mapping[str, Any], unit: str, peak: Mapping[str, Any], lang: str) -> str:
    label = f"{escape(str(rung.get('short', rung.get('key', '?'))))} {_num(rung.get('value'))}"
    label += f" {unit}"
    if rung.get("catalog_value") is not None:
        label += " " + t(lang, "bt_was", value=_num(rung["catalog_value"]))
    parts = [_crossing(c, lang) for c in rung.get("crossings", [])]
    if not parts:
        parts = [t(lang, "bt_not_crossed")]
    if rung.get("false_alarms"):
        parts.append(t(lang, "bt_false_alarms", count=rung["false_alarms"]))
    return f"• {label}: " + "; ".join(parts)


def _crossing(crossing: Mapping[str, Any], lang: str) -> str:
    at = _when(crossing.get("at"))
    if crossing.get("missed") or crossing.get("lead_h") is None:
        return t(lang, "bt_missed", at=at)
    return t(lang, "bt_crossed", at=at, lead=_lead(float(crossing["lead_h"]), lang))


def _lead(hours: float, lang: str) -> str:
    if hours >= 72:
        return t(lang, "bt_days", value=f"{hours / 24:.1f}")
    return t(lang, "bt_hours", value=f"{hours:.1f}")


def _when(value: object) -> str:
    """Report times are UTC ISO 8601; shown as `2018-01-07 05:45 UTC`."""
    if not isinstance(value, str):
        return "?"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return escape(value)
    if moment.tzinfo is None:
        return escape(value)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _num(value: object) -> str:
    return f"{value:g}" if isinstance(value, int | float) else "?"
