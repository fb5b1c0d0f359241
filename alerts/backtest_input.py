"""The backtest's inputs: the replay read and quality-controlled once, and the catalog
with a hydrologist's proposed values (`--set`, `--margin`) applied and validated."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from pydantic import ValidationError

from collector.qc import QualityControl
from floodwatch.catalog import Catalog, Station
from floodwatch.errors import FloodwatchError
from floodwatch.models import Reading
from floodwatch.replay_csv import read_replay
from forecasting.series import FloatArray, Series

DAY = 86400.0


class BacktestError(FloodwatchError):
    """Bad backtest input: the message names the option, station and key."""


@dataclass(frozen=True)
class Gauge:
    """One gauge's recording: every reading with its QC flags, and the clean series.

    `flags` are the final verdicts (what the store ends up holding); `arrival_flags` what
    quality control said when each reading came in (SUSPECT while it waited); and
    `settled_by[i]` the index of the later reading that settled reading i (-1: decided
    on arrival, or never), which is when the alert engine learns the final verdict."""

    t: FloatArray
    level: FloatArray
    flags: list[int]
    clean: Series
    arrival_flags: list[int] | None = None
    settled_by: list[int] | None = None

    def arrivals(self) -> list[int]:
        return self.arrival_flags if self.arrival_flags is not None else self.flags

    def settled(self) -> list[int]:
        return self.settled_by if self.settled_by is not None else [-1] * len(self.flags)


def _number(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise BacktestError(f"{what}: {text!r} is not a number") from None
    if not math.isfinite(value):
        raise BacktestError(f"{what}: the value must be a finite number")
    return value


def catalog_station(catalog: Catalog, station_id: str, what: str) -> Station:
    if station_id not in catalog:
        raise BacktestError(f"{what}: station {station_id!r} is not in {catalog.source}")
    return catalog[station_id]


def _problem(loc: Sequence[object], msg: str) -> str:
    text = msg.removeprefix("Value error, ")  # a model check already names the field
    return f"{'.'.join(str(p) for p in loc)}: {text}" if loc else text


def apply_overrides(
    catalog: Catalog, sets: Sequence[str], margins: Sequence[str]
) -> dict[str, Station]:
    """The catalog's stations with `--set STATION.LEVEL=VALUE` and `--margin STATION=VALUE`
    applied, each changed station validated again like a catalog entry."""
    values: dict[str, dict[str, float]] = {}
    given: dict[str, list[str]] = {}  # the options naming each station, for errors
    for text in sets:
        target, sep, raw = text.partition("=")
        station_id, dot, key = target.partition(".")
        what = f"--set {text}"
        if not sep or not dot:
            raise BacktestError(
                f"{what}: expected STATION.LEVEL=VALUE, e.g. rhein-mainz.mark-ii=600"
            )
        station = catalog_station(catalog, station_id, what)
        keys = [rung.key for rung in station.levels]
        if key not in keys:
            known = ", ".join(keys) or "none"
            raise BacktestError(f"{what}: station {station_id!r} has no level {key!r} ({known})")
        values.setdefault(station_id, {})[key] = _number(raw, what)
        given.setdefault(station_id, []).append(what)
    clear: dict[str, float] = {}
    for text in margins:
        station_id, sep, raw = text.partition("=")
        if not sep:
            raise BacktestError(f"--margin {text}: expected STATION=VALUE, e.g. rhein-mainz=15")
        catalog_station(catalog, station_id, f"--margin {text}")
        clear[station_id] = _number(raw, f"--margin {text}")
        given.setdefault(station_id, []).append(f"--margin {text}")
    stations = dict(catalog)
    for station_id in sorted(values.keys() | clear.keys()):
        station = catalog[station_id]
        new = values.get(station_id, {})
        levels = tuple(
            rung.model_copy(update={"value": new[rung.key]}) if rung.key in new else rung
            for rung in station.levels
        )
        update: dict[str, object] = {"levels": levels}
        if station_id in clear:
            update["clear_margin"] = clear[station_id]
        try:
            stations[station_id] = Station.model_validate(
                station.model_copy(update=update).model_dump()
            )
        except ValidationError as exc:
            details = "; ".join(_problem(e["loc"], e["msg"]) for e in exc.errors())
            options = ", ".join(given[station_id])
            raise BacktestError(f"{options}: station {station_id!r}: {details}") from None
    return stations


def read_gauges(
    path: Path, catalog: Catalog, wanted: set[str] | None = None, until: datetime | None = None
) -> tuple[dict[str, Gauge], list[str]]:
    """The readings of every catalog station (or of `wanted`) in time order, QC-flagged as
    the collector would; and the ids in the data that the catalog does not know."""
    pairs: dict[str, list[tuple[float, float]]] = {}
    unknown: set[str] = set()
    for row in read_replay(path):
        if until is not None and row.ts > until:
            continue
        if wanted is None or row.station_id in wanted:
            pairs.setdefault(row.station_id, []).append((row.ts.timestamp(), row.level))
        elif row.station_id not in catalog:
            unknown.add(row.station_id)
    ignored = sorted(unknown | {sid for sid in pairs if sid not in catalog})
    arrays = {}
    for station_id, values in pairs.items():
        if station_id not in ignored:
            data = np.asarray(values, dtype=np.float64)
            arrays[station_id] = data[np.argsort(data[:, 0], kind="stable")]
    if not arrays:
        raise BacktestError(f"{path}: no readings of a station in the catalog")
    return _quality_controlled(arrays, catalog), ignored


def _quality_controlled(arrays: Mapping[str, FloatArray], catalog: Catalog) -> dict[str, Gauge]:
    """Every reading through the collector's QC in time order across all gauges (so a
    neighbour's rise corroborates as it would live), with the verdicts later readings
    settled put back on the readings they settled."""
    qc = QualityControl(
        {sid: s.model_copy(update={"maintenance": False}) for sid, s in catalog.items()}
    )
    arrival = {sid: [0] * len(data) for sid, data in arrays.items()}
    final = {sid: [0] * len(data) for sid, data in arrays.items()}
    settled_by = {sid: [-1] * len(data) for sid, data in arrays.items()}
    position = {
        sid: {float(t): i for i, t in enumerate(data[:, 0])} for sid, data in arrays.items()
    }
    order = sorted(
        ((float(t), sid, i) for sid, data in arrays.items() for i, t in enumerate(data[:, 0])),
    )
    for t, station_id, i in order:
        level = float(arrays[station_id][i, 1])
        reading = Reading(station_id=station_id, ts=datetime.fromtimestamp(t, UTC), level=level)
        checked = qc.check(reading)
        arrival[station_id][i] = final[station_id][i] = int(checked.reading.qc)
        for revised in checked.revised:
            j = position[station_id][revised.ts.timestamp()]
            final[station_id][j] = int(revised.qc)
            settled_by[station_id][j] = i
    gauges = {}
    for station_id, data in arrays.items():
        flags = final[station_id]
        clean = np.asarray([Reading.qc_is_clean(flag) for flag in flags], dtype=bool)
        gauges[station_id] = Gauge(
            data[:, 0].copy(),
            data[:, 1].copy(),
            flags,
            Series.from_pairs(zip(data[clean, 0], data[clean, 1], strict=True)),
            arrival[station_id],
            settled_by[station_id],
        )
    return gauges


def default_start(gauges: Mapping[str, Gauge]) -> float:
    """30 days after the data starts if it spans more than 60 days (history to learn from
    and for the trend), else the start of the data."""
    first = min(float(g.t[0]) for g in gauges.values())
    last = max(float(g.t[-1]) for g in gauges.values())
    return first + 30 * DAY if last - first > 60 * DAY else first
