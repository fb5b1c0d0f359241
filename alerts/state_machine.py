"""The per-gauge alert state machine: pure, one function per kind of input.

Each function takes the gauge's state and one input (a reading, a forecast, a clock tick,
a maintenance switch) and returns the new state and the events to deliver. The engine
stores both in one transaction (the outbox), so a crash never separates a state change
from its message.

Hysteresis: a rung is entered as soon as a QC-clean reading reaches it, and left only
after the level has stayed below `value − clear_margin` for `clear_dwell_s`, so a river
hovering at a mark does not flap. Jumping two rungs is one escalation to the higher one.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from alerts.events import AlertEvent, EventKind, ThresholdRef, make_event_id
from alerts.forecast_view import ForecastView
from alerts.gauge_state import GaugeState, Prewarning
from floodwatch.catalog import Station, Threshold
from floodwatch.models import FAULT_FLAGS, QCFlag


@dataclass(frozen=True, slots=True)
class AlertRules:
    clear_dwell_s: float = 1800.0  # below value − margin this long before a rung is left
    offline_after_s: float = 3600.0  # no reading this long: the gauge is offline
    fault_clear_readings: int = 4  # clean readings in a row that end a fault
    # A pre-warning is re-sent when its expected time moves by at least the larger of
    # these: an absolute step, and a share of the time still to go; and not more often
    # than every `prewarning_update_gap_s` (a resident reads a moving estimate as noise).
    prewarning_shift_s: float = 7200.0
    prewarning_shift_share: float = 0.33
    prewarning_update_gap_s: float = 3 * 3600.0


# A forecast's trend older than this (before the reading) is not quoted in an alert.
TREND_FRESH = timedelta(hours=3)


@dataclass(frozen=True, slots=True)
class Transition:
    state: GaugeState
    events: tuple[AlertEvent, ...] = field(default_factory=tuple)


def ref(rung: Threshold) -> ThresholdRef:
    return ThresholdRef(rung.key, rung.value, rung.severity, rung.short, dict(rung.names))


def _index(station: Station, key: str | None) -> int:
    if key is None:
        return -1
    return next((i for i, rung in enumerate(station.levels) if rung.key == key), -1)


def _event(
    station: Station,
    kind: EventKind,
    at: datetime,
    threshold: Threshold | None = None,
    **extra: object,
) -> AlertEvent:
    return AlertEvent(
        event_id=make_event_id(station.id, kind, threshold.key if threshold else None, at),
        station_id=station.id,
        kind=kind,
        at=at,
        threshold=ref(threshold) if threshold else None,
        unit=station.unit,
        **extra,  # type: ignore[arg-type]
    )


def on_reading(
    state: GaugeState,
    station: Station,
    level: float,
    at: datetime,
    rules: AlertRules,
    qc: QCFlag = QCFlag.NONE,
) -> Transition:
    """A stored reading: gauge health first, then (clean readings only) the ladder.

    A SUSPECT reading (quality control waits for the next one to tell a spike from a
    flood) is not taken: it moves no rung and leaves `last_at`, so that its confirmed copy
    (same time, flagged CONFIRMED, clean) is decided normally once it comes. If it is at or
    above a rung above the one held, dispatchers hear of it at once (UNCONFIRMED)."""
    if state.last_at is not None and at <= state.last_at:
        return Transition(state)  # an older or repeated reading changes nothing
    if qc & QCFlag.SUSPECT:
        return on_suspect(state, station, level, at)
    events: list[AlertEvent] = []
    if state.unconfirmed is not None:
        state = replace(state, unconfirmed=None)  # a trusted reading settles it
    if state.offline:
        events.append(_event(station, EventKind.ONLINE, at, level=level))
        state = replace(state, offline=False)
    fault = qc & FAULT_FLAGS
    if fault:
        if not state.faulty:
            detail = ", ".join(QCFlag(fault).names())
            events.append(_event(station, EventKind.FAULTY, at, level=level, detail=detail))
        return Transition(replace(state, faulty=True, clean_run=0, last_at=at), tuple(events))
    if state.faulty:
        run = state.clean_run + 1
        if run >= rules.fault_clear_readings:
            events.append(_event(station, EventKind.FAULT_CLEARED, at, level=level))
            state = replace(state, faulty=False, clean_run=0)
        else:
            state = replace(state, clean_run=run)
    state = replace(state, last_level=level, last_at=at)
    if state.maintenance or qc & QCFlag.MAINTENANCE:
        return Transition(state, tuple(events))
    moved = evaluate_level(state, station, level, at, rules)
    return Transition(moved.state, (*events, *moved.events))


def on_suspect(state: GaugeState, station: Station, level: float, at: datetime) -> Transition:
    """A reading quality control holds suspect: tell dispatchers if it reached a rung above
    the one held (once per rung), e.g. "unconfirmed: 9 → 22 ft in 30 min — verify"."""
    if state.maintenance:
        return Transition(state)
    ladder = station.levels
    floor = max(_index(station, state.active), _index(station, state.unconfirmed))
    reached = max((i for i, rung in enumerate(ladder) if level >= rung.value), default=-1)
    if reached <= floor:
        return Transition(state)
    extra: dict[str, object] = {"level": level}
    if state.last_level is not None and state.last_at is not None:
        hours = (at - state.last_at).total_seconds() / 3600
        extra |= {"from_level": state.last_level, "from_at": state.last_at}
        if hours > 0:
            extra["rate_per_h"] = (level - state.last_level) / hours
    event = _event(station, EventKind.UNCONFIRMED, at, ladder[reached], **extra)
    return Transition(replace(state, unconfirmed=ladder[reached].key), (event,))


def known_trend(state: GaugeState, at: datetime) -> dict[str, object]:
    """The newest forecast's trend for an event at `at`, if recent enough to quote."""
    if state.trend_at is None or not timedelta(0) <= at - state.trend_at <= TREND_FRESH:
        return {}
    return {"rate_per_h": state.trend_rate_per_h, "direction": state.trend_direction}


