"""What the retained station state shows of a station's latest forecast.

The collector builds the state; it reads forecasts from MQTT (floodwatch/forecasts/{id}),
so this works on the published JSON summary, not on forecasting objects, and imports
nothing heavier than the standard library.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

# The horizon the state shows: long enough to act on, short enough to be trusted.
STATE_HORIZON_H = 6.0


@dataclass(frozen=True, slots=True)
class StateForecast:
    issued_at: datetime
    trend: Mapping[str, Any] | None  # the summary's trend object, as published
    forecast: Mapping[str, Any]  # the short summary for the state's "forecast" field


def state_horizon(horizons: list[Any]) -> dict[str, Any] | None:
    """The 6 h horizon, or the nearest one (the shorter on a tie)."""
    usable = [h for h in horizons if isinstance(h, dict) and _number(h.get("horizon_h"))]
    if not usable:
        return None
    chosen = min(usable, key=lambda h: (abs(h["horizon_h"] - STATE_HORIZON_H), h["horizon_h"]))
    keys = ("horizon_h", "valid_at", "level", "lower", "upper")
    return {key: chosen.get(key) for key in keys}


def parse_forecast(payload: bytes) -> StateForecast | None:
    """The state's view of a forecast summary, or None if the payload is not one."""
    try:
        body = orjson.loads(payload)
        issued_at = datetime.fromisoformat(body["issued_at"])
    except (orjson.JSONDecodeError, TypeError, KeyError, ValueError):
        return None
    trend = body.get("trend")
    horizons = body.get("horizons")
    if issued_at.tzinfo is None or not isinstance(horizons, list):
        return None
    if trend is not None and not isinstance(trend, dict):
        return None
    forecast = {
        "issued_at": body["issued_at"],
        "method": body.get("method"),
        "insufficient": body.get("insufficient"),
        "next": body.get("next"),
        "horizon": state_horizon(horizons),
    }
    return StateForecast(issued_at, trend, forecast)


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
