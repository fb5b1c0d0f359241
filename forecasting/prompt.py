"""When a new reading should not wait for the next scheduled forecast pass.

Pure and cheap (it runs for every reading): a handful of comparisons against the station's
last forecast. A prompt run is asked for when the reading says something the last forecast
did not: that forecast is missing or could not be made, the reading leaves its band or
outlives its horizons, the level is about to cross (or has crossed) a rung of the ladder,
or it rose faster than the station's rate-of-rise limit allows.
"""

from __future__ import annotations

from floodwatch.catalog import Station
from forecasting.forecast import Z90, StationForecast


def band_at(last: StationForecast, t: float) -> tuple[float, float] | None:
    """The last forecast's 90 % band at `t`, linear between its horizons (None past them).

    At the forecast's newest reading the band is the readings' own scatter around the
    trend, so ordinary sensor noise on the next reading does not count as news. Plain
    Python rather than numpy: this runs for every reading, on a handful of points.
    """
    trend = last.trend
    if trend is None or not last.horizons or t > last.horizons[-1].valid_at:
        return None
    scatter = Z90 * trend.noise
    t0, low0, high0 = trend.at, trend.level - scatter, trend.level + scatter
    for point in last.horizons:
        if t <= point.valid_at:
            span = point.valid_at - t0
            w = (t - t0) / span if span > 0 else 1.0
            w = min(max(w, 0.0), 1.0)
            return low0 + w * (point.lower - low0), high0 + w * (point.upper - high0)
        t0, low0, high0 = point.valid_at, point.lower, point.upper
    return None


def crosses_a_rung(station: Station, before: float, level: float) -> bool:
    """The level is now on the other side of some rung than the last forecast's level."""
    return any((before >= rung.value) != (level >= rung.value) for rung in station.levels)


def near_a_rung(station: Station, level: float, rate_per_h: float) -> bool:
    """Within one hour's worth of the current rise below a rung."""
    return rate_per_h > 0 and any(
        level < rung.value <= level + rate_per_h for rung in station.levels
    )


def needs_prompt_run(
    last: StationForecast | None, level: float, ts: float, station: Station
) -> bool:
    """Should this clean reading (epoch seconds `ts`) be forecast now rather than at the tick?"""
    if last is None or last.trend is None:
        return True  # nothing usable to compare with: every reading may make it possible
    trend = last.trend
    if ts <= trend.at:
        return False  # older than what the last forecast already used: a late upload
    band = band_at(last, ts)
    if band is None or not band[0] <= level <= band[1]:
        return True
    if crosses_a_rung(station, trend.level, level) or near_a_rung(station, level, trend.rate_per_h):
        return True
    # The rise as an amount, not a rate: over a few minutes, sensor noise alone would read
    # as an absurd hourly rate.
    limit = station.max_rise_per_hour
    return limit is not None and level - trend.level > limit