def evaluate_level(
    state: GaugeState, station: Station, level: float, at: datetime, rules: AlertRules
) -> Transition:
    """Enter, hold or leave rungs for one clean level (also used after a threshold edit)."""
    ladder = station.levels
    trend = known_trend(state, at)
    held = _index(station, state.active)
    reached = max((i for i, rung in enumerate(ladder) if level >= rung.value), default=-1)
    if reached > held:
        event = _event(
            station,
            EventKind.ESCALATION,
            at,
            ladder[reached],
            previous=ref(ladder[held]) if held >= 0 else None,
            level=level,
            **trend,
        )
        prewarning = state.prewarning
        if prewarning is not None and _index(station, prewarning.key) <= reached:
            prewarning = None  # it came true; the escalation says so
        new = replace(
            state, active=ladder[reached].key, since=at, below_since=None, prewarning=prewarning
        )
        return Transition(new, (event,))
    margin = station.clear_margin
    if held < 0 or level >= ladder[held].value - margin:
        return Transition(replace(state, below_since=None))
    below_since = state.below_since or at
    if at - below_since < timedelta(seconds=rules.clear_dwell_s):
        return Transition(replace(state, below_since=below_since))
    hold = max((i for i, rung in enumerate(ladder) if level >= rung.value - margin), default=-1)
    if hold < 0:
        event = _event(station, EventKind.ALL_CLEAR, at, ladder[held], level=level, **trend)
        return Transition(replace(state, active=None, since=at, below_since=None), (event,))
    event = _event(
        station,
        EventKind.DEESCALATION,
        at,
        ladder[hold],
        previous=ref(ladder[held]),
        level=level,
        **trend,
    )
    return Transition(replace(state, active=ladder[hold].key, since=at, below_since=None), (event,))


def on_forecast(
    state: GaugeState, station: Station, forecast: ForecastView, rules: AlertRules
) -> Transition:
    """Pre-warnings (issue, update, withdraw) and rate-of-rise alerts from a forecast."""
    if state.maintenance or not forecast.usable:
        return Transition(state)  # no data is not a reason to withdraw, nor to warn
    forecast = forecast.against(station.levels)  # the ladder in force, edits included
    if forecast.rate_per_h is not None or forecast.direction is not None:
        state = replace(
            state,
            trend_rate_per_h=forecast.rate_per_h,
            trend_direction=forecast.direction,
            trend_at=forecast.at,
        )
    rapid = rapid_rise(state, station, forecast)
    moved = prewarn(rapid.state, station, forecast, rules)
    return Transition(moved.state, (*rapid.events, *moved.events))


def rapid_rise(state: GaugeState, station: Station, forecast: ForecastView) -> Transition:
    limit = station.max_rise_per_hour
    rate = forecast.rate_per_h
    if limit is None or rate is None:
        return Transition(state)
    if not state.rapid and rate > limit:
        event = _event(
            station,
            EventKind.RAPID_RISE,
            forecast.at,
            level=state.last_level,
            rate_per_h=rate,
            direction=forecast.direction,
        )
        return Transition(replace(state, rapid=True), (event,))
    if state.rapid and rate < 0.5 * limit:
        return Transition(replace(state, rapid=False))  # re-armed, quietly
    return Transition(state)


