"""Scoring a backtest: crossings, pre-warnings, lead times, misses and false alarms.

Definitions (per gauge and rung, evaluation window only):

- crossing: the level (QC-clean readings) reached the rung from below, interpolated
  between readings; it counts again only after falling below rung − clear margin
  (forecasting/skill.py `upward_crossings`).
- pre-warning in force for a rung: the gauge does not hold this rung yet, its pre-warning
  (alert state) is for this rung or a higher one, and was issued or last updated at most
  one forecast horizon (the station's longest) ago: a pre-warning nobody refreshed for a
  whole horizon has expired.
- episode: an unbroken stretch of a pre-warning in force. It ends when it came true
  (the escalation cleared it), was withdrawn (or downgraded below the rung), expired, or
  is still open when the recording ends.
- lead time: crossing time − the start of the episode in force at the crossing, i.e.
  since residents were first told of this rung (or a higher one) and not told otherwise.
- miss: a crossing with no pre-warning in force for it.
- false alarm: an episode that was withdrawn or expired without a crossing in it.
- alert: the first escalation to this rung or higher at or after the crossing.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from alerts.backtest import GaugeRun, Run
from alerts.events import AlertEvent, EventKind
from floodwatch.catalog import Threshold
from forecasting.skill import upward_crossings
from forecasting.trend import HOUR

PREWARNING_KINDS = (EventKind.PREWARNING, EventKind.PREWARNING_UPDATE)


@dataclass(frozen=True)
class Episode:
    start: float
    end: float | None  # None: still in force when the recording ends
    outcome: str  # came_true | withdrawn | expired | open
    expected_at: float | None  # what the first pre-warning said
    crossings: tuple[float, ...] = ()

    @property
    def false_alarm(self) -> bool:
        return not self.crossings and self.outcome in ("withdrawn", "expired")


@dataclass(frozen=True)
class Crossing:
    at: float
    prewarned_at: float | None
    expected_at: float | None  # the time the first pre-warning gave
    alert_at: float | None  # the escalation

    @property
    def lead_s(self) -> float | None:
        return None if self.prewarned_at is None else self.at - self.prewarned_at

    @property
    def missed(self) -> bool:
        return self.prewarned_at is None


@dataclass(frozen=True)
class RungScore:
    rung: Threshold
    catalog_value: float | None  # the catalog's value when --set changed it
    crossings: list[Crossing]
    episodes: list[Episode]
    prewarnings: int  # pre-warning messages naming this rung (new ones)
    updates: int  # pre-warning updates naming this rung

    @property
    def misses(self) -> int:
        return sum(1 for c in self.crossings if c.missed)

    @property
    def false_alarms(self) -> list[Episode]:
        return [e for e in self.episodes if e.false_alarm]


@dataclass(frozen=True)
class GaugeScore:
    station_id: str
    rungs: list[RungScore]
    messages: Counter[str]  # resident messages by event kind
    operator: Counter[str]  # operator-only events by kind
    methods: Counter[str]  # forecasts by method actually used
    peak: tuple[float, float] | None  # (time, level) in the window
    flagged: int  # readings flagged by QC in the window


def _index(run: GaugeRun, event: AlertEvent) -> int:
    keys = [rung.key for rung in run.station.levels]
    return keys.index(event.threshold.key) if event.threshold else -1


def episodes(run: GaugeRun, k: int, horizon_s: float) -> list[Episode]:
    t, warned, issued = run.moments, run.warned, run.warned_at
    with np.errstate(invalid="ignore"):
        in_force = (warned >= k) & (run.held < k) & (t - issued <= horizon_s)
    edges = np.diff(np.concatenate([[0], in_force.astype(np.int8), [0]]))
    starts, stops = np.nonzero(edges == 1)[0], np.nonzero(edges == -1)[0] - 1
    out = []
    for i, j in zip(starts.tolist(), stops.tolist(), strict=True):
        start = float(t[i])
        first = [
            e
            for e in run.events
            if e.kind in PREWARNING_KINDS and _index(run, e) >= k and e.at.timestamp() <= start
        ]
        expected = first[-1].expected_at if first else None
        if j == t.size - 1:
            end, outcome = None, "open"
        elif run.held[j + 1] >= k:  # the escalation cleared it
            end, outcome = float(t[j + 1]), "came_true"
        elif warned[j + 1] >= k:  # still there, but not refreshed for a whole horizon
            end, outcome = float(issued[j]) + horizon_s, "expired"
        else:  # withdrawn, or downgraded below this rung
            end, outcome = float(t[j + 1]), "withdrawn"
        out.append(Episode(start, end, outcome, expected.timestamp() if expected else None))
    return out


def score_rung(run: GaugeRun, k: int, start: float, end: float) -> RungScore:
    station = run.station
    rung = station.levels[k]
    clean = run.gauge.clean
    found = upward_crossings(clean.t, clean.level, rung.value, station.clear_margin)
    times = [c for c in found if start <= c <= end and c > clean.t[0]]
    horizon = station.forecast.horizons_h[-1] * HOUR
    eps = episodes(run, k, horizon)
    escalations = [
        e.at.timestamp()
        for e in run.events
        if e.kind is EventKind.ESCALATION and _index(run, e) >= k
    ]
    crossings = []
    covered: dict[int, list[float]] = {}
    for n, c in enumerate(times):
        following = times[n + 1] if n + 1 < len(times) else float("inf")
        alert = next((a for a in escalations if c <= a < following), None)
        hit = next(
            (i for i, e in enumerate(eps) if e.start <= c and (e.end is None or c <= e.end)),
            None,
        )
        if hit is None:
            crossings.append(Crossing(c, None, None, alert))
            continue
        covered.setdefault(hit, []).append(c)
        crossings.append(Crossing(c, eps[hit].start, eps[hit].expected_at, alert))
    eps = [
        Episode(e.start, e.end, e.outcome, e.expected_at, tuple(covered.get(i, ())))
        for i, e in enumerate(eps)
    ]
    kinds = Counter(
        e.kind
        for e in run.events
        if e.kind in PREWARNING_KINDS and e.threshold and e.threshold.key == rung.key
    )
    catalog = {r.key: r.value for r in run.catalog_station.levels}.get(rung.key)
    return RungScore(
        rung,
        catalog if catalog != rung.value else None,
        crossings,
        eps,
        kinds[EventKind.PREWARNING],
        kinds[EventKind.PREWARNING_UPDATE],
    )


def score_gauge(run: GaugeRun, start: float, end: float) -> GaugeScore:
    clean = run.gauge.clean.window(start, end)
    peak = None
    if len(clean):
        i = int(np.argmax(clean.level))
        peak = (float(clean.t[i]), float(clean.level[i]))
    window = run.gauge.t >= start
    flagged = int(np.count_nonzero(np.asarray(run.gauge.flags)[window]))
    return GaugeScore(
        run.station.id,
        [score_rung(run, k, start, end) for k in range(len(run.station.levels))],
        Counter(e.kind.value for e in run.events if not e.operator_only),
        Counter(e.kind.value for e in run.events if e.operator_only),
        Counter(fc.method for fc in run.forecasts),
        peak,
        flagged,
    )


def score_run(run: Run) -> list[GaugeScore]:
    return [score_gauge(gauge, run.start, run.end) for gauge in run.gauges]
