"""A synthetic but physically plausible flood wave for the demo and the unit tests.

The shape at each gauge is a gamma-type pulse on base flow,
`base + rise * (x * e^(1 - x))^k` with `x = (t - arrival) / time_to_peak`: a smooth rise
to the crest at `x = 1` and a longer recession, as on a real hydrograph. Downstream, the
wave arrives later (travel time), peaks lower above its base (attenuation by channel and
floodplain storage) and spreads out (longer time to peak). A little seeded pseudo-noise
stands in for sensor jitter, so the same seed always gives the same rows and no stretch
is perfectly flat (which QC would rightly flag).

Several waves add up on the base flow (`Wave`: when, relative to the main flood, and how
big): the demo's history (`demo_history`) holds a few smaller freshets over the weeks
before the flood, so the forecaster has seen the river's travel times before the flood
arrives, as it would have in a real deployment.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from floodwatch.replay_csv import ReplayRow

DEMO_START = datetime(2024, 3, 1, tzinfo=UTC)
STEP = timedelta(minutes=15)


@dataclass(frozen=True)
class WaveGauge:
    """How the flood wave shows at one gauge, in that station's unit."""

    station_id: str
    base: float  # stage at base flow
    rise: float  # crest height above base
    arrival: timedelta  # when the rise begins, counted from the start of the series
    time_to_peak: timedelta  # from arrival to crest


# The Silverbrook chain of floodwatch/catalogs/demo.yaml, upstream to downstream: the
# wave reaches each gauge 3 h after the one above it, with 25 % longer time to peak and a
# lower rise. Crests: upper 320 (above danger 300), mill 300 (above warning 230), town 295
# (above danger 270), mouth 270 (above warning 240); see the ladders in demo.yaml.
DEMO_CHAIN: tuple[WaveGauge, ...] = (
    WaveGauge("silverbrook-upper", 60.0, 260.0, timedelta(hours=6), timedelta(hours=6)),
    WaveGauge("silverbrook-mill", 80.0, 220.0, timedelta(hours=9), timedelta(hours=7.5)),
    WaveGauge("silverbrook-town", 100.0, 195.0, timedelta(hours=12), timedelta(hours=9.375)),
    WaveGauge("silverbrook-mouth", 120.0, 150.0, timedelta(hours=15), timedelta(hours=11.72)),
)


@dataclass(frozen=True)
class Wave:
    """One rain event: its rise begins at each gauge `onset` after that gauge's `arrival`,
    `scale` times the gauge's `rise` (the main flood is Wave(0, 1))."""

    onset: timedelta
    scale: float


MAIN_FLOOD: tuple[Wave, ...] = (Wave(timedelta(0), 1.0),)
HISTORY_DAYS = 42
# Freshets of the six weeks before the flood, counted from the start of the history; the
# largest reaches about the watch level at the lower gauges, the others stay in the banks.
FRESHETS: tuple[Wave, ...] = (
    Wave(timedelta(days=5, hours=7), 0.45),
    Wave(timedelta(days=15, hours=19), 0.25),
    Wave(timedelta(days=24, hours=2), 0.35),
    Wave(timedelta(days=33, hours=13), 0.2),
)


def pulse(x: float, shape: float) -> float:
    """The unit hydrograph ordinate: 0 before the rise, 1 at the crest (x = 1)."""
    if x <= 0:
        return 0.0
    return math.pow(x * math.exp(1.0 - x), shape)


def wave_level(
    gauge: WaveGauge,
    elapsed: timedelta,
    shape: float = 3.0,
    waves: Sequence[Wave] = MAIN_FLOOD,
) -> float:
    """The noise-free stage at `elapsed` after the start of the series."""
    rise = 0.0
    for wave in waves:
        x = (elapsed - wave.onset - gauge.arrival) / gauge.time_to_peak
        rise += wave.scale * gauge.rise * pulse(x, shape)
    return gauge.base + rise


def synthetic_flood(
    gauges: Sequence[WaveGauge] = DEMO_CHAIN,
    *,
    start: datetime = DEMO_START,
    duration: timedelta = timedelta(hours=72),
    step: timedelta = STEP,
    noise: float = 0.5,
    seed: int = 1,
    shape: float = 3.0,
    waves: Sequence[Wave] = MAIN_FLOOD,
) -> list[ReplayRow]:
    """Replay rows of one flood wave down `gauges`, every `step` over [start, start+duration).

    Rows are ordered by timestamp, then by the gauges' order. `noise` is the standard
    deviation of the jitter in the stations' unit; levels are rounded to 0.1 unit as a
    gauge would report them. `shape` > 1 sets how peaked the pulse is.
    """
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware")
    if step <= timedelta(0) or duration <= timedelta(0):
        raise ValueError("step and duration must be positive")
    rng = random.Random(seed)
    start = start.astimezone(UTC)
    rows: list[ReplayRow] = []
    for index in range(math.ceil(duration / step)):
        elapsed = index * step
        for gauge in gauges:
            level = wave_level(gauge, elapsed, shape, waves) + rng.gauss(0.0, noise)
            rows.append(ReplayRow(gauge.station_id, start + elapsed, round(level, 1)))
    return rows


def demo_history(
    end: datetime, *, days: int = HISTORY_DAYS, gauges: Sequence[WaveGauge] = DEMO_CHAIN
) -> list[ReplayRow]:
    """The weeks before the flood, ending just before `end`: base flow and FRESHETS."""
    span = timedelta(days=days)
    return synthetic_flood(gauges, start=end - span, duration=span, waves=FRESHETS, seed=2)
