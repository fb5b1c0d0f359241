"""The station catalog: which gauges exist, where, in which unit, and their threshold ladders.

Loaded from YAML and validated once at start-up; every error names the file, the station
and the field, so a hydrologist can fix the catalog without reading code.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping
from datetime import tzinfo
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from floodwatch.errors import ConfigError
from floodwatch.settings import check_timezone
from floodwatch.topics import STATION_ID_PATTERN

Unit = Literal["cm", "m", "ft"]

# Physical plausibility bounds when a station sets none: far beyond any river stage in
# that unit, so they only catch garbage (a sensor reporting 65535, a mm/cm mix-up).
DEFAULT_RANGE: Mapping[str, tuple[float, float]] = {
    "cm": (-1000.0, 5000.0),
    "m": (-10.0, 50.0),
    "ft": (-33.0, 165.0),
}
# How fast a real river stage can change, per hour, when a station sets no QC limit:
# 2 m/h is beyond flash floods on gauged rivers; faster means a sensor fault.
DEFAULT_MAX_JUMP_PER_HOUR: Mapping[str, float] = {"cm": 200.0, "m": 2.0, "ft": 6.6}
# No river moves faster: the fastest rise on record we know of, the Guadalupe at Kerrville
# (Texas) on 2025-07-04, rose 4 ft (1.2 m) in 5 minutes, 14.6 m/h, and 32.5 ft (9.9 m) in
# 1.5 h (USGS gauge 08166200, as reported by the NWS and J. Lindner); 20 m/h leaves room.
DEFAULT_MAX_REAL_RATE_PER_HOUR: Mapping[str, float] = {"cm": 2000.0, "m": 20.0, "ft": 66.0}


class Severity(enum.IntEnum):
    WATCH = 1
    WARNING = 2
    DANGER = 3


LanguageNames = Annotated[dict[str, str], Field(min_length=1)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Threshold(_Model):
    """One rung of a station's ladder: a named level with a severity."""

    key: str = Field(pattern=r"^[a-z0-9_-]{1,32}$")
    # NaN would compare false against every reading, so the rung would silently never fire.
    value: float = Field(allow_inf_nan=False)
    severity: Literal["watch", "warning", "danger"]
    short: str = Field(min_length=1, max_length=16)
    names: LanguageNames

    @property
    def severity_rank(self) -> Severity:
        return Severity[self.severity.upper()]


class ValidRange(_Model):
    min: float = Field(allow_inf_nan=False)
    max: float = Field(allow_inf_nan=False)

    @model_validator(mode="after")
    def _ordered(self) -> ValidRange:
        if self.min >= self.max:
            raise ValueError("min must be below max")
        return self


class QCSettings(_Model):
    """Per-station quality-control limits; defaults follow the station's unit."""

    # Faster than this, a move is suspect until the next reading confirms or refutes it.
    max_jump_per_hour: float | None = Field(None, gt=0)
    # Faster than this, no river moves: such a move is never confirmed, only refuted.
    max_real_rate_per_hour: float | None = Field(None, gt=0)
    spike_min_delta: float | None = Field(None, gt=0)
    flatline_hours: float = Field(12.0, gt=0)


class ForecastSettings(_Model):
    """How the forecaster treats a station; the defaults suit gauges reporting every 15 min."""

    # Fixed forecast horizons in hours, ascending.
    horizons_h: tuple[float, ...] = (1, 2, 3, 6, 9, 12, 18, 24)
    # How far back the robust trend looks.
    trend_window_h: float = Field(3.0, gt=0)
    # Longest travel time to search for from each upstream gauge.
    max_travel_h: float = Field(48.0, gt=0)
    # Hydrologists' overrides of learned travel times: upstream station id -> hours.
    travel_h: dict[str, float] = {}
    # Spacing of the regular grid the model learns on; default: the reporting interval.
    step_h: float | None = Field(None, gt=0)
    # How much history the model learns from; default: the forecast_learn_days setting.
    # Daily posts need decades to have seen enough floods.
    learn_days: float | None = Field(None, gt=0)

    @field_validator("horizons_h")
    @classmethod
    def _ascending(cls, horizons: tuple[float, ...]) -> tuple[float, ...]:
        if not horizons:
            raise ValueError("at least one horizon is needed")
        if any(h <= 0 for h in horizons) or list(horizons) != sorted(set(horizons)):
            raise ValueError("horizons must be positive and strictly ascending")
        return horizons

    @field_validator("travel_h")
    @classmethod
    def _non_negative(cls, travel: dict[str, float]) -> dict[str, float]:
        for station_id, hours in travel.items():
            if not hours >= 0:
                raise ValueError(f"travel time to {station_id!r} must be zero or more hours")
        return travel


