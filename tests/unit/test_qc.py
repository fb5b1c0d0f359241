"""Table tests for collector.qc: which readings of a series get which QC flags, on arrival
and once later readings have settled the suspects."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from collector.qc import QualityControl
from collector.qc_station import MAX_PENDING, WINDOW_MAX_READINGS
from floodwatch.catalog import Catalog, parse_catalog
from floodwatch.models import QCFlag, Reading

T0 = datetime(2018, 2, 25, 7, 15, tzinfo=UTC)
NONE = QCFlag.NONE
SPIKE = QCFlag.SPIKE
JUMP = QCFlag.JUMP
FLAT = QCFlag.FLATLINE
MAINT = QCFlag.MAINTENANCE
SUSPECT = QCFlag.SUSPECT
CONFIRMED = QCFlag.CONFIRMED


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
            _station("feet", unit="ft"),
            # a chain: head -> mid -> low, and a gauge on another river
            _station("head", unit="ft"),
            _station("mid", unit="ft", upstream=["head"], forecast={"max_travel_h": 12}),
            _station("low", unit="ft", upstream=["mid"], forecast={"max_travel_h": 12}),
            _station("elsewhere", unit="ft"),
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


def _run(qc: QualityControl, station_id: str, series: Series) -> tuple[list[QCFlag], list[QCFlag]]:
    """The flags each reading got on arrival, and the final ones (with the revisions later
    readings made applied, as the store ends up holding them)."""
    arrival: list[QCFlag] = []
    final: list[QCFlag] = []
    index = {T0 + timedelta(minutes=minutes): i for i, (minutes, _) in enumerate(series)}
    for minutes, level in series:
        checked = qc.check(_reading(station_id, minutes, level))
        arrival.append(checked.reading.qc)
        final.append(checked.reading.qc)
        for revised in checked.revised:
            final[index[revised.ts]] = revised.qc
    return arrival, final


def _final(qc: QualityControl, station_id: str, series: Series) -> list[QCFlag]:
    return _run(qc, station_id, series)[1]


@dataclass(frozen=True)
class Case:
    station: str
    series: Series
    final: dict[int, QCFlag] = field(default_factory=dict)  # index → final flags; others clean
    default: QCFlag = NONE


# Mannheim-Neckar, 2018-02-25 08:15 .. 14:15 CET, 15-minute values as recorded.
MANNHEIM = [322, 322, 322, 320, 322, 319, 319, 318, 318, 318, 317, 317, 1518,
            316, 318, 316, 316, 315, 315, 315, 317, 315, 315, 314, 314]  # fmt: skip
MANNHEIM_SPIKE = MANNHEIM.index(1518)

STEADY = _steady(12)
NOISY = [300.0, 330.0, 310.0, 340.0, 320.0]
STEP_AT = len(STEADY)
# The headwater gauge of a real flash flood (issue 12): 9 ft to 37 ft in about two hours,
# 2-6 ft between consecutive 15-minute readings.
FLASH_FT = [9.0, 9.02, 9.01, 9.03, 9.0, 9.02, 11.0, 13.0, 17.0, 23.0, 29.0, 33.0, 36.0, 37.0,
            36.6, 35.5, 34.0]  # fmt: skip


def _flash(per_15_min: float, steps: int = 6) -> Series:
    return STEADY + _every(15, [300.0 + per_15_min * i for i in range(1, steps + 1)], start=180)


CASES: dict[str, Case] = {
    "steady": Case("quiet", _steady(48)),
    "slow rise 1 cm per 15 min": Case("quiet", _every(15, [300.0 + i for i in range(96)])),
    "real flood 10 cm per 15 min": Case(
        "quiet", STEADY + _every(15, [300.0 + 10 * i for i in range(1, 41)], start=180)
    ),
    "fast flood 45 cm per 15 min": Case(
        "quiet", STEADY + _every(15, [300.0 + 45 * i for i in range(1, 30)], start=180)
    ),
    # Flash rises: the first step is held, the second confirms it, the rest go on clean.
    "flash rise 0.6 m per 15 min": Case("quiet", _flash(60.0), {STEP_AT: CONFIRMED}),
    "flash rise 1 m per 15 min": Case("quiet", _flash(100.0), {STEP_AT: CONFIRMED}),
    "flash rise 2 m per 15 min": Case("quiet", _flash(200.0), {STEP_AT: CONFIRMED}),
    "flash rise 3.7 m per 15 min (Kerrville 2025)": Case(
        "quiet", _flash(370.0, steps=3), {STEP_AT: CONFIRMED}
    ),
    "flash flood 9 to 37 ft in two hours": Case(
        "feet", _every(15, FLASH_FT), {FLASH_FT.index(11.0): CONFIRMED}
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
    "downward spike (one dropout to zero)": Case(
        "quiet", [*STEADY, (180, 0.0), (195, 300.0)], {STEP_AT: SPIKE | JUMP}
    ),
    "dropout to zero for an hour, then back": Case(
        "quiet",
        [*STEADY, *_every(15, [0.0] * 4, start=180), (240, 301.0)],
        {STEP_AT + i: SPIKE | JUMP for i in range(4)},
    ),
    "jump with too little history for a spike verdict": Case(
        "quiet", [(0, 300.0), (15, 300.5), (30, 400.0), (45, 301.0)], {2: SPIKE | JUMP}
    ),
    "1-second noise is not a jump": Case("quiet", [(i / 60, 300.0 + (i % 2)) for i in range(600)]),
    "large change over a long gap is not a jump": Case(
        "quiet", [*STEADY, (180 + 6 * 60, 600.0), (195 + 6 * 60, 601.0)]
    ),
    "sustained step up (re-levelled sensor) is confirmed by the next reading": Case(
        "quiet",
        STEADY + _every(15, [500.0, 501.0, 500.0, 502.0, 501.0, 500.0], start=180),
        {STEP_AT: CONFIRMED},
    ),
    "a fall is confirmed by two further readings": Case(
        "quiet",
        STEADY + _every(15, [200.0, 150.0, 140.0, 135.0], start=180),
        {STEP_AT: CONFIRMED, STEP_AT + 1: CONFIRMED},
    ),
    "two-reading glitch never becomes the reference": Case(
        "quiet",
        [*STEADY, (180, 900.0), (195, 900.0), (210, 301.0), (225, 300.0)],
        {STEP_AT: SPIKE | JUMP, STEP_AT + 1: SPIKE | JUMP},
    ),
    "garbage faster than any river is never confirmed": Case(
        "quiet",
        _every(5, [300.0] * 24)
        + _every(5, [1000.0, 2000.0, 1000.0, 2000.0, 1000.0], start=120)
        + [(145, 301.0)],
        {24 + i: SPIKE | JUMP for i in range(5)},
    ),
    # 60 above the median is within this gauge's recent noise band (MAD 10, band 74),
    # while a far larger deviation is still caught.
    "noisy gauge: MAD widens the spike band": Case(
        "noisy",
        [*_every(15, NOISY * 2), (150, 380.0), (165, 600.0), (180, 330.0)],
        {11: SPIKE},
    ),
    "same gauge after a calm spell: same deviation is a spike": Case(
        "noisy", [*_every(15, [320.0, 321.0] * 5), (150, 380.0), (165, 320.0)], {10: SPIKE}
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
def test_final_flags(case: Case) -> None:
    final = _final(QualityControl(CATALOG), case.station, case.series)
    expected = [case.final.get(i, case.default) for i in range(len(case.series))]
    assert {i: f for i, f in enumerate(final) if f} == {i: f for i, f in enumerate(expected) if f}


@pytest.mark.parametrize(
    ("name", "held"),
    [
        ("flash rise 2 m per 15 min", [STEP_AT]),
        ("Mannheim-Neckar 1518 cm sensor spike", [MANNHEIM_SPIKE]),
        ("a fall is confirmed by two further readings", [STEP_AT, STEP_AT + 1]),
        ("dropout to zero for an hour, then back", [STEP_AT + i for i in range(4)]),
        ("steady", []),
    ],
)
def test_what_is_held_on_arrival(name: str, held: list[int]) -> None:
    """A suspect is published SUSPECT at once; every other reading has its verdict."""
    case = CASES[name]
    arrival, _ = _run(QualityControl(CATALOG), case.station, case.series)
    assert [i for i, flags in enumerate(arrival) if flags & SUSPECT] == held


def test_a_flash_rise_is_trusted_one_reading_after_it_starts() -> None:
    """The issue's flash flood: the crest readings are clean, none held beyond one step."""
    arrival, final = _run(QualityControl(CATALOG), "feet", _every(15, FLASH_FT))
    first = FLASH_FT.index(11.0)
    assert arrival[first] == SUSPECT
    assert final[first] == CONFIRMED
    assert all(flags == NONE for flags in arrival[first + 1 :])


