"""Per-station quality control: flag what a real river could not have produced, and never
mistake a real rise for a fault.

Pure and in-memory; runs in the MQTT thread after decode() for every accepted reading.
Flags never drop a reading: it is stored with its flags, and the forecaster and alert
engine decide how far to trust it. The per-station rules are in collector/qc_station.py.

How a reading is judged (levels in the station's unit, times from the reading's ts):

Unusual  |level − reference| / Δt exceeds the station's max_jump_per_hour (Δt floored at 5
         minutes), or the reading is more than spike_min_delta from the reference AND from
         the median of the last 2 hours by more than 5 robust standard deviations (MAD).
         The reference is the last trusted reading.

An unusual reading is trusted at once (clean) when it continues a move the river was
already confirmed to make (same direction, at most 4× its rate: a flash flood
accelerates), and flagged CONFIRMED at once when a neighbouring gauge (upstream or
downstream in the catalog) made a significant move in the same direction within its
max_travel_h. Otherwise it is SUSPECT, and the next readings decide:

SPIKE    a later reading kept less than half of the departure: it came back. The suspect
         readings are revised to SPIKE (and JUMP if they moved faster than
         max_jump_per_hour). Mannheim-Neckar's 1518 cm among 317 cm is one.
CONFIRMED the move went on: for a rise one further reading that keeps at least half of the
         departure confirms it, for a fall two (waiting on a fall only delays an
         all-clear; waiting on a rise delays a warning). The suspects are revised to
         CONFIRMED (clean) and the checks re-base on the new level. A reading that repeats
         the suspect's value exactly (a stuck or dropped-out sensor) decides nothing.
FLATLINE the level has stayed within a tiny unit-dependent epsilon of the value that
         started the current run for longer than flatline_hours; flagged until it changes.
MAINTENANCE  the catalog marks the gauge as under repair (other checks still run).

`check` returns the reading with its flags and the earlier readings whose verdict it
settled (`Checked.revised`): the collector stores them again under the same key, so the
stored history says "suspect, then confirmed" or "suspect, then spike".

Late readings (ts at or before the newest seen, e.g. replayed from a spool) are judged
against their window neighbours only: SPIKE|JUMP if outside both by more than a jump.
They never change the station's state. Memory per station is bounded by the 2-hour window
(at most 32 readings) and at most 8 suspects; state exists only for catalog stations.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from collector.qc_station import StationQC
from floodwatch.models import QCFlag, Reading

if TYPE_CHECKING:
    from floodwatch.catalog import Station

__all__ = ["Checked", "QualityControl"]

HOUR_S = 3600.0


@dataclass(frozen=True, slots=True)
class Checked:
    """A reading with its QC flags, and the earlier readings this one settled."""

    reading: Reading
    revised: tuple[Reading, ...] = ()


class QualityControl:
    """Rolling quality control for every station of a catalog."""

    def __init__(self, catalog: Mapping[str, Station]) -> None:
        self._catalog = catalog
        self._states: dict[str, StationQC] = {}
        self._neighbours = _neighbours(catalog)

    def prime(self, station_id: str, readings: Sequence[Reading]) -> None:
        """Warm a station up from stored history (any order) so the first live readings
        are judged against real context; replaces whatever state the station had."""
        station = self._catalog.get(station_id)
        if station is None:
            return
        state = self._states[station_id] = StationQC(station)
        state.prime(sorted(readings, key=lambda reading: reading.ts))

    def check(self, reading: Reading) -> Checked:
        """The reading with its QC flags OR-ed in, and the suspects it settled. Readings of
        stations not in the catalog pass through untouched."""
        state = self._state(reading.station_id)
        if state is None:
            return Checked(reading)
        if self._catalog[reading.station_id].maintenance and not reading.qc & QCFlag.MAINTENANCE:
            reading = replace(reading, qc=reading.qc | QCFlag.MAINTENANCE)
        t = reading.ts.timestamp()
        revised: list[Reading] = []
        if state.newest is None or t > state.newest:
            station_id = reading.station_id

            def corroborated(at: float, direction: int) -> bool:
                return self._corroborated(station_id, at, direction)

            flags, revised = state.observe(t, reading.level, reading, corroborated)
        else:
            flags = state.judge_late(t, reading.level)
        combined = int(reading.qc) | flags
        if combined != int(reading.qc):
            reading = replace(reading, qc=QCFlag(combined))
        return Checked(reading, tuple(revised))

    def _state(self, station_id: str) -> StationQC | None:
        state = self._states.get(station_id)
        if state is None:
            station = self._catalog.get(station_id)
            if station is None:
                return None
            state = self._states[station_id] = StationQC(station)
        return state

    def _corroborated(self, station_id: str, at: float, direction: int) -> bool:
        """Did a neighbouring gauge move significantly the same way, recently enough for
        one wave to explain both?"""
        for neighbour, window_s in self._neighbours.get(station_id, ()):
            state = self._states.get(neighbour)
            if state is None or state.moved_at is None or state.moved_dir != direction:
                continue
            if at - window_s <= state.moved_at <= at + window_s:
                return True
        return False

    def window_length(self, station_id: str) -> int:
        """How many readings the station's rolling window holds (for metrics and tests)."""
        state = self._states.get(station_id)
        return 0 if state is None else len(state.window)

    def suspect_run_length(self, station_id: str) -> int:
        """How many suspect readings wait for the next reading's decision."""
        state = self._states.get(station_id)
        return 0 if state is None else len(state.pending)


def _neighbours(catalog: Mapping[str, Station]) -> dict[str, list[tuple[str, float]]]:
    """Each station's upstream and downstream gauges, with the longest travel time searched
    between them (the downstream gauge's max_travel_h) as the corroboration window."""
    found: dict[str, list[tuple[str, float]]] = {}
    for station in catalog.values():
        window_s = station.forecast.max_travel_h * HOUR_S
        for upstream in station.upstream:
            if upstream in catalog:
                found.setdefault(station.id, []).append((upstream, window_s))
                found.setdefault(upstream, []).append((station.id, window_s))
    return found