class Station(_Model):
    id: str = Field(pattern=f"^{STATION_ID_PATTERN}$")
    names: LanguageNames
    river: LanguageNames
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    unit: Unit
    levels: tuple[Threshold, ...] = ()
    clear_margin: float = Field(0.0, ge=0)
    max_rise_per_hour: float | None = Field(None, gt=0)
    upstream: tuple[str, ...] = ()
    maintenance: bool = False
    valid_range: ValidRange | None = None
    qc: QCSettings = QCSettings()
    forecast: ForecastSettings = ForecastSettings()
    # IANA zone for local times in this gauge's messages; default FLOODWATCH_TIMEZONE.
    timezone: str | None = None
    source: str | None = None

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is not None:
            check_timezone(value)
        return value

    @model_validator(mode="after")
    def _ladder_is_ordered(self) -> Station:
        keys = [level.key for level in self.levels]
        if len(set(keys)) != len(keys):
            raise ValueError("levels: keys must be unique")
        for lower, upper in zip(self.levels, self.levels[1:], strict=False):
            if upper.value <= lower.value:
                raise ValueError(
                    f"levels: {upper.key!r} ({upper.value}) must be above {lower.key!r} "
                    f"({lower.value}); list the ladder from lowest to highest"
                )
            if upper.severity_rank < lower.severity_rank:
                raise ValueError(
                    f"levels: {upper.key!r} is higher but less severe than {lower.key!r}"
                )
        if self.id in self.upstream:
            raise ValueError("upstream: a station cannot be upstream of itself")
        for station_id in self.forecast.travel_h:
            if station_id not in self.upstream:
                raise ValueError(
                    f"forecast.travel_h: {station_id!r} is not one of this station's upstream"
                )
        return self

    @property
    def range(self) -> tuple[float, float]:
        if self.valid_range is not None:
            return self.valid_range.min, self.valid_range.max
        return DEFAULT_RANGE[self.unit]

    @property
    def max_jump_per_hour(self) -> float:
        return self.qc.max_jump_per_hour or DEFAULT_MAX_JUMP_PER_HOUR[self.unit]

    @property
    def max_real_rate_per_hour(self) -> float:
        return self.qc.max_real_rate_per_hour or max(
            DEFAULT_MAX_REAL_RATE_PER_HOUR[self.unit], self.max_jump_per_hour
        )

    def zone(self, default: str | tzinfo = "UTC") -> tzinfo:
        """The zone local times of this gauge are shown in (`default`: the setting, by
        name or as a zone)."""
        if self.timezone:
            return ZoneInfo(self.timezone)
        return default if isinstance(default, tzinfo) else ZoneInfo(default)

    def name(self, language: str = "en") -> str:
        return self.names.get(language) or next(iter(self.names.values()))


class _CatalogFile(_Model):
    # Not `Field(min_length=1)`: pydantic checks that length against the stations that
    # validated, so one bad station in a one-station file also reported "no stations".
    stations: tuple[Station, ...]

    @field_validator("stations")
    @classmethod
    def _not_empty(cls, stations: tuple[Station, ...]) -> tuple[Station, ...]:
        if not stations:
            raise ValueError("the catalog lists no stations")
        return stations


class Catalog(Mapping[str, Station]):
    """Stations by id; immutable once loaded."""

    def __init__(self, stations: tuple[Station, ...], source: Path | None = None) -> None:
        self._stations = {station.id: station for station in stations}
        self.source = source

    def __getitem__(self, station_id: str) -> Station:
        return self._stations[station_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self._stations)

    def __len__(self) -> int:
        return len(self._stations)


def _describe(error: Mapping[str, Any], raw: object) -> str:
    loc = list(error["loc"])
    where = ""
    if len(loc) >= 2 and loc[0] == "stations" and isinstance(loc[1], int):
        index = loc[1]
        station_id = None
        if isinstance(raw, dict):
            items = raw.get("stations")
            if isinstance(items, list) and index < len(items) and isinstance(items[index], dict):
                station_id = items[index].get("id")
        where = f"station {station_id!r}" if station_id else f"station #{index + 1}"
        loc = loc[2:]
    field = ".".join(str(part) for part in loc) or ("(station)" if where else "(catalog)")
    return f"{where + ': ' if where else ''}{field}: {error['msg']}"


def parse_catalog(raw: object, source: Path | None = None) -> Catalog:
    """Validate an already-parsed YAML document; raise ConfigError naming file, station, field."""
    label = str(source) if source else "<catalog>"
    try:
        parsed = _CatalogFile.model_validate(raw)
    except ValidationError as exc:
        details = "\n  ".join(_describe(error, raw) for error in exc.errors())
        raise ConfigError(f"{label}: invalid station catalog:\n  {details}") from None
    problems: list[str] = []
    seen: set[str] = set()
    for station in parsed.stations:
        if station.id in seen:
            problems.append(f"station {station.id!r}: id: duplicate station id")
        seen.add(station.id)
    for station in parsed.stations:
        problems.extend(
            f"station {station.id!r}: upstream: unknown station {upstream!r}"
            for upstream in station.upstream
            if upstream not in seen
        )
    if not problems:
        problems.extend(_upstream_cycles(parsed.stations))
    if problems:
        raise ConfigError(f"{label}: invalid station catalog:\n  " + "\n  ".join(problems))
    return Catalog(parsed.stations, source)


def _upstream_cycles(stations: tuple[Station, ...]) -> list[str]:
    """Name a station on each upstream loop: routing walks the links and must terminate.

    An iterative depth-first search, so a long chain cannot hit the recursion limit.
    """
    upstream = {station.id: station.upstream for station in stations}
    done: set[str] = set()
    problems: list[str] = []
    for root in upstream:
        if root in done:
            continue
        path: list[str] = []
        on_path: set[str] = set()
        stack: list[tuple[str, int]] = [(root, 0)]
        while stack:
            node, index = stack.pop()
            if index == 0:
                path.append(node)
                on_path.add(node)
            links = upstream[node]
            if index < len(links):
                stack.append((node, index + 1))
                nxt = links[index]
                if nxt in on_path:
                    loop = " -> ".join([*path[path.index(nxt) :], nxt])
                    problems.append(f"station {nxt!r}: upstream: links form a loop: {loop}")
                elif nxt not in done:
                    stack.append((nxt, 0))
            else:
                path.pop()
                on_path.discard(node)
                done.add(node)
    return problems


def load_catalog(path: Path) -> Catalog:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read station catalog: {exc.strerror}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    return parse_catalog(raw, path)
