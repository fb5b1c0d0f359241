"""One gauge's rolling quality control: tell a spike from a flood (see collector/qc.py).

Times are epoch seconds and flags plain ints on the per-message path: every IntFlag
operation goes through the enum machinery (~0.5 µs each), which would dominate a check.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from floodwatch.models import QCFlag, Reading

if TYPE_CHECKING:
    from floodwatch.catalog import Station

WINDOW_SPAN_S = 2 * 3600.0
WINDOW_MAX_READINGS = 32
SPIKE_MIN_WINDOW = 5
SPIKE_MAD_K = 5.0
MAD_TO_SIGMA = 1.4826  # makes the MAD estimate a standard deviation for normal noise
JUMP_MIN_INTERVAL_S = 300.0
# A suspect rise is settled by one further reading, a suspect fall by two: a fall that is
# waited for only delays an all-clear, a rise that is waited for delays a warning.
CONFIRM_RISE_AFTER = 1
CONFIRM_FALL_AFTER = 2
# A later reading that kept less than this share of a suspect's departure "came back".
CAME_BACK_SHARE = 0.5
# A big step right after a confirmed move in the same direction, at up to this many times
# its rate, is the flood going on (a flash flood accelerates: 2 ft, then 6 ft in 15 min).
CONTINUATION_FACTOR = 4.0
CONTINUATION_WINDOW_S = 2 * 3600.0
# Suspects kept for one decision; a sensor stuck after a jump would otherwise grow this.
MAX_PENDING = 8

DEFAULT_SPIKE_MIN_DELTA: Mapping[str, float] = {"cm": 50.0, "m": 0.5, "ft": 1.6}
# Well below any gauge's resolution, only there to absorb float noise from unit conversion.
FLAT_EPSILON: Mapping[str, float] = {"cm": 1e-3, "m": 1e-5, "ft": 3e-5}

NONE = 0
SPIKE = int(QCFlag.SPIKE)
FLATLINE = int(QCFlag.FLATLINE)
JUMP = int(QCFlag.JUMP)
MAINTENANCE = int(QCFlag.MAINTENANCE)
SUSPECT = int(QCFlag.SUSPECT)
CONFIRMED = int(QCFlag.CONFIRMED)

Corroborated = Callable[[float, int], bool]  # (time, direction +1/-1) -> a neighbour moved


@dataclass(slots=True)
class Pending:
    t: float
    level: float
    reading: Reading  # as it came in, to be revised once decided
    flags: int  # the flags it was given besides SUSPECT (flatline)
    jumped: bool  # faster than max_jump_per_hour from the reference

    def revised(self, verdict: int) -> Reading:
        """The reading with SUSPECT replaced by the verdict (SPIKE[|JUMP] or CONFIRMED)."""
        qc = ((int(self.reading.qc) | self.flags) & ~SUSPECT) | verdict
        return replace(self.reading, qc=QCFlag(qc))


def median_of_sorted(values: Sequence[float]) -> float:
    middle = len(values) // 2
    if len(values) % 2:
        return values[middle]
    return (values[middle - 1] + values[middle]) / 2.0


class StationQC:
    """Rolling state of one station; memory bounded by the window and MAX_PENDING."""

    __slots__ = (
        "flat_epsilon",
        "flat_level",
        "flat_since",
        "flatline_s",
        "max_jump_per_s",
        "max_real_per_s",
        "move_rate",
        "move_t",
        "moved_at",
        "moved_dir",
        "newest",
        "pending",
        "ref_level",
        "ref_t",
        "spike_min_delta",
        "window",
    )

    def __init__(self, station: Station) -> None:
        self.max_jump_per_s = station.max_jump_per_hour / 3600.0
        self.max_real_per_s = station.max_real_rate_per_hour / 3600.0
        self.spike_min_delta = station.qc.spike_min_delta or DEFAULT_SPIKE_MIN_DELTA[station.unit]
        self.flatline_s = station.qc.flatline_hours * 3600.0
        self.flat_epsilon = FLAT_EPSILON[station.unit]
        self.window: deque[tuple[float, float]] = deque(maxlen=WINDOW_MAX_READINGS)
        self.pending: list[Pending] = []
        self.newest: float | None = None
        self.ref_t: float | None = None
        self.ref_level = 0.0
        self.flat_since: float | None = None
        self.flat_level = 0.0
        # The last confirmed big move (rate per second, time), for continuations.
        self.move_rate = 0.0
        self.move_t: float | None = None
        # The last significant accepted change of level, for the neighbours' corroboration.
        self.moved_at: float | None = None
        self.moved_dir = 0

    # ----- in-order readings ---------------------------------------------------------------

    def observe(
        self, t: float, level: float, reading: Reading, corroborated: Corroborated
    ) -> tuple[int, list[Reading]]:
        """Judge an in-order reading; returns its flags and the earlier suspects it settled."""
        self.newest = t
        flags = self._flatline(t, level)
        self._prune(t)
        revised: list[Reading] = []
        if self.pending:
            decision = self._decide(level)
            if decision == "back":
                revised = self._refute()
            elif decision == "wait" or not self._enough() or not self._possible(t, level):
                jumped = self._is_jump(t - (self.ref_t or t), abs(level - self.ref_level))
                self._hold(t, level, reading, flags, jumped=jumped)
                return flags | SUSPECT, revised
            else:
                revised = self._confirm(CONFIRMED)
        if self.ref_t is None:
            self._accept(t, level)
            return flags, revised
        dt = t - self.ref_t
        delta = level - self.ref_level
        jumped = self._is_jump(dt, abs(delta))
        if not (jumped or self._is_spike(delta, level)):
            self._accept(t, level)
            return flags, revised
        direction = 1 if delta > 0 else -1
        if self._continues(t, dt, delta):
            self._accept(t, level, moving=True)
            return flags, revised
        if self._within(dt, delta) and corroborated(t, direction):
            self._accept(t, level, moving=True)
            return flags | CONFIRMED, revised
        self._hold(t, level, reading, flags, jumped=jumped)
        return flags | SUSPECT, revised

    def _decide(self, level: float) -> str:
        """What `level` says about the pending run: "back", "wait" (the same value again,
        as a stuck sensor repeats itself) or "on" (the move goes on)."""
        first = self.pending[0]
        departure = first.level - self.ref_level
        kept = (level - self.ref_level) * (1 if departure > 0 else -1)
        if kept < CAME_BACK_SHARE * abs(departure):
            return "back"
        if abs(level - self.pending[-1].level) <= self.flat_epsilon:
            return "wait"
        return "on"

    def _enough(self) -> bool:
        """Has the run gone on for long enough to be confirmed with this reading?"""
        falling = self.pending[0].level < self.ref_level
        after = CONFIRM_FALL_AFTER if falling else CONFIRM_RISE_AFTER
        return len(self.pending) >= after

    def _possible(self, t: float, level: float) -> bool:
        """Could a river have made the pending move and this step? (Else it waits.)"""
        first, last = self.pending[0], self.pending[-1]
        assert self.ref_t is not None
        return self._within(first.t - self.ref_t, first.level - self.ref_level) and self._within(
            t - last.t, level - last.level
        )

    def _within(self, dt: float, delta: float) -> bool:
        return abs(delta) <= self.max_real_per_s * max(dt, JUMP_MIN_INTERVAL_S)

    def _refute(self) -> list[Reading]:
        revised = [p.revised(SPIKE | (JUMP if p.jumped else NONE)) for p in self.pending]
        self.pending.clear()
        return revised

    def _confirm(self, verdict: int) -> list[Reading]:
        """The pending run was the river: re-base the checks on it."""
        first, last = self.pending[0], self.pending[-1]
        assert self.ref_t is not None
        direction = 1 if first.level > self.ref_level else -1
        self.move_rate = (first.level - self.ref_level) / max(
            first.t - self.ref_t, JUMP_MIN_INTERVAL_S
        )
        self.move_t = last.t
        revised = [p.revised(verdict) for p in self.pending]
        self.window.clear()
        self.window.extend((p.t, p.level) for p in self.pending)
        self.ref_t, self.ref_level = last.t, last.level
        self._note_move(last.t, direction)
        self.pending.clear()
        return revised

    def _hold(self, t: float, level: float, reading: Reading, flags: int, *, jumped: bool) -> None:
        if len(self.pending) >= MAX_PENDING:
            del self.pending[1]  # the first defines the departure; it stays
        self.pending.append(Pending(t, level, reading, flags, jumped))

    def _continues(self, t: float, dt: float, delta: float) -> bool:
        if self.move_t is None or t - self.move_t > CONTINUATION_WINDOW_S or dt <= 0:
            return False
        rate = delta / max(dt, JUMP_MIN_INTERVAL_S)
        limit = CONTINUATION_FACTOR * abs(self.move_rate) + self.max_jump_per_s
        return rate * self.move_rate > 0 and abs(rate) <= min(limit, self.max_real_per_s)

    def _accept(self, t: float, level: float, *, moving: bool = False) -> None:
        if moving and self.ref_t is not None:
            self.move_rate = (level - self.ref_level) / max(t - self.ref_t, JUMP_MIN_INTERVAL_S)
            self.move_t = t
        self.window.append((t, level))
        self.ref_t = t
        self.ref_level = level
        low = min(entry[1] for entry in self.window)
        high = max(entry[1] for entry in self.window)
        if level - low > self.spike_min_delta:
            self._note_move(t, 1)
        elif high - level > self.spike_min_delta:
            self._note_move(t, -1)

    def _note_move(self, t: float, direction: int) -> None:
        self.moved_at = t
        self.moved_dir = direction

    # ----- the checks ----------------------------------------------------------------------

    def _flatline(self, t: float, level: float) -> int:
        if self.flat_since is not None and abs(level - self.flat_level) <= self.flat_epsilon:
            return FLATLINE if t - self.flat_since > self.flatline_s else NONE
        self.flat_since = t
        self.flat_level = level
        return NONE

    def _prune(self, t: float) -> None:
        cutoff = t - WINDOW_SPAN_S
        window = self.window
        while window and window[0][0] < cutoff:
            window.popleft()

    def _is_jump(self, dt: float, delta: float) -> bool:
        # dt <= 0 is a duplicate or out-of-order pair: no rate can be computed from it.
        if dt <= 0:
            return False
        return delta > self.max_jump_per_s * max(dt, JUMP_MIN_INTERVAL_S)

    def _is_spike(self, delta: float, level: float) -> bool:
        """Far from the reference and from the window's median (robust to the window's
        own noise); checked second, so the median is computed for unusual readings only."""
        if abs(delta) <= self.spike_min_delta or len(self.window) < SPIKE_MIN_WINDOW:
            return False
        levels = sorted(entry[1] for entry in self.window)
        median = median_of_sorted(levels)
        mad = median_of_sorted(sorted(abs(value - median) for value in levels))
        threshold = max(self.spike_min_delta, SPIKE_MAD_K * MAD_TO_SIGMA * mad)
        return abs(level - median) > threshold

    # ----- late readings and priming -------------------------------------------------------

    def judge_late(self, t: float, level: float) -> int:
        """A late reading (ts at or before the newest) against its window neighbours: a
        spike if it lies outside both by more than a jump; state is left alone."""
        before: tuple[float, float] | None = None
        after: tuple[float, float] | None = None
        for entry in self.window:  # ordered by time
            if entry[0] < t:
                before = entry
            elif entry[0] > t:
                after = entry
                break
        neighbours = [entry for entry in (before, after) if entry is not None]
        if not neighbours:
            return NONE
        low = min(entry[1] for entry in neighbours)
        high = max(entry[1] for entry in neighbours)
        outside = max(low - level, level - high, 0.0)
        nearest = min(abs(t - entry[0]) for entry in neighbours)
        return SPIKE | JUMP if self._is_jump(nearest, outside) else NONE

    def prime(self, readings: Sequence[Reading]) -> None:
        """Warm up from stored readings in time order, trusting their stored verdicts: a
        fault is skipped, a suspect still waits for its decision, the rest is accepted."""
        for reading in readings:
            t = reading.ts.timestamp()
            if self.newest is not None and t <= self.newest:
                continue
            self.newest = t
            self._flatline(t, reading.level)
            qc = int(reading.qc)
            if qc & (SPIKE | JUMP | FLATLINE):
                continue
            self._prune(t)
            if qc & SUSPECT and self.ref_t is not None:
                jumped = self._is_jump(t - self.ref_t, abs(reading.level - self.ref_level))
                self._hold(t, reading.level, reading, NONE, jumped=jumped)
                continue
            self.pending.clear()  # an old suspect left undecided: superseded
            self._accept(t, reading.level)
