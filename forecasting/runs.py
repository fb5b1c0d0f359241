"""One forecast run over some stations: history and models in, what to store and publish out.

Runs in a worker thread (a pass over 1,000 gauges is about a second of CPU); it touches
the shared `History` only through its per-station locks.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import orjson

from floodwatch.catalog import Station
from floodwatch.models import ForecastPoint
from forecasting.forecast import StationForecast, forecast_station
from forecasting.history import History
from forecasting.publish import summary, to_points
from forecasting.routing import LearnedModel
from forecasting.trend import HOUR

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Outcome:
    forecast: StationForecast
    payload: bytes  # the JSON summary for floodwatch/forecasts/{station_id}
    points: list[ForecastPoint]


def forecast_one(
    station: Station, history: History, model: LearnedModel | None, now: float
) -> StationForecast:
    settings = station.forecast
    return forecast_station(
        station.id,
        station.levels,
        history.series(station.id, now),
        {sid: history.series(sid, now) for sid in station.upstream},
        model,
        now,
        horizons_s=[h * HOUR for h in settings.horizons_h],
        trend_window_s=settings.trend_window_h * HOUR,
    )


def run_forecasts(
    stations: Iterable[Station],
    history: History,
    models: Mapping[str, LearnedModel | None],
    now: float,
) -> list[Outcome]:
    outcomes = []
    for station in stations:
        try:
            forecast = forecast_one(station, history, models.get(station.id), now)
        except Exception:
            # A fault in one station's numbers must not silence every other station.
            log.exception("forecast of %s failed", station.id)
            continue
        outcomes.append(Outcome(forecast, orjson.dumps(summary(forecast)), to_points(forecast)))
    return outcomes
