"""Table tests for collector.qc: which readings of a series get which QC flags."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from collector.qc import REBASE_AFTER, WINDOW_MAX_READINGS, QualityControl
from floodwatch.catalog import Catalog, parse_catalog
from floodwatch.models import QCFlag, Reading

T0 = datetime(2018, 2, 25, 7, 15, tzinfo=UTC)
NONE = QCFlag.NONE
SPIKE = QCFlag.SPIKE
JUMP = QCFlag.JUMP
FLAT = QCFlag.FLATLINE
MAINT = QCFlag.MAINTENANCE


def _station(station_id: str, unit: str = "cm", **extra: object) -> dict[str, object]:
    return {
        "id": station_id,
        "names": {"en": station_id},
        "river": {"en": "Neckar"},
        "lat": 49.5,
        "lon": 8.5,
        "unit": unit,
        **extra,
    }


CATALOG: Catalog = parse_catalog(
    {
        "stations": [
            _station("quiet"),  # cm defaults: jump 200 cm/h, spike 50 cm, flatline 12 h
            _station("flat", qc={"flatline_hours": 2}),
            _station("tolerant", qc={"max_jump_per_hour": 1000}),
            _station("noisy", qc={"max_jump_per_hour": 1000, "spike_min_delta": 20}),
            _station("repair", maintenance=True),
            _station("metres", unit="m"),
        ]
    }
)

Series = list[tuple[float, float]]  # (minutes after T0, level)


def _every(minutes: float, levels: list[float], start: float = 0.0) -> Series:
    return [(start + i * minutes, level) for i, level in enumerate(levels)]


def _steady(count: int, level: float = 300.0, start: float = 0.0) -> Series:
    # ±1 unit of gauge noise, so the steady series is not a flatline
    return _every(15, [level + (i % 3) - 1 for i in range(count)], start)


def _reading(station_id: str, minutes: float, level: float) -> Reading:
    return Reading(station_id=station_id, ts=T0 + timedelta(minutes=minutes), level=level)


def _flags(qc: QualityControl, station_id: str, series: Series) -> list[QCFlag]:
    return [qc.check(_reading(station_id, minutes, level)).qc for minutes, level in series]


@dataclass(frozen=True)
class Case:
    station: str
    series: Series
    flagged: dict[int, QCFlag] = field(default_factory=dict)  # index → flags; others clean
    default: QCFlag = NONE


# Mannheim-Neckar, 2018-02-25 08:15 .. 14:15 CET, 15-minute values as recorded.
MANNHEIM = [322, 322, 322, 320, 322, 319, 319, 318, 318, 318, 317, 317, 1518,
            316, 318, 316, 316, 315, 315, 315, 317, 315, 315, 314, 314]  # fmt: skip
MANNHEIM_SPIKE = MANNHEIM.index(1518)

STEADY = _steady(12)
NOISY = [300.0, 330.0, 310.0, 340.0, 320.0]
STEP_AT = len(STEADY)

CASES: dict[str, Case] = {
    "steady": Case("quiet", _steady(48)),
    "slow rise 1 cm per 15 min": Case("quiet", _every(15, [300.0 + i for i in range(96)])),
    "real flood 10 cm per 15 min": Case(
        "quiet", STEADY + _every(15, [300.0 + 10 * i for i in range(1, 41)], start=180)
    ),
    "fast flood 45 cm per 15 min": Case(
        "quiet", STEADY + _every(15, [300.0 + 45 * i for i in range(1, 30)], start=180)
    ),
    "flood at 1-minute cadence with noise": Case(
        "quiet", _every(1, [300.0 + 0.7 * i + (i % 2) for i in range(300)])
    ),
    "flood then recession": Case(
        "quiet",
        STEADY
        + _every(15, [300.0 + 20 * i for i in range(1, 21)], start=180)
        + _every(15, [700.0 - 15 * i for i in range(1, 21)], start=480),
    ),
    "Mannheim-Neckar 1518 cm sensor spike": Case(
        "quiet", _every(15, [float(v) for v in MANNHEIM]), {MANNHEIM_SPIKE: SPIKE | JUMP}
    ),
    "single spike, then clean": Case(
        "quiet", [*STEADY, (180, 500.0), (195, 301.0), (210, 300.0)], {STEP_AT: SPIKE | JUMP}
    ),
    "spike within the rate limit is still a spike": Case(
        "tolerant", [*STEADY, (180, 420.0), (195, 301.0)], {STEP_AT: SPIKE}
    ),
    "spike during a rise": Case(
        "quiet",
        [
            *_every(15, [300.0 + 10 * i for i in range(12)]),
            (180, 900.0),
            (195, 430.0),
            (210, 440.0),
        ],
        {12: SPIKE | JUMP},
    ),
    "downward spike (dropout to zero)": Case(
        "quiet", [*STEADY, (180, 0.0), (195, 300.0)], {STEP_AT: SPIKE | JUMP}
    ),
    "jump with too little history for a spike verdict": Case(
        "quiet", [(0, 300.0), (15, 300.5), (30, 400.0), (45, 301.0)], {2: JUMP}
    ),
    "1-second noise is not a jump": Case("quiet", [(i / 60, 300.0 + (i % 2)) for i in range(600)]),
    "large change over a long gap is not a jump": Case(
        "quiet", [*STEADY, (180 + 6 * 60, 600.0), (195 + 6 * 60, 601.0)]
    ),
    "sustained step is re-based on its third reading": Case(
        "quiet",
        STEADY + _every(15, [500.0, 501.0, 500.0, 502.0, 501.0, 500.0], start=180),
        {STEP_AT: SPIKE | JUMP, STEP_AT + 1: SPIKE | JUMP},
    ),
    "two-reading glitch never becomes the reference": Case(
        "quiet",
        [*STEADY, (180, 900.0), (195, 900.0), (210, 301.0), (225, 300.0)],
        {STEP_AT: SPIKE | JUMP, STEP_AT + 1: SPIKE | JUMP},
    ),
    "garbage that never agrees stays flagged": Case(
        "quiet",
        _every(5, [300.0] * 24)
        + _every(5, [1000.0, 2000.0, 1000.0, 2000.0, 1000.0], start=120)
        + [(145, 301.0)],
        {24 + i: SPIKE | JUMP for i in range(5)},
    ),
    # 60 above the median is within this gauge's recent noise band (MAD 10, band 74),
    # while a far larger deviation is still caught.
    "noisy gauge: MAD widens the spike band": Case(
        "noisy", [*_every(15, NOISY * 2), (150, 380.0), (165, 600.0)], {11: SPIKE}
    ),
    "same gauge after a calm spell: same deviation is a spike": Case(
        "noisy", [*_every(15, [320.0, 321.0] * 5), (150, 380.0)], {10: SPIKE}
    ),
    "metres: spike flagged, flood rise clean": Case(
        "metres",
        _every(15, [3.0, 3.01, 3.0, 3.01, 3.0, 3.01, 3.0, 4.5, 3.01])
        + _every(15, [3.0 + 0.1 * i for i in range(1, 20)], start=135),
        {7: SPIKE | JUMP},
    ),
    "flatline after flatline_hours, cleared by a change": Case(
        "flat",
        [*_every(15, [300.0] * 13), (195, 301.0), (210, 301.0)],
        {9: FLAT, 10: FLAT, 11: FLAT, 12: FLAT},
    ),
    "maintenance gauge: flagged, other checks still run": Case(
        "repair",
        [*STEADY, (180, 900.0), (195, 300.0)],
        {STEP_AT: SPIKE | JUMP | MAINT},
        default=MAINT,
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_flags(case: Case) -> None:
    flags = _flags(QualityControl(CATALOG), case.station, case.series)
    expected = [case.flagged.get(i, case.default) for i in range(len(case.series))]
    assert {i: f for i, f in enumerate(flags) if f} == {i: f for i, f in enumerate(expected) if f}


def test_impossible_ramp_is_flagged_for_as_long_as_it_lasts() -> None:
    # +45 cm every 5 minutes is 540 cm/h: consecutive readings never "agree", so the
    # window is never re-based onto a rate no river can reach.
    ramp = _every(5, [300.0 + 45 * i for i in range(1, 25)], start=170)
    flags = _flags(QualityControl(CATALOG), "quiet", STEADY + ramp)
    assert all(flag & JUMP for flag in flags[STEP_AT:])


def test_flatline_never_flags_a_flood() -> None:
    flags = _flags(QualityControl(CATALOG), "flat", _every(15, [300.0 + i for i in range(50)]))
    assert not any(flag & FLAT for flag in flags)


def test_out_of_order_readings_judged_against_neighbours_only() -> None:
    live = _steady(10)
    qc = QualityControl(CATALOG)
    control = QualityControl(CATALOG)
    _flags(qc, "quiet", live)
    _flags(control, "quiet", live)

    def late(minutes: float, level: float) -> QCFlag:
        return qc.check(_reading("quiet", minutes, level)).qc

    assert late(67.5, 300.0) == NONE  # between two neighbours, plausible
    assert late(67.5, 1518.0) == JUMP  # a replayed spike is still a jump from its neighbours
    assert late(live[-1][0], live[-1][1]) == NONE  # exact duplicate of the newest
    assert late(live[-1][0], 305.0) == NONE  # same ts: Δt = 0 against it, no rate
    assert late(-600.0, 300.0) == NONE  # older than the whole window

    # Late readings leave the state alone: the next live readings get the same verdicts.
    after = [(150.0, 301.0), (165.0, 900.0), (180.0, 300.0)]
    assert _flags(qc, "quiet", after) == _flags(control, "quiet", after)
    assert qc.window_length("quiet") == control.window_length("quiet")


def test_prime_gives_live_checks_their_context() -> None:
    history = [_reading("quiet", m, level) for m, level in _steady(10)]
    spike = _reading("quiet", 150, 1518.0)

    cold = QualityControl(CATALOG)
    assert cold.check(spike).qc == NONE  # nothing to compare with yet

    warm = QualityControl(CATALOG)
    warm.prime("quiet", list(reversed(history)))  # stores may return newest first
    assert warm.check(spike).qc == SPIKE | JUMP
    assert warm.check(_reading("quiet", 165, 300.0)).qc == NONE


def test_prime_carries_a_flat_run_into_live_readings() -> None:
    qc = QualityControl(CATALOG)
    qc.prime("flat", [_reading("flat", m, 300.0) for m, _ in _steady(7)])  # 0 .. 90 min
    assert _flags(qc, "flat", _every(15, [300.0] * 4, start=105)) == [NONE, NONE, FLAT, FLAT]


def test_prime_ignores_unknown_station() -> None:
    qc = QualityControl(CATALOG)
    qc.prime("nowhere", [_reading("nowhere", 0, 1.0)])
    assert qc.window_length("nowhere") == 0


def test_memory_is_bounded_per_station() -> None:
    qc = QualityControl(CATALOG)
    longest_window = longest_run = 0
    for i in range(100_000):
        # 1-second cadence: 2 hours would be 7,200 readings; the cap must hold instead.
        level = 300.0 + (i % 7) if i % 1000 else 4000.0 + (i % 5) * 500.0
        qc.check(_reading("quiet", i / 60, level))
        longest_window = max(longest_window, qc.window_length("quiet"))
        longest_run = max(longest_run, qc.suspect_run_length("quiet"))
    assert 0 < longest_window <= WINDOW_MAX_READINGS
    assert longest_run < REBASE_AFTER


def test_window_is_also_bounded_by_time() -> None:
    qc = QualityControl(CATALOG)
    _flags(qc, "quiet", _steady(20))  # 15-minute cadence: 2 hours hold 8 or 9 readings
    assert qc.window_length("quiet") <= 9


def test_clean_reading_is_returned_unchanged_and_flags_are_kept() -> None:
    qc = QualityControl(CATALOG)
    clean = _reading("quiet", 0, 300.0)
    assert qc.check(clean) is clean
    already = Reading(station_id="repair", ts=T0, level=300.0, qc=MAINT)
    assert qc.check(already) is already
    flagged_upstream = Reading(station_id="quiet", ts=T0 + timedelta(minutes=15), level=300.0,
                               qc=SPIKE)  # fmt: skip
    assert qc.check(flagged_upstream).qc == SPIKE


def test_unknown_station_passes_through() -> None:
    qc = QualityControl(CATALOG)
    reading = _reading("nowhere", 0, 1e9)
    assert qc.check(reading) is reading
    assert qc.window_length("nowhere") == 0
