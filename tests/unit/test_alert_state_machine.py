"""The alert state machine, as tables of level sequences and the events they must produce."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from alerts.events import AlertEvent, EventKind
from alerts.forecast_view import ForecastView, OutlookView
from alerts.gauge_state import GaugeState
from alerts.state_machine import (
    AlertRules,
    on_forecast,
    on_ladder_change,
    on_maintenance,
    on_reading,
    on_tick,
)
from floodwatch.catalog import Station
from floodwatch.models import QCFlag

T0 = datetime(2018, 1, 5, 0, 0, tzinfo=UTC)
STEP = timedelta(minutes=15)
RULES = AlertRules(clear_dwell_s=1800, offline_after_s=3600, fault_clear_readings=3)

E, D, A = EventKind.ESCALATION, EventKind.DEESCALATION, EventKind.ALL_CLEAR


def station(**changes: object) -> Station:
    base: dict[str, object] = {
        "id": "gauge",
        "names": {"en": "Gauge"},
        "river": {"en": "River"},
        "lat": 50.0,
        "lon": 8.0,
        "unit": "cm",
        "clear_margin": 10,
        "max_rise_per_hour": 20,
        "levels": [
            {"key": "watch", "value": 400, "severity": "watch", "short": "W", "names": {"en": "w"}},
            {
                "key": "warn",
                "value": 500,
                "severity": "warning",
                "short": "I",
                "names": {"en": "I"},
            },
            {
                "key": "danger",
                "value": 600,
                "severity": "danger",
                "short": "II",
                "names": {"en": "II"},
            },
        ],
    }
    base.update(changes)
    return Station.model_validate(base)


def play(
    levels: Sequence[float | None],
    gauge: Station | None = None,
    state: GaugeState | None = None,
    qc: dict[int, QCFlag] | None = None,
) -> tuple[GaugeState, list[AlertEvent]]:
    """Feed one reading per 15 minutes (None = no reading at that step)."""
    gauge = gauge or station()
    state = state or GaugeState()
    events: list[AlertEvent] = []
    for i, level in enumerate(levels):
        if level is None:
            continue
        step = on_reading(state, gauge, level, T0 + i * STEP, RULES, (qc or {}).get(i, QCFlag.NONE))
        state = step.state
        events.extend(step.events)
    return state, events


def summary(events: Sequence[AlertEvent]) -> list[tuple[EventKind, str | None]]:
    return [(e.kind, e.threshold.key if e.threshold else None) for e in events]


@pytest.mark.parametrize(
    ("name", "levels", "expected", "active"),
    [
        ("quiet river", [300, 310, 305], [], None),
        ("enters watch", [390, 400, 405], [(E, "watch")], "watch"),
        ("two rungs at once is one escalation", [350, 520], [(E, "warn")], "warn"),
        ("all three in one reading", [300, 650], [(E, "danger")], "danger"),
        (
            "rises step by step",
            [400, 500, 600],
            [(E, "watch"), (E, "warn"), (E, "danger")],
            "danger",
        ),
        # Hovering at a mark: dipping below the mark but not below mark − margin never leaves.
        ("hover at the mark", [500, 495, 501, 492, 499, 500, 491], [(E, "warn")], "warn"),
        # Below the margin, but not for the dwell (30 min = 2 steps later): still held.
        ("short dip below the margin", [500, 480, 495, 480, 495], [(E, "warn")], "warn"),
        # Below the margin for the dwell: de-escalates to the rung it still holds.
        (
            "de-escalates after the dwell",
            [500, 480, 480, 480],
            [(E, "warn"), (D, "watch")],
            "watch",
        ),
        (
            "all-clear below the lowest rung",
            [420, 380, 380, 380],
            [(E, "watch"), (A, "watch")],
            None,
        ),
        (
            "whole flood",
            [350, 450, 550, 650, 640, 580, 570, 560, 450, 450, 450, 300, 300, 300],
            [(E, "watch"), (E, "warn"), (E, "danger"), (D, "warn"), (D, "watch"), (A, "watch")],
            None,
        ),
        # A gap (no readings for 2 h) in the middle of a rise changes nothing by itself.
        (
            "gap",
            [450, None, None, None, None, None, None, None, 520],
            [(E, "watch"), (E, "warn")],
            "warn",
        ),
        # Falling from danger straight below everything: one all-clear, not three events.
        ("straight to all-clear", [650, 100, 100, 100], [(E, "danger"), (A, "danger")], None),
    ],
)
def test_level_ladder(
    name: str,
    levels: list[float | None],
    expected: list[tuple[EventKind, str]],
    active: str | None,
) -> None:
    state, events = play(levels)
    assert summary(events) == expected, name
    assert state.active == active, name


def test_escalation_names_the_previous_rung_and_level() -> None:
    _, events = play([450, 620])
    second = events[-1]
    assert second.previous is not None
    assert second.previous.key == "watch"
    assert second.level == 620
    assert second.unit == "cm"
    assert second.at == T0 + STEP


def test_a_spike_flagged_by_qc_is_a_fault_not_a_flood() -> None:
    state, events = play([300, 1500, 300, 300, 300, 300], qc={1: QCFlag.SPIKE})
    assert summary(events) == [(EventKind.FAULTY, None), (EventKind.FAULT_CLEARED, None)]
    assert all(e.operator_only for e in events)
    assert "spike" in (events[0].detail or "")
    assert state.active is None
    assert state.last_level == 300


def _feed(
    steps: Sequence[tuple[int, float, QCFlag]], gauge: Station | None = None
) -> tuple[GaugeState, list[list[AlertEvent]]]:
    """(step index, level, flags) in the order the engine hears them; events per input."""
    gauge = gauge or station()
    state = GaugeState()
    heard = []
    for i, level, qc in steps:
        moved = on_reading(state, gauge, level, T0 + i * STEP, RULES, qc)
        state = moved.state
        heard.append(list(moved.events))
    return state, heard


SUSPECT, CONFIRMED = QCFlag.SUSPECT, QCFlag.CONFIRMED


def test_a_suspect_reading_above_a_rung_tells_dispatchers_and_waits_for_its_verdict() -> None:
    """Flash rise: 300 → 620 held suspect, then confirmed with the next reading: dispatchers
    hear at once, residents one reading later, and the escalation is dated at the first."""
    state, heard = _feed(
        [(0, 300, QCFlag.NONE), (1, 620, SUSPECT), (1, 620, CONFIRMED), (2, 700, QCFlag.NONE)]
    )
    [unconfirmed] = heard[1]
    assert unconfirmed.kind is EventKind.UNCONFIRMED
    assert unconfirmed.operator_only
    assert unconfirmed.threshold is not None
    assert unconfirmed.threshold.key == "danger"
    assert (unconfirmed.level, unconfirmed.from_level) == (620, 300)
    assert unconfirmed.from_at == T0
    assert unconfirmed.rate_per_h == pytest.approx(320 * 4)
    assert summary(heard[2]) == [(E, "danger")]
    assert heard[2][0].at == T0 + STEP
    assert not heard[2][0].operator_only
    assert heard[3] == []
    assert state.active == "danger"
    assert state.unconfirmed is None
    assert not state.faulty


def test_a_refuted_suspect_is_a_fault_and_never_reaches_residents() -> None:
    state, heard = _feed(
        [
            (0, 300, QCFlag.NONE),
            (1, 1500, SUSPECT),
            (1, 1500, QCFlag.SPIKE | QCFlag.JUMP),
            (2, 301, QCFlag.NONE),
        ]
    )
    assert [e.kind for e in heard[1]] == [EventKind.UNCONFIRMED]
    assert [e.kind for e in heard[2]] == [EventKind.FAULTY]
    assert heard[3] == []
    assert state.active is None
    assert state.last_level == 301


def test_a_suspect_below_every_rung_or_at_the_rung_held_is_no_news() -> None:
    _, heard = _feed([(0, 300, QCFlag.NONE), (1, 390, SUSPECT)])
    assert heard[1] == []
    _, heard = _feed([(0, 520, QCFlag.NONE), (1, 560, SUSPECT)])
    assert heard[1] == []


def test_unconfirmed_is_said_once_per_rung_while_suspects_go_on() -> None:
    _, heard = _feed(
        [(0, 300, QCFlag.NONE), (1, 420, SUSPECT), (2, 430, SUSPECT), (3, 650, SUSPECT)]
    )
    assert [summary(events) for events in heard[1:]] == [
        [(EventKind.UNCONFIRMED, "watch")],
        [],
        [(EventKind.UNCONFIRMED, "danger")],
    ]


def test_a_suspect_on_a_gauge_in_maintenance_is_silent() -> None:
    gauge = station()
    state = on_maintenance(GaugeState(), gauge, True, T0).state
    moved = on_reading(state, gauge, 700, T0 + STEP, RULES, SUSPECT)
    assert moved.events == ()


def test_old_and_repeated_readings_change_nothing() -> None:
    gauge = station()
    state, _ = play([450, 520])
    late = on_reading(state, gauge, 700, T0, RULES)
    assert late.events == ()
    assert late.state == state


def test_maintenance_silences_residents_and_is_an_operator_event() -> None:
    gauge = station()
    state, _ = play([450])
    switched = on_maintenance(state, gauge, True, T0 + STEP)
    assert summary(switched.events) == [(EventKind.MAINTENANCE_ON, None)]
    assert switched.events[0].operator_only
    state, events = play([None, None, 650, 700], state=switched.state)
    assert events == []
    back = on_maintenance(state, gauge, False, T0 + 5 * STEP)
    assert summary(back.events) == [(EventKind.MAINTENANCE_OFF, None)]
    state, events = play([None] * 6 + [700], state=back.state)
    assert summary(events) == [(E, "danger")]


def test_readings_flagged_maintenance_by_the_collector_raise_nothing() -> None:
    _, events = play([300, 650], qc={1: QCFlag.MAINTENANCE})
    assert events == []


def test_threshold_edited_mid_event() -> None:
    state, _ = play([450, 520])  # holds "warn" (500)
    assert state.active == "warn"
    lowered = station(
        levels=[
            {"key": "watch", "value": 400, "severity": "watch", "short": "W", "names": {"en": "w"}},
            {
                "key": "warn",
                "value": 500,
                "severity": "warning",
                "short": "I",
                "names": {"en": "I"},
            },
            {
                "key": "danger",
                "value": 510,
                "severity": "danger",
                "short": "II",
                "names": {"en": "II"},
            },
        ]
    )
    moved = on_ladder_change(state, lowered, T0 + 2 * STEP, RULES)
    assert summary(moved.events) == [(E, "danger")]
    # Raised far above the level: leaving still needs the margin and the dwell.
    raised = station(
        levels=[
            {"key": "watch", "value": 400, "severity": "watch", "short": "W", "names": {"en": "w"}},
            {
                "key": "warn",
                "value": 700,
                "severity": "warning",
                "short": "I",
                "names": {"en": "I"},
            },
            {
                "key": "danger",
                "value": 800,
                "severity": "danger",
                "short": "II",
                "names": {"en": "II"},
            },
        ]
    )
    edited = on_ladder_change(state, raised, T0 + 2 * STEP, RULES)
    assert edited.events == ()
    later = on_reading(edited.state, raised, 520, T0 + 5 * STEP, RULES)
    assert summary(later.events) == [(D, "watch")]


def test_deleted_rung_is_not_an_all_clear() -> None:
    state, _ = play([450, 520])
    without_warn = station(
        levels=[
            {"key": "watch", "value": 400, "severity": "watch", "short": "W", "names": {"en": "w"}},
            {
                "key": "danger",
                "value": 600,
                "severity": "danger",
                "short": "II",
                "names": {"en": "II"},
            },
        ]
    )
    moved = on_ladder_change(state, without_warn, T0 + 2 * STEP, RULES)
    assert moved.events == ()
    assert moved.state.active == "watch"


def test_offline_and_back_online() -> None:
    gauge = station()
    state, _ = play([300])
    assert on_tick(state, gauge, T0 + timedelta(minutes=59), RULES).events == ()
    tick = on_tick(state, gauge, T0 + timedelta(minutes=61), RULES)
    assert summary(tick.events) == [(EventKind.OFFLINE, None)]
    assert tick.events[0].operator_only
    assert on_tick(tick.state, gauge, T0 + timedelta(hours=3), RULES).events == ()
    back = on_reading(tick.state, gauge, 300, T0 + timedelta(hours=3), RULES)
    assert summary(back.events) == [(EventKind.ONLINE, None)]


def forecast(
    at: datetime, rate: float = 5.0, usable: bool = True, **outlooks: tuple[str, float | None]
) -> ForecastView:
    views = tuple(
        OutlookView(key, status, at + timedelta(hours=hours) if hours is not None else None)
        for key, (status, hours) in outlooks.items()
    )
    return ForecastView(at=at, usable=usable, rate_per_h=rate, direction="rising", outlooks=views)


def test_prewarning_lifecycle() -> None:
    gauge = station()
    state, _ = play([450])  # holds watch
    now = T0 + STEP
    first = on_forecast(state, gauge, forecast(now, warn=("expected", 8.0)), RULES)
    assert summary(first.events) == [(EventKind.PREWARNING, "warn")]
    assert first.events[0].expected_at == now + timedelta(hours=8)
    # Moved by 30 min of 8 h: not worth a message.
    same = on_forecast(first.state, gauge, forecast(now, warn=("expected", 8.5)), RULES)
    assert same.events == ()
    # Moved by 3 h, but only an hour after the pre-warning: held back, not yet a message.
    soon = now + timedelta(hours=1)
    early = on_forecast(first.state, gauge, forecast(soon, warn=("expected", 2.0)), RULES)
    assert early.events == ()
    # Three hours on, still 3 h earlier than first said: an update.
    later = now + timedelta(hours=3)
    moved = on_forecast(first.state, gauge, forecast(later, warn=("expected", 2.0)), RULES)
    assert summary(moved.events) == [(EventKind.PREWARNING_UPDATE, "warn")]
    assert moved.events[0].expected_at == later + timedelta(hours=2)
    # A higher rung now expected: a new pre-warning for it.
    higher = on_forecast(
        moved.state,
        gauge,
        forecast(later, warn=("expected", 2.0), danger=("expected", 12.0)),
        RULES,
    )
    assert summary(higher.events) == [(EventKind.PREWARNING, "danger")]
    # Only "possible" now: kept (no flapping on the band's edge)...
    possible = on_forecast(higher.state, gauge, forecast(later, danger=("possible", None)), RULES)
    assert possible.events == ()
    # ...but not past the time it announced.
    overdue = later + timedelta(hours=13)
    stale = on_forecast(higher.state, gauge, forecast(overdue, danger=("possible", None)), RULES)
    assert summary(stale.events) == [(EventKind.PREWARNING_WITHDRAWN, "danger")]
    # Not expected at all: withdrawn.
    gone = on_forecast(higher.state, gauge, forecast(later, danger=("not_expected", None)), RULES)
    assert summary(gone.events) == [(EventKind.PREWARNING_WITHDRAWN, "danger")]
    assert gone.state.prewarning is None


def test_prewarning_comes_true_silently_then_escalates() -> None:
    gauge = station()
    state, _ = play([450])
    warned = on_forecast(state, gauge, forecast(T0 + STEP, warn=("expected", 2.0)), RULES)
    crossed = on_reading(warned.state, gauge, 505, T0 + 2 * STEP, RULES)
    assert summary(crossed.events) == [(E, "warn")]
    assert crossed.state.prewarning is None


def test_no_prewarning_from_insufficient_data_and_none_withdrawn_by_it() -> None:
    gauge = station()
    state, _ = play([450])
    warned = on_forecast(state, gauge, forecast(T0 + STEP, warn=("expected", 2.0)), RULES)
    blind = on_forecast(warned.state, gauge, forecast(T0 + 2 * STEP, usable=False), RULES)
    assert blind.events == ()
    assert blind.state.prewarning is not None


@pytest.mark.parametrize(
    ("rates", "fired"),
    [
        ([5.0, 10.0, 19.0], 0),
        ([5.0, 25.0, 30.0, 22.0], 1),  # one alert for one fast rise
        ([25.0, 15.0, 25.0], 1),  # 15 is not below half the limit: not re-armed
        ([25.0, 5.0, 25.0], 2),  # re-armed after slowing down
    ],
)
def test_rapid_rise(rates: list[float], fired: int) -> None:
    gauge = station()
    state, _ = play([300])
    count = 0
    for i, rate in enumerate(rates):
        step = on_forecast(state, gauge, forecast(T0 + (i + 1) * STEP, rate=rate), RULES)
        state = step.state
        count += sum(1 for e in step.events if e.kind is EventKind.RAPID_RISE)
    assert count == fired


def test_event_ids_are_deterministic_and_round_trip() -> None:
    _, first = play([450, 520])
    _, again = play([450, 520])
    assert [e.event_id for e in first] == [e.event_id for e in again]
    assert len({e.event_id for e in first}) == len(first)
    for event in first:
        assert AlertEvent.from_dict(event.to_dict()) == event


def test_gauge_state_round_trips() -> None:
    gauge = station()
    state, _ = play([450])
    state = on_forecast(state, gauge, forecast(T0 + STEP, warn=("expected", 3.0)), RULES).state
    assert GaugeState.from_dict(state.to_dict()) == state


def test_prewarnings_use_the_ladder_in_force_not_the_forecasters() -> None:
    """The forecaster judged its path against the file's mark (500: not expected); a
    hydrologist lowered the mark to 470, which the same path reaches in about 4 h."""
    from alerts.forecast_view import from_summary

    at = T0 + STEP
    summary_json = {
        "issued_at": at.isoformat(),
        "insufficient": None,
        "trend": {"at": at.isoformat(), "level": 450.0, "rate_per_h": 5.0, "direction": "rising"},
        "horizons": [
            {
                "valid_at": (at + timedelta(hours=h)).isoformat(),
                "level": 450.0 + 5 * h,
                "lower": 445.0 + 5 * h,
                "upper": 455.0 + 5 * h,
            }
            for h in (1, 3, 6)
        ],
        "thresholds": [
            {
                "key": "warn",
                "status": "not_expected",
                "expected_at": None,
                "earliest": None,
                "latest": None,
            },
        ],
    }
    view = from_summary(summary_json)
    state, _ = play([450])
    as_filed = on_forecast(state, station(), view, RULES)
    assert as_filed.events == ()
    edited = station(
        levels=[
            {"key": "watch", "value": 400, "severity": "watch", "short": "W", "names": {"en": "w"}},
            {
                "key": "warn",
                "value": 470,
                "severity": "warning",
                "short": "I",
                "names": {"en": "I"},
            },
            {
                "key": "danger",
                "value": 600,
                "severity": "danger",
                "short": "II",
                "names": {"en": "II"},
            },
        ]
    )
    warned = on_forecast(state, edited, view, RULES)
    assert summary(warned.events) == [(EventKind.PREWARNING, "warn")]
    assert warned.events[0].expected_at == at + timedelta(hours=4)


@pytest.mark.parametrize(
    ("forecast_after", "rate", "quoted"),
    [
        (None, None, None),  # no forecast yet: "trend not known"
        (timedelta(minutes=10), 12.0, 12.0),  # a recent trend is quoted
        (timedelta(hours=2, minutes=50), 12.0, 12.0),
        (timedelta(hours=3, minutes=20), 12.0, None),  # too old to quote
    ],
)
def test_alerts_decided_on_a_reading_quote_the_latest_trend(
    forecast_after: timedelta | None, rate: float | None, quoted: float | None
) -> None:
    gauge = station()
    state, _ = play([450])
    crossing_at = T0 + timedelta(hours=4)
    if forecast_after is not None and rate is not None:
        seen_at = crossing_at - forecast_after
        state = on_forecast(state, gauge, forecast(seen_at, rate=rate), RULES).state
    crossed = on_reading(state, gauge, 505, crossing_at, RULES)
    assert summary(crossed.events) == [(E, "warn")]
    assert crossed.events[0].rate_per_h == quoted
    assert crossed.events[0].direction == ("rising" if quoted is not None else None)
    # The trend is part of the stored state.
    assert GaugeState.from_dict(crossed.state.to_dict()) == crossed.state
