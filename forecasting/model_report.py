"""`floodwatch forecast models`: the stored learned models, as a hydrologist reads them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from floodwatch.catalog import Station
from forecasting.model_store import StoredModel, fingerprint
from forecasting.routing import LearnedModel


def _hours(seconds: float) -> str:
    hours = seconds / 3600
    return f"{hours:g} h" if hours >= 1 else f"{seconds / 60:g} min"


def _day(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M")


def _status(record: StoredModel, station: Station | None, now: datetime, max_age: timedelta) -> str:
    if station is None:
        return "station no longer in the catalog"
    if record.fingerprint != fingerprint(station):
        return "stale: the catalog changed since; relearned at the next start or relearn"
    if now - record.learned_at >= max_age:
        return "stale: due for relearning"
    return "current"


def model_lines(model: LearnedModel, unit: str) -> Iterator[str]:
    yield (
        f"  trained on {_day(model.trained_from)} – {_day(model.trained_to)} UTC, "
        f"{model.samples} samples every {_hours(model.step_s)}"
    )
    if not model.upstream:
        yield "  upstream: none used (the gauge's own recent changes only)"
    for link in model.upstream:
        travel = _hours(link.lag_steps * model.step_s)
        if link.source == "override":
            how = "set in the catalog, forecast.travel_h"
        else:
            how = f"learned, correlation {link.correlation:.2f}"
        yield f"  upstream {link.station_id}: travel time {travel} ({how})"
    for horizon in model.horizons:
        rmse, persistence = horizon.rmse, horizon.persistence_rmse
        skill = f", skill {1 - rmse / persistence:+.0%}" if persistence > 0 else ""
        yield (
            f"  {_hours(horizon.horizon_steps * model.step_s):>7} ahead: RMSE {rmse:.3g} {unit} "
            f"vs {persistence:.3g} {unit} for 'no change'{skill}"
        )


def report(
    record: StoredModel, station: Station | None, now: datetime, max_age: timedelta
) -> list[str]:
    learned = record.learned_at.strftime("%Y-%m-%d %H:%M UTC")
    method = record.model.method if record.model else "trend only"
    lines = [
        f"{record.station_id}: {method}, learned {learned} "
        f"({_status(record, station, now, max_age)})"
    ]
    if record.model is None:
        lines.append(f"  no model: {record.reason}")
    else:
        lines.extend(model_lines(record.model, station.unit if station else ""))
    return lines
