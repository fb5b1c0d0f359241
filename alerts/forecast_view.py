"""What the alert engine needs from a forecast, whether it came as a `StationForecast`
(backtest, in-process) or as the JSON summary on `floodwatch/forecasts/{id}` (service)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from forecasting.forecast import StationForecast


@dataclass(frozen=True, slots=True)
class OutlookView:
    key: str
    status: str  # reached | expected | possible | not_expected
    expected_at: datetime | None = None
    earliest: datetime | None = None
    latest: datetime | None = None


@dataclass(frozen=True, slots=True)
class ForecastView:
    at: datetime  # the forecast's newest reading (or issue time when there is no trend)
    usable: bool  # False when the forecaster had too little data
    rate_per_h: float | None = None
    direction: str | None = None
    outlooks: tuple[OutlookView, ...] = ()

    def outlook(self, key: str) -> OutlookView | None:
        return next((o for o in self.outlooks if o.key == key), None)


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
    )