def test_a_neighbour_rising_confirms_at_once() -> None:
    """The wave from upstream: the first big step downstream is corroborated, not held."""
    qc = QualityControl(CATALOG)
    _run(qc, "head", _every(15, FLASH_FT))  # 0 .. 240 min
    wave = _every(15, [5.0, 5.02, 5.0, 5.01, 8.0, 12.0, 16.0], start=300)
    arrival, final = _run(qc, "mid", wave)
    assert arrival == [NONE] * 4 + [CONFIRMED, NONE, NONE]
    assert final == arrival
    # Not a gauge on another river, and not a neighbour's old news.
    other, _ = _run(qc, "elsewhere", wave)
    assert other[4] == SUSPECT
    late = QualityControl(CATALOG)
    _run(late, "head", _every(15, FLASH_FT))
    arrival, _ = _run(late, "mid", _every(15, [5.0, 5.02, 5.0, 5.01, 8.0], start=60 * 24))
    assert arrival[4] == SUSPECT


def test_a_neighbour_moving_the_other_way_does_not_corroborate() -> None:
    qc = QualityControl(CATALOG)
    _run(qc, "head", _every(15, [30.0, 30.1, 30.0, 30.1, 30.0, 24.0, 20.0, 18.0, 17.0]))
    arrival, _ = _run(qc, "mid", _every(15, [5.0, 5.02, 5.0, 5.01, 8.0], start=150))
    assert arrival[4] == SUSPECT


