"""What the alert engine needs from a forecast, whether it came as a `StationForecast`
(backtest, in-process) or as the JSON summary on `floodwatch/forecasts/{id}` (service).

The forecaster judges its path against the catalog file's ladder; the alert engine holds
the ladder in force (with hydrologists' edits), so it re-judges the same path against
that ladder (`against`) before deciding pre-warnings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from floodwatch.catalog import Threshold
from forecasting.forecast import StationForecast, judge_path


@dataclass(frozen=True, slots=True)
class OutlookView:
    key: str
    status: str  # reached | expected | possible | not_expected
    expected_at: datetime | None = None
    earliest: datetime | None = None
    latest: datetime | None = None


@dataclass(frozen=True, slots=True)
class PathPoint:
    valid_at: datetime
    level: float
    lower: float
    upper: float


@dataclass(frozen=True, slots=True)
class ForecastView:
    at: datetime  # the forecast's newest reading (or issue time when there is no trend)
    usable: bool  # False when the forecaster had too little data
    rate_per_h: float | None = None
    direction: str | None = None
    outlooks: tuple[OutlookView, ...] = ()
    level: float | None = None  # the robust level at `at`
    path: tuple[PathPoint, ...] = ()  # the forecast levels at its horizons, with the band

    def outlook(self, key: str) -> OutlookView | None:
        return next((o for o in self.outlooks if o.key == key), None)

    def against(self, ladder: Sequence[Threshold]) -> ForecastView:
        """The same forecast with its outlooks judged against `ladder`."""
        if self.level is None or not self.path:
            return self
        points = [(p.valid_at.timestamp(), p.level, p.lower, p.upper) for p in self.path]
        judged = judge_path(self.at.timestamp(), self.level, points, ladder)
        return replace(
            self,
            outlooks=tuple(
                OutlookView(o.key, o.status, _dt(o.expected_at), _dt(o.earliest), _dt(o.latest))
                for o in judged
            ),
        )


def _dt(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)


def _parse(text: Any) -> datetime | None:
    return None if text is None else datetime.fromisoformat(str(text))


def from_forecast(forecast: StationForecast) -> ForecastView:
    trend = forecast.trend
    return ForecastView(
        at=datetime.fromtimestamp(trend.at if trend else forecast.issued_at, UTC),
        usable=forecast.insufficient is None and trend is not None,
        rate_per_h=trend.rate_per_h if trend else None,
        direction=trend.direction if trend else None,
        outlooks=tuple(
            OutlookView(o.key, o.status, _dt(o.expected_at), _dt(o.earliest), _dt(o.latest))
            for o in forecast.outlooks
        ),
        level=trend.level if trend else None,
        path=tuple(
            PathPoint(datetime.fromtimestamp(p.valid_at, UTC), p.level, p.lower, p.upper)
            for p in forecast.horizons
        ),
    )


def from_summary(document: Mapping[str, Any]) -> ForecastView:
    """From the forecaster's published JSON (forecasting/publish.py `summary`)."""
    trend = document.get("trend")
    at = _parse(trend["at"] if trend else document["issued_at"])
    if at is None:
        raise ValueError("forecast summary without a time")
    return ForecastView(
        at=at,
        usable=document.get("insufficient") is None and trend is not None,
        rate_per_h=float(trend["rate_per_h"]) if trend else None,
        direction=str(trend["direction"]) if trend else None,
        outlooks=tuple(
            OutlookView(
                str(o["key"]),
                str(o["status"]),
                _parse(o.get("expected_at")),
                _parse(o.get("earliest")),
                _parse(o.get("latest")),
            )
            for o in document.get("thresholds", ())
        ),
        level=float(trend["level"]) if trend else None,
        path=tuple(_path_point(p) for p in document.get("horizons", ())),
    )


def _path_point(point: Mapping[str, Any]) -> PathPoint:
    valid_at = _parse(point["valid_at"])
    if valid_at is None:
        raise ValueError("forecast horizon without valid_at")
    return PathPoint(valid_at, float(point["level"]), float(point["lower"]), float(point["upper"]))
