"""What the demo plays: the synthetic Silverbrook flood (with its weeks of history) or a
replay CSV, cut into the steps of simulated time the player advances by."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from floodwatch.catalog import load_catalog
from floodwatch.replay_csv import ReplayRow, read_replay, rebase_shift
from floodwatch.settings import CATALOG_DIR, Settings
from floodwatch.synthetic import STEP, demo_history, synthetic_flood

PLAY_HOURS = 48
# The step is also how often the forecaster issues, in simulated time; longer recordings
# take longer steps so that a replay stays around a minute.
STEP_CHOICES_MIN = (15, 30, 60, 120, 180, 360, 720, 1440)
MAX_STEPS = 600


@dataclass(frozen=True)
class Step:
    """Readings of one simulated interval, ending at `at` (inclusive)."""

    at: datetime
    rows: tuple[ReplayRow, ...]


@dataclass(frozen=True)
class Scenario:
    title: str
    catalog: Path
    history: tuple[ReplayRow, ...]  # stored before the play (what the gauges sent earlier)
    steps: tuple[Step, ...]
    step: timedelta

    @property
    def start(self) -> datetime:
        return self.steps[0].at - self.step

    @property
    def end(self) -> datetime:
        return self.steps[-1].at

    @property
    def readings(self) -> int:
        return sum(len(step.rows) for step in self.steps)

    @property
    def station_ids(self) -> list[str]:
        return list(dict.fromkeys(row.station_id for step in self.steps for row in step.rows))


def floor_to(moment: datetime, step: timedelta) -> datetime:
    epoch = datetime(1970, 1, 1, tzinfo=moment.tzinfo)
    return moment - (moment - epoch) % step


def step_for(rows: Sequence[ReplayRow]) -> timedelta:
    """The smallest step in STEP_CHOICES_MIN at least as long as the reporting interval
    and giving at most MAX_STEPS steps."""
    times = sorted({row.ts for row in rows})
    if len(times) < 2:
        return STEP
    gaps = sorted(b - a for a, b in itertools.pairwise(times))
    typical = gaps[len(gaps) // 2]
    span = times[-1] - times[0]
    for minutes in STEP_CHOICES_MIN:
        step = timedelta(minutes=minutes)
        if step >= typical and span / step <= MAX_STEPS:
            return step
    return timedelta(minutes=STEP_CHOICES_MIN[-1])


def cut(rows: Sequence[ReplayRow], step: timedelta) -> tuple[Step, ...]:
    """Rows (any order) into consecutive steps; a row at the end of a step belongs to it."""
    ordered = sorted(rows, key=lambda row: row.ts)
    if not ordered:
        return ()
    first = floor_to(ordered[0].ts, step)
    if first == ordered[0].ts:
        first -= step
    steps: list[Step] = []
    index, at = 0, first + step
    while index < len(ordered):
        batch = []
        while index < len(ordered) and ordered[index].ts <= at:
            batch.append(ordered[index])
            index += 1
        steps.append(Step(at, tuple(batch)))
        at += step
    return tuple(steps)


def synthetic(now: datetime) -> Scenario:
    """The Silverbrook flood over the PLAY_HOURS before `now`, with six weeks of history."""
    duration = timedelta(hours=PLAY_HOURS)
    start = floor_to(now, STEP) - duration
    rows = synthetic_flood(start=start, duration=duration)
    return Scenario(
        "a synthetic flood down the Silverbrook (4 gauges, 48 hours)",
        CATALOG_DIR / "demo.yaml",
        tuple(demo_history(start)),
        cut(rows, STEP),
        STEP,
    )


def pick_catalog(settings: Settings, ids: set[str], explicit: bool) -> Path:
    """The configured catalog, or the shipped one that knows every station of the replay."""
    if explicit or ids <= set(load_catalog(settings.stations)):
        return settings.stations
    for path in sorted(CATALOG_DIR.glob("*.yaml")):
        if ids <= set(load_catalog(path)):
            return path
    return settings.stations


def replay(path: Path, settings: Settings, explicit: bool) -> Scenario:
    """A replay CSV moved in time so that it ends now (its spacing kept), played whole.

    There is no earlier history: the forecaster forecasts from trends until it has
    stored enough to learn from (it relearns every simulated FORECAST_RELEARN_H).
    """
    shift = rebase_shift(path)
    rows = [ReplayRow(row.station_id, row.ts + shift, row.level) for row in read_replay(path)]
    step = step_for(rows)
    catalog = pick_catalog(settings, {row.station_id for row in rows}, explicit)
    return Scenario(f"the recording {path.name}", catalog, (), cut(rows, step), step)
