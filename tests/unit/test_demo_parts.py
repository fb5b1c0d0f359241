"""The demo's pure parts: the synthetic history, cutting a play into steps, crossing and
lead times, and alert templates as terminal text."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from alerts.events import AlertEvent, EventKind, ThresholdRef
from floodwatch.catalog import load_catalog
from floodwatch.demo import lead, terminal
from floodwatch.demo.clock import SimClock
from floodwatch.demo.scenario import cut, floor_to, step_for
from floodwatch.replay_csv import ReplayRow
from floodwatch.settings import CATALOG_DIR
from floodwatch.synthetic import DEMO_CHAIN, FRESHETS, STEP, WaveGauge, demo_history, wave_level

T0 = datetime(2024, 3, 1, tzinfo=UTC)
KEYS = ("watch", "warning", "danger")
DAY = timedelta(hours=24)


def _h(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def _event(kind: EventKind, hours: float, key: str | None = None) -> AlertEvent:
    rung = ThresholdRef(key, 100.0, "warning", key.title(), {"en": key}) if key else None
    return AlertEvent(f"g:{kind}:{hours}", "g", kind, _h(hours), threshold=rung)


PW, UPD, WD, ESC = (
    EventKind.PREWARNING,
    EventKind.PREWARNING_UPDATE,
    EventKind.PREWARNING_WITHDRAWN,
    EventKind.ESCALATION,
)


@pytest.mark.parametrize(
    ("events", "rung", "crossed", "expected"),
    [
        ([], 0, 10, None),  # nobody was told: a miss
        ([(PW, 4, "watch")], 0, 10, 6.0),
        ([(PW, 4, "watch"), (UPD, 6, "watch")], 0, 10, 6.0),  # an update keeps the start
        ([(PW, 4, "danger")], 1, 10, 6.0),  # a higher rung's pre-warning covers this one
        ([(PW, 4, "watch")], 1, 10, None),  # a lower rung's does not
        ([(PW, 2, "warning"), (WD, 5, "warning"), (PW, 8, "warning")], 1, 10, 2.0),
        ([(PW, 2, "warning"), (PW, 5, "watch")], 1, 10, None),  # lowered below the rung
        ([(PW, 2, "warning"), (ESC, 6, "warning"), (PW, 20, "warning")], 1, 30, 10.0),
        ([(PW, -30, "watch")], 0, 10, None),  # not refreshed for a whole horizon: expired
        ([(PW, -30, "watch"), (PW, -2, "watch")], 0, 10, 12.0),  # a new episode after expiry
        ([(PW, 12, "watch")], 0, 10, None),  # issued after the crossing
    ],
)
def test_lead_is_from_the_first_prewarning_in_force(
    events: list[tuple[EventKind, float, str]],
    rung: int,
    crossed: float,
    expected: float | None,
) -> None:
    history = [_event(kind, at, key) for kind, at, key in events]
    got = lead.lead(history, KEYS, rung, _h(crossed), DAY)
    assert got == (None if expected is None else timedelta(hours=expected))


@pytest.mark.parametrize(
    ("before", "after", "value", "expected"),
    [
        ((0, 90.0), (1, 110.0), 100.0, 0.5),
        ((0, 90.0), (1, 100.0), 100.0, 1.0),  # reached exactly at the later reading
        ((0, 100.0), (1, 120.0), 100.0, 1.0),  # already there before: the later reading
        ((0, 90.0), (2, 130.0), 100.0, 0.5),
        ((0, 120.0), (1, 110.0), 100.0, 1.0),  # not rising: no interpolation
    ],
)
def test_crossing_time_interpolates_between_readings(
    before: tuple[float, float], after: tuple[float, float], value: float, expected: float
) -> None:
    got = lead.crossing_time((_h(before[0]), before[1]), (_h(after[0]), after[1]), value)
    assert got == _h(expected)


@pytest.mark.parametrize(
    ("html", "ansi", "expected"),
    [
        ("<b>Flood</b> — A &amp; B", False, "Flood — A & B"),
        ("<b>Flood</b>", True, "\x1b[1mFlood\x1b[0m"),
        ("<i>x</i> <code>1 &lt; 2</code>", True, "x 1 < 2"),
        ("no markup", False, "no markup"),
    ],
)
def test_html_to_terminal(html: str, ansi: bool, expected: str) -> None:
    assert terminal.html_to_terminal(html, ansi=ansi) == expected


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [(45 * 60, "45 min"), (5.2 * 3600, "5.2 h"), (80 * 3600, "3.3 days")],
)
def test_hours(seconds: float, expected: str) -> None:
    assert terminal.hours(timedelta(seconds=seconds)) == expected


@pytest.mark.parametrize(
    ("language", "kind", "expected"),
    [
        ("en", EventKind.ESCALATION, "Flood danger — Silverbrook Town (river Silverbrook)"),
        ("ru", EventKind.ESCALATION, "Опасный уровень воды — Сильвербрук, город (р. Сильвербрук)"),
        ("en", EventKind.PREWARNING, "Flood danger expected — Silverbrook Town"),
        ("en", EventKind.ALL_CLEAR, "All clear — Silverbrook Town"),
    ],
)
def test_block_is_the_template_as_plain_terminal_text(
    language: str, kind: EventKind, expected: str
) -> None:
    station = load_catalog(CATALOG_DIR / "demo.yaml")["silverbrook-town"]
    rung = station.levels[-1]
    ref = ThresholdRef(rung.key, rung.value, rung.severity, rung.short, dict(rung.names))
    event = AlertEvent(
        "e",
        station.id,
        kind,
        _h(13.25),
        threshold=ref,
        level=281.0,
        unit="cm",
        expected_at=_h(18) if kind is EventKind.PREWARNING else None,
    )
    text = terminal.block(event, station, language, UTC, lead="Pre-warned 5.0 h before")
    assert expected in text
    assert "<" not in text
    assert text.splitlines()[0] == f"── 2024-03-01 13:15 UTC · Silverbrook Town · {kind.value}"
    assert text.endswith("⏱ Pre-warned 5.0 h before")


def _rows(minutes: list[int]) -> list[ReplayRow]:
    return [ReplayRow("g", T0 + timedelta(minutes=m), float(m)) for m in minutes]


@pytest.mark.parametrize(
    ("minutes", "step_min", "expected"),
    [
        ([0, 15, 30], 15, [[0], [15], [30]]),
        ([5, 15, 20, 50], 15, [[5, 15], [20], [], [50]]),  # an empty step keeps time going
        ([0, 10, 20, 30, 40, 50, 60], 30, [[0], [10, 20, 30], [40, 50, 60]]),
    ],
)
def test_cut_into_steps_ending_on_the_step(
    minutes: list[int], step_min: int, expected: list[list[int]]
) -> None:
    step = timedelta(minutes=step_min)
    steps = cut(_rows(minutes), step)
    assert [[int(r.level) for r in s.rows] for s in steps] == expected
    assert all(s.at == floor_to(s.at, step) for s in steps)
    assert all(r.ts <= s.at for s in steps for r in s.rows)


@pytest.mark.parametrize(
    ("every_min", "days", "expected_min"),
    [(15, 2, 15), (15, 14, 60), (60, 14, 60), (1440, 365, 1440), (15, 3, 15)],
)
def test_step_keeps_replays_to_a_few_hundred_steps(
    every_min: int, days: int, expected_min: int
) -> None:
    count = days * 1440 // every_min
    rows = _rows([i * every_min for i in range(count)])
    assert step_for(rows) == timedelta(minutes=expected_min)


def test_sim_clock_never_goes_back() -> None:
    clock = SimClock(T0)
    clock.advance_to(_h(2))
    clock.advance_to(_h(1))
    assert clock() == _h(2)
    with pytest.raises(ValueError, match="timezone-aware"):
        SimClock(datetime(2024, 3, 1))  # noqa: DTZ001


def test_history_has_smaller_freshets_travelling_down_the_chain() -> None:
    rows = demo_history(T0)
    assert rows[-1].ts < T0 <= rows[-1].ts + timedelta(minutes=15)
    catalog = load_catalog(CATALOG_DIR / "demo.yaml")
    crests = []
    for gauge in DEMO_CHAIN:
        series = [r for r in rows if r.station_id == gauge.station_id]
        peak = max(series, key=lambda r: r.level)
        crests.append(peak.ts)
        # Smaller than the flood: the largest freshet stays below the flood's crest.
        assert peak.level < gauge.base + gauge.rise * max(w.scale for w in FRESHETS) + 3
        assert peak.level < catalog[gauge.station_id].levels[1].value, "below warning"
    assert crests == sorted(crests), "the largest freshet travels downstream"


@pytest.mark.parametrize("gauge", DEMO_CHAIN, ids=lambda g: g.station_id)
def test_each_gauge_rises_steadily_to_its_crest_then_recedes(gauge: WaveGauge) -> None:
    levels = [wave_level(gauge, i * STEP) for i in range(72 * 4)]
    crest = levels.index(max(levels))
    start = int(gauge.arrival / STEP)
    rising = levels[start : crest + 1]
    assert all(b > a for a, b in itertools.pairwise(rising)), "no dip on the rising limb"
    assert all(b < a for a, b in itertools.pairwise(levels[crest:])), "a smooth recession"
    assert abs(crest * STEP - (gauge.arrival + gauge.time_to_peak)) < STEP
