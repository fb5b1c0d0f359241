"""Turning a `StationForecast` into what leaves the forecaster: stored points and the JSON
summary published on MQTT (and merged into the retained station state)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from floodwatch.models import ForecastPoint
from forecasting.forecast import StationForecast, ThresholdOutlook


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")


def _round(value: float) -> float:
    return round(value, 3)


def to_points(forecast: StationForecast) -> list[ForecastPoint]:
    issued = datetime.fromtimestamp(forecast.issued_at, UTC)
    return [
        ForecastPoint(
            station_id=forecast.station_id,
            issued_at=issued,
            valid_at=datetime.fromtimestamp(point.valid_at, UTC),
            horizon_s=round(point.horizon_s),
            level=point.level,
            lower=point.lower,
            upper=point.upper,
            method=forecast.method,
        )
        for point in forecast.horizons
    ]


def _outlook(outlook: ThresholdOutlook) -> dict[str, Any]:
    return {
        "key": outlook.key,
        "value": outlook.value,
        "severity": outlook.severity,
        "status": outlook.status,
        "expected_at": _iso(outlook.expected_at),
        "earliest": _iso(outlook.earliest),
        "latest": _iso(outlook.latest),
    }


def next_threshold(forecast: StationForecast) -> ThresholdOutlook | None:
    """The lowest rung not yet reached that the forecast expects (or deems possible)."""
    for status in ("expected", "possible"):
        for outlook in forecast.outlooks:
            if outlook.status == status:
                return outlook
    return None


def summary(forecast: StationForecast) -> dict[str, Any]:
    """The JSON document on `floodwatch/forecasts/{station_id}` (retained)."""
    trend = forecast.trend
    upcoming = next_threshold(forecast)
    return {
        "station_id": forecast.station_id,
        "issued_at": _iso(forecast.issued_at),
        "method": forecast.method,
        "insufficient": forecast.insufficient,
        "trend": None
        if trend is None
        else {
            "at": _iso(trend.at),
            "level": _round(trend.level),
            "rate_per_h": _round(trend.rate_per_h),
            "accel_per_h2": None if trend.accel_per_h2 is None else _round(trend.accel_per_h2),
            "accelerating": trend.accelerating,
            "direction": trend.direction,
        },
        "horizons": [
            {
                "horizon_h": _round(point.horizon_s / 3600),
                "valid_at": _iso(point.valid_at),
                "level": _round(point.level),
                "lower": _round(point.lower),
                "upper": _round(point.upper),
            }
            for point in forecast.horizons
        ],
        "thresholds": [_outlook(outlook) for outlook in forecast.outlooks],
        "next": None if upcoming is None else _outlook(upcoming),
    }
