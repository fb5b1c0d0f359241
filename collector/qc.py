"""Per-station quality control: flag readings that a real river could not have produced.

Pure and in-memory; runs in the MQTT thread after decode() for every accepted reading.
Flags never drop a reading: it is stored with its flags, and the forecaster and alert
engine decide how far to trust it.

How each flag is decided (levels in the station's unit, times from the reading's ts):

JUMP     |level - reference| / Δt exceeds the station's max_jump_per_hour, where the
         reference is the last reading that was *not* suspect (see below) and Δt is floored
         at 5 minutes, so sub-minute sampling noise cannot turn into an absurd hourly rate.

SPIKE    the reading is unlike its neighbours: it differs from the reference by more than
         spike_min_delta AND from the median of the recent window by more than
         max(spike_min_delta, 5 × 1.4826 × MAD). Needs at least 5 readings in the window
         (last 2 hours, at most 32 readings). The neighbour condition is what keeps a
         genuine flood clean: a rising river moves a little between consecutive readings,
         so it never looks like a spike however far it drifts from a lagging median; and
         it is checked first, so the median is only computed for unusual readings.

         A JUMP or SPIKE reading is *suspect*: it does not enter the window and does not
         become the reference, so one bad value (Mannheim-Neckar's 1518 cm among 317 cm)
         cannot make the next, good readings look like jumps back down. If 3 consecutive
         suspect readings agree with each other (each within spike_min_delta of, and no
         JUMP from, the one before), the river (or the sensor's zero) has really moved: the
         window is re-based on them, the third is passed clean and later readings are
         judged against the new level. The first two keep their flags (history is not
         rewritten); a one- or two-reading glitch never becomes the reference.

FLATLINE the level has stayed within a tiny unit-dependent epsilon of the value that
         started the current run for longer than flatline_hours; flagged until it changes.

MAINTENANCE  the catalog marks the gauge as under repair (other checks still run).

Late readings (ts at or before the newest seen for the station, e.g. replayed from a spool)
are checked for JUMP against their nearest earlier and later neighbours in the window when
there are any, since that costs one pass over at most 32 entries; they get no SPIKE or
FLATLINE verdict and never change the station's state, so a burst of old data cannot
disturb the checks on live data.

Memory per station is bounded: the window holds at most 32 entries and the suspect run at
most 3; state exists only for stations in the catalog.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import timedelta
from typing import TYPE_CHECKING

from floodwatch.models import QCFlag, Reading

if TYPE_CHECKING:
    from floodwatch.catalog import Station

__all__ = ["QualityControl"]

WINDOW_SPAN = timedelta(hours=2)
WINDOW_MAX_READINGS = 32
SPIKE_MIN_WINDOW = 5
SPIKE_MAD_K = 5.0
MAD_TO_SIGMA = 1.4826  # makes the MAD estimate a standard deviation for normal noise
REBASE_AFTER = 3
JUMP_MIN_INTERVAL = timedelta(minutes=5)

DEFAULT_SPIKE_MIN_DELTA: Mapping[str, float] = {"cm": 50.0, "m": 0.5, "ft": 1.6}
# Well below any gauge's resolution, only there to absorb float noise from unit conversion.
FLAT_EPSILON: Mapping[str, float] = {"cm": 1e-3, "m": 1e-5, "ft": 3e-5}

# Flags are combined as plain ints on the per-message path: every IntFlag operation goes
# through the enum machinery (~0.5 µs each), which would dominate the cost of a check.
_NONE = 0
_SPIKE = int(QCFlag.SPIKE)
_FLATLINE = int(QCFlag.FLATLINE)
_JUMP = int(QCFlag.JUMP)
_MAINTENANCE = int(QCFlag.MAINTENANCE)
_SUSPECT = _SPIKE | _JUMP


class _StationState:
    """Rolling state of one station. Times are epoch seconds (floats are cheaper to
    compare and subtract than datetimes on the per-message path)."""

    __slots__ = (
        "flat_epsilon",
        "flat_level",
        "flat_since",
        "flatline_s",
        "maintenance",
        "max_jump_per_s",
        "newest",
        "ref_level",
        "ref_t",
        "spike_min_delta",
        "suspects",
        "window",
    )

    def __init__(self, station: Station) -> None:
        self.max_jump_per_s = station.max_jump_per_hour / 3600.0
        self.spike_min_delta = station.qc.spike_min_delta or DEFAULT_SPIKE_MIN_DELTA[station.unit]
        self.flatline_s = station.qc.flatline_hours * 3600.0
        self.flat_epsilon = FLAT_EPSILON[station.unit]
        self.maintenance = _MAINTENANCE if station.maintenance else _NONE
        self.window: deque[tuple[float, float]] = deque(maxlen=WINDOW_MAX_READINGS)
        self.suspects: deque[tuple[float, float]] = deque(maxlen=REBASE_AFTER)
        self.newest: float | None = None
        self.ref_t: float | None = None
        self.ref_level = 0.0
        self.flat_since: float | None = None
        self.flat_level = 0.0

    def observe(self, t: float, level: float) -> int:
        """Judge an in-order reading and fold it into the state."""
        self.newest = t
        flags = self._flatline(t, level)
        self._prune(t)
        if self.ref_t is not None:
            flags |= self._jump_or_spike(t - self.ref_t, level)
        if not flags & _SUSPECT:
            self._accept(t, level)
        elif self._hold(t, level):
            # This reading confirmed a new level: it agrees with the suspects before it,
            # so it is judged by them, not by the level the river has left.
            flags &= ~_SUSPECT
        return flags

    def judge_late(self, t: float, level: float) -> int:
        """JUMP against the window neighbours of a late reading; state is left alone."""
        for neighbour_t, neighbour_level in self._neighbours(t):
            if self._is_jump(abs(t - neighbour_t), abs(level - neighbour_level)):
                return _JUMP
        return _NONE

    def _flatline(self, t: float, level: float) -> int:
        if self.flat_since is not None and abs(level - self.flat_level) <= self.flat_epsilon:
            return _FLATLINE if t - self.flat_since > self.flatline_s else _NONE
        self.flat_since = t
        self.flat_level = level
        return _NONE

    def _prune(self, t: float) -> None:
        cutoff = t - _WINDOW_SPAN_S
        window = self.window
        while window and window[0][0] < cutoff:
            window.popleft()

    def _jump_or_spike(self, dt: float, level: float) -> int:
        delta = abs(level - self.ref_level)
        flags = _JUMP if self._is_jump(dt, delta) else _NONE
        if (
            delta > self.spike_min_delta
            and len(self.window) >= SPIKE_MIN_WINDOW
            and self._far_from_median(level)
        ):
            flags |= _SPIKE
        return flags

    def _is_jump(self, dt: float, delta: float) -> bool:
        # dt <= 0 is a duplicate or out-of-order pair: no rate can be computed from it.
        if dt <= 0:
            return False
        return delta > self.max_jump_per_s * max(dt, _JUMP_MIN_INTERVAL_S)

    def _far_from_median(self, level: float) -> bool:
        levels = sorted(entry[1] for entry in self.window)
        median = _median_of_sorted(levels)
        mad = _median_of_sorted(sorted(abs(value - median) for value in levels))
        threshold = max(self.spike_min_delta, SPIKE_MAD_K * MAD_TO_SIGMA * mad)
        return abs(level - median) > threshold

    def _accept(self, t: float, level: float) -> None:
        self.window.append((t, level))
        self.ref_t = t
        self.ref_level = level
        self.suspects.clear()

    def _hold(self, t: float, level: float) -> bool:
        """Add a suspect reading to the current run; True when the run re-based the window."""
        suspects = self.suspects
        if suspects and not self._agrees(suspects[-1], t, level):
            suspects.clear()  # not the same new level: start a new run
        suspects.append((t, level))
        if len(suspects) < REBASE_AFTER:
            return False
        self._rebase()
        return True

    def _agrees(self, previous: tuple[float, float], t: float, level: float) -> bool:
        # Consecutive readings of a real new level are close and physically reachable
        # from each other; random garbage or an impossibly fast ramp is not.
        delta = abs(level - previous[1])
        return delta <= self.spike_min_delta and not self._is_jump(t - previous[0], delta)

    def _rebase(self) -> None:
        self.window.clear()
        self.window.extend(self.suspects)
        self.ref_t, self.ref_level = self.suspects[-1]
        self.suspects.clear()

    def _neighbours(self, t: float) -> list[tuple[float, float]]:
        before: tuple[float, float] | None = None
        after: tuple[float, float] | None = None
        for entry in self.window:  # ordered by time: in-order readings only are appended
            if entry[0] < t:
                before = entry
            elif entry[0] > t:
                after = entry
                break
        return [entry for entry in (before, after) if entry is not None]


_WINDOW_SPAN_S = WINDOW_SPAN.total_seconds()
_JUMP_MIN_INTERVAL_S = JUMP_MIN_INTERVAL.total_seconds()


def _median_of_sorted(values: Sequence[float]) -> float:
    middle = len(values) // 2
    if len(values) % 2:
        return values[middle]
    return (values[middle - 1] + values[middle]) / 2.0


class QualityControl:
    """Rolling quality control for every station of a catalog."""

    def __init__(self, catalog: Mapping[str, Station]) -> None:
        self._catalog = catalog
        self._states: dict[str, _StationState] = {}

    def prime(self, station_id: str, readings: Sequence[Reading]) -> None:
        """Warm a station up from stored history (any order) so the first live readings
        are judged against real context; replaces whatever state the station had."""
        station = self._catalog.get(station_id)
        if station is None:
            return
        state = self._states[station_id] = _StationState(station)
        for reading in sorted(readings, key=_reading_time):
            t = reading.ts.timestamp()
            if state.newest is None or t > state.newest:
                state.observe(t, reading.level)

    def check(self, reading: Reading) -> Reading:
        """The reading with its QC flags OR-ed in (the same object when nothing is added).
        Readings of stations not in the catalog pass through untouched."""
        state = self._states.get(reading.station_id)
        if state is None:
            station = self._catalog.get(reading.station_id)
            if station is None:
                return reading
            state = self._states[reading.station_id] = _StationState(station)
        t = reading.ts.timestamp()
        if state.newest is None or t > state.newest:
            flags = state.observe(t, reading.level)
        else:
            flags = state.judge_late(t, reading.level)
        flags |= state.maintenance
        if not flags:
            return reading
        combined = reading.qc | flags
        return reading if combined == reading.qc else replace(reading, qc=QCFlag(combined))

    def window_length(self, station_id: str) -> int:
        """How many readings the station's rolling window holds (for metrics and tests)."""
        state = self._states.get(station_id)
        return 0 if state is None else len(state.window)

    def suspect_run_length(self, station_id: str) -> int:
        """How many consecutive suspect readings are waiting to re-base the window."""
        state = self._states.get(station_id)
        return 0 if state is None else len(state.suspects)


def _reading_time(reading: Reading) -> float:
    return reading.ts.timestamp()