def test_an_implausibly_fast_rise_is_not_corroborated_either() -> None:
    qc = QualityControl(CATALOG)
    _run(qc, "head", _every(15, FLASH_FT))
    arrival, final = _run(qc, "mid", [*_every(15, [5.0, 5.02, 5.0], start=240), (285, 95.0)])
    assert arrival[3] == SUSPECT  # 90 ft in 15 min: no river
    assert final[3] == SUSPECT  # undecided: nothing came after it


def test_a_stuck_value_decides_nothing_and_becomes_a_flatline() -> None:
    """A sensor that drops out and repeats its value is never taken for the river."""
    series = [*STEADY, *_every(15, [0.0] * 12, start=180)]
    final = _final(QualityControl(CATALOG), "flat", series)
    assert all(flags & SUSPECT for flags in final[STEP_AT:])
    assert all(flags & FLAT for flags in final[STEP_AT + 9 :])


def test_revisions_keep_the_other_flags() -> None:
    """A suspect on a maintenance gauge stays MAINTENANCE when confirmed."""
    qc = QualityControl(CATALOG)
    _, final = _run(qc, "repair", _flash(200.0))
    assert final[STEP_AT] == CONFIRMED | MAINT
    assert all(flags == MAINT for i, flags in enumerate(final) if i != STEP_AT)


def test_out_of_order_readings_judged_against_neighbours_only() -> None:
    live = _steady(10)
    qc = QualityControl(CATALOG)
    control = QualityControl(CATALOG)
    _run(qc, "quiet", live)
    _run(control, "quiet", live)

    def late(minutes: float, level: float) -> QCFlag:
        checked = qc.check(_reading("quiet", minutes, level))
        assert checked.revised == ()
        return checked.reading.qc

    assert late(67.5, 300.0) == NONE  # between two neighbours, plausible
    assert late(67.5, 1518.0) == SPIKE | JUMP  # a replayed spike, out of both neighbours
    assert late(live[-1][0], live[-1][1]) == NONE  # exact duplicate of the newest
    assert late(live[-1][0], 305.0) == NONE  # same ts: Δt = 0 against it, no rate
    assert late(-600.0, 300.0) == NONE  # older than the whole window

    # Late readings leave the state alone: the next live readings get the same verdicts.
    after = [(150.0, 301.0), (165.0, 900.0), (180.0, 300.0)]
    assert _run(qc, "quiet", after) == _run(control, "quiet", after)
    assert qc.window_length("quiet") == control.window_length("quiet")


