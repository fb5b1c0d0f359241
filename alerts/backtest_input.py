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
    """One gauge's recording: every reading (with its QC flags) and the clean series."""

    t: FloatArray
    level: FloatArray
    flags: list[int]
    clean: Series


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
    qc = QualityControl(
        {sid: s.model_copy(update={"maintenance": False}) for sid, s in catalog.items()}
    )
    gauges = {}
    for station_id, values in pairs.items():
        if station_id in ignored:
            continue
        data = np.asarray(values, dtype=np.float64)
        data = data[np.argsort(data[:, 0], kind="stable")]
        flags = []
        for t, level in data:
            ts = datetime.fromtimestamp(t, UTC)
            flags.append(int(qc.check(Reading(station_id=station_id, ts=ts, level=level)).qc))
        clean = np.asarray(flags) == 0
        gauges[station_id] = Gauge(
            data[:, 0].copy(),
            data[:, 1].copy(),
            flags,
            Series.from_pairs(zip(data[clean, 0], data[clean, 1], strict=True)),
        )
    if not gauges:
        raise BacktestError(f"{path}: no readings of a station in the catalog")
    return gauges, ignored


def default_start(gauges: Mapping[str, Gauge]) -> float:
    """30 days after the data starts if it spans more than 60 days (history to learn from
    and for the trend), else the start of the data."""
    first = min(float(g.t[0]) for g in gauges.values())
    last = max(float(g.t[-1]) for g in gauges.values())
    return first + 30 * DAY if last - first > 60 * DAY else first