def prewarn(
    state: GaugeState, station: Station, forecast: ForecastView, rules: AlertRules
) -> Transition:
    ladder = station.levels
    held = _index(station, state.active)
    expected = [
        (i, o)
        for i, rung in enumerate(ladder)
        if i > held and (o := forecast.outlook(rung.key)) and o.status == "expected"
    ]
    current = state.prewarning
    common: dict[str, object] = {
        "level": state.last_level,
        "rate_per_h": forecast.rate_per_h,
        "direction": forecast.direction,
    }
    if not expected:
        if current is None:
            return Transition(state)
        outlook = forecast.outlook(current.key)
        if outlook is not None and outlook.status == "reached":
            return Transition(state)  # comes true with the next reading
        if (
            outlook is not None
            and outlook.status == "possible"
            and forecast.at <= current.expected_at
        ):
            return Transition(state)  # still plausible: no flapping on the band's edge
        rung = ladder[_index(station, current.key)] if _index(station, current.key) >= 0 else None
        event = _event(station, EventKind.PREWARNING_WITHDRAWN, forecast.at, rung, **common)
        return Transition(replace(state, prewarning=None), (event,))
    index, outlook = expected[-1]  # the most severe rung the forecast expects
    assert outlook.expected_at is not None
    times: dict[str, object] = {
        "expected_at": outlook.expected_at,
        "earliest": outlook.earliest,
        "latest": outlook.latest,
    }
    new = Prewarning(ladder[index].key, outlook.expected_at, forecast.at)
    if current is None or index > _index(station, current.key):
        event = _event(station, EventKind.PREWARNING, forecast.at, ladder[index], **common, **times)
        return Transition(replace(state, prewarning=new), (event,))
    to_go = (current.expected_at - forecast.at).total_seconds()
    shift = max(rules.prewarning_shift_s, rules.prewarning_shift_share * max(to_go, 0.0))
    moved = abs((outlook.expected_at - current.expected_at).total_seconds()) >= shift
    rested = (forecast.at - current.issued_at).total_seconds() >= rules.prewarning_update_gap_s
    if index == _index(station, current.key) and not (moved and rested):
        return Transition(state)
    previous = (
        ladder[_index(station, current.key)] if index != _index(station, current.key) else None
    )
    event = _event(
        station,
        EventKind.PREWARNING_UPDATE,
        forecast.at,
        ladder[index],
        previous=ref(previous) if previous else None,
        **common,
        **times,
    )
    return Transition(replace(state, prewarning=new), (event,))


def on_tick(state: GaugeState, station: Station, now: datetime, rules: AlertRules) -> Transition:
    """The clock: a gauge silent for longer than allowed goes offline (operators only)."""
    if state.offline or state.last_at is None:
        return Transition(state)
    silent = now - state.last_at
    if silent <= timedelta(seconds=rules.offline_after_s):
        return Transition(state)
    hours = silent.total_seconds() / 3600
    event = _event(station, EventKind.OFFLINE, now, detail=f"no reading for {hours:.1f} h")
    return Transition(replace(state, offline=True), (event,))


def on_maintenance(state: GaugeState, station: Station, on: bool, at: datetime) -> Transition:
    """Maintenance on: no resident alerts from this gauge; a pre-warning is dropped quietly."""
    if state.maintenance == on:
        return Transition(state)
    kind = EventKind.MAINTENANCE_ON if on else EventKind.MAINTENANCE_OFF
    new = replace(state, maintenance=on, prewarning=None if on else state.prewarning)
    return Transition(new, (_event(station, kind, at, level=state.last_level),))


def on_ladder_change(
    state: GaugeState, station: Station, at: datetime, rules: AlertRules
) -> Transition:
    """Thresholds edited: re-evaluate the last level against the new ladder at once.

    A held rung that no longer exists is treated as the highest rung the level still
    holds (with the margin), so deleting a rung does not read as an all-clear.
    """
    level = state.last_level
    if level is None or state.maintenance:
        return Transition(state)
    if state.active is not None and _index(station, state.active) < 0:
        margin = station.clear_margin
        hold = max(
            (i for i, rung in enumerate(station.levels) if level >= rung.value - margin),
            default=-1,
        )
        state = replace(state, active=station.levels[hold].key if hold >= 0 else None)
    return evaluate_level(state, station, level, at, rules)
