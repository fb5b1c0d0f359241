"""The /status chart: a PNG of the last days' levels, the threshold ladder and the forecast.

Drawn with matplotlib's Agg canvas (no display, thread-safe per figure) so the bot can
render it in a worker thread (`asyncio.to_thread(render_chart, ...)`).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import datetime, timedelta

import matplotlib

matplotlib.use("Agg")

import matplotlib.dates as mdates
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from floodwatch.catalog import Station
from floodwatch.models import ForecastPoint, Reading

SEVERITY_COLOURS = {"watch": "#c9a400", "warning": "#e07000", "danger": "#c00000"}
CHART_DAYS = 3


def _days(at: datetime) -> float:
    """matplotlib's date number (days since its default epoch, 1970-01-01 UTC)."""
    return at.timestamp() / 86400.0


def render_chart(
    station: Station,
    readings: Sequence[Reading],
    forecast: Sequence[ForecastPoint],
    *,
    language: str = "en",
    now: datetime | None = None,
) -> bytes:
    """PNG bytes: observed levels, dashed threshold lines with their local short names, and
    the latest forecast run as a line with its 90 % band."""
    zone = station.zone()
    fig = Figure(figsize=(8, 4.5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    if readings:
        ax.plot(
            [_days(r.ts) for r in readings],
            [r.level for r in readings],
            color="#1f5fa8",
            linewidth=1.6,
            label="observed" if language != "ru" else "наблюдения",
        )
    if forecast:
        points = sorted(forecast, key=lambda p: p.valid_at)
        times = [_days(p.valid_at) for p in points]
        ax.fill_between(
            times,
            [p.lower for p in points],
            [p.upper for p in points],
            color="#7fa7d9",
            alpha=0.35,
            linewidth=0,
            label="forecast 90 %" if language != "ru" else "прогноз 90 %",
        )
        ax.plot(times, [p.level for p in points], color="#1f5fa8", linestyle="--", linewidth=1.2)
    for rung in station.levels:
        colour = SEVERITY_COLOURS.get(rung.severity, "#888888")
        ax.axhline(rung.value, color=colour, linestyle="--", linewidth=1.0)
        ax.annotate(
            rung.short,
            xy=(1.0, rung.value),
            xycoords=("axes fraction", "data"),
            xytext=(4, 0),
            textcoords="offset points",
            va="center",
            color=colour,
            fontsize=9,
        )
    end = now or (readings[-1].ts if readings else None)
    if end is not None:
        last = max([end] + [p.valid_at for p in forecast])
        ax.set_xlim(
            _days(end - timedelta(days=CHART_DAYS)),
            _days(last + timedelta(hours=1)),
        )
    formatter = mdates.DateFormatter("%d.%m %H:%M", tz=zone)  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_formatter(formatter)
    ax.set_ylabel(station.unit)
    ax.set_title(f"{station.name(language)} — {station.river.get(language) or station.name()}")
    ax.grid(True, alpha=0.3)
    if readings or forecast:
        ax.legend(loc="upper left", fontsize=8)
    fig.autofmt_xdate()
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()