def test_late_readings_of_a_flash_rise_between_their_neighbours_stay_clean() -> None:
    qc = QualityControl(CATALOG)
    _run(qc, "feet", _every(15, FLASH_FT))
    checked = qc.check(_reading("feet", 15 * 9 + 7.5, 26.0))  # between 23 and 29 ft
    assert checked.reading.qc == NONE


def test_prime_gives_live_checks_their_context() -> None:
    history = [_reading("quiet", m, level) for m, level in _steady(10)]
    spike = _reading("quiet", 150, 1518.0)

    cold = QualityControl(CATALOG)
    assert cold.check(spike).reading.qc == NONE  # nothing to compare with yet

    warm = QualityControl(CATALOG)
    warm.prime("quiet", list(reversed(history)))  # stores may return newest first
    assert warm.check(spike).reading.qc == SUSPECT
    settled = warm.check(_reading("quiet", 165, 300.0))
    assert settled.reading.qc == NONE
    assert [(r.level, r.qc) for r in settled.revised] == [(1518.0, SPIKE | JUMP)]


def test_prime_trusts_stored_verdicts_and_resumes_a_pending_suspect() -> None:
    """A collector restarted between a suspect and its decision decides it on the next
    live reading, from the stored one."""
    stored = [_reading("quiet", m, level) for m, level in STEADY]
    stored.append(Reading("quiet", T0 + timedelta(minutes=180), 500.0, qc=SUSPECT))
    stored.insert(3, Reading("quiet", T0 + timedelta(minutes=45), 9000.0, qc=SPIKE | JUMP))
    qc = QualityControl(CATALOG)
    qc.prime("quiet", stored)
    assert qc.suspect_run_length("quiet") == 1
    settled = qc.check(_reading("quiet", 195, 600.0))
    assert settled.reading.qc == NONE
    assert [(r.level, r.qc) for r in settled.revised] == [(500.0, CONFIRMED)]


def test_prime_carries_a_flat_run_into_live_readings() -> None:
    qc = QualityControl(CATALOG)
    qc.prime("flat", [_reading("flat", m, 300.0) for m, _ in _steady(7)])  # 0 .. 90 min
    assert _final(qc, "flat", _every(15, [300.0] * 4, start=105)) == [NONE, NONE, FLAT, FLAT]


def test_prime_ignores_unknown_station() -> None:
    qc = QualityControl(CATALOG)
    qc.prime("nowhere", [_reading("nowhere", 0, 1.0)])
    assert qc.window_length("nowhere") == 0


def test_memory_is_bounded_per_station() -> None:
    qc = QualityControl(CATALOG)
    longest_window = longest_run = 0
    for i in range(100_000):
        # 1-second cadence: 2 hours would be 7,200 readings; the cap must hold instead.
        # Every 1000th reading a wild value, and a stuck run of them now and then.
        wild = i % 1000 == 0 or 50_000 <= i < 50_100
        level = 4000.0 if wild else 300.0 + (i % 7)
        qc.check(_reading("quiet", i / 60, level))
        longest_window = max(longest_window, qc.window_length("quiet"))
        longest_run = max(longest_run, qc.suspect_run_length("quiet"))
    assert 0 < longest_window <= WINDOW_MAX_READINGS
    assert 0 < longest_run <= MAX_PENDING


def test_window_is_also_bounded_by_time() -> None:
    qc = QualityControl(CATALOG)
    _run(qc, "quiet", _steady(20))  # 15-minute cadence: 2 hours hold 8 or 9 readings
    assert qc.window_length("quiet") <= 9


def test_clean_reading_is_returned_unchanged_and_flags_are_kept() -> None:
    qc = QualityControl(CATALOG)
    clean = _reading("quiet", 0, 300.0)
    assert qc.check(clean).reading is clean
    already = Reading(station_id="repair", ts=T0, level=300.0, qc=MAINT)
    assert qc.check(already).reading is already
    flagged_upstream = Reading(station_id="quiet", ts=T0 + timedelta(minutes=15), level=300.0,
                               qc=SPIKE)  # fmt: skip
    assert qc.check(flagged_upstream).reading.qc == SPIKE


def test_unknown_station_passes_through() -> None:
    qc = QualityControl(CATALOG)
    reading = _reading("nowhere", 0, 1e9)
    assert qc.check(reading).reading is reading
    assert qc.window_length("nowhere") == 0
