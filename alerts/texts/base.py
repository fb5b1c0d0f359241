"""The shape of one language's message texts (see alerts.texts)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from alerts.events import EventKind


@dataclass(frozen=True, slots=True)
class Texts:
    code: str  # the language these texts are in
    cap_language: str  # RFC 3066 tag for CAP <language>
    lines: Mapping[EventKind, tuple[str, ...]]
    place: str  # a gauge for residents: name and river
    gauge: str  # a gauge for dispatchers: name and id
    threshold: str  # a rung: local short name and long name
    threshold_named: str  # a rung whose long name already contains its short name
    severity: Mapping[str, str]  # headline of a reached rung, by severity
    expected: Mapping[str, str]  # headline of a forecast rung, by severity
    events: Mapping[str, str]  # CAP <event>: by severity, "rapid_rise" and "flood"
    trend: Mapping[str, str]  # rising, falling (with {rate} or without), steady, unknown
    position: Mapping[str, str]  # below, above: {gap} and {threshold}
    units: Mapping[str, str]
    decimal_point: str
    months: tuple[str, ...]  # abbreviated or genitive, as used after a day number
    date: str  # {day} {month}
    moment: str  # {time} {date}
    zoned: str  # {moment} {zone}
    band: str  # {start} {end}, both full moments
    band_same_day: str  # {start} {end} as times, then {date}
    hours: tuple[str, ...]  # plural forms, chosen by `plural`
    days: tuple[str, ...]
    plural: Callable[[int], int]
    eta: str  # {n} {noun}
    eta_soon: str
    instructions: Mapping[str, str]  # by severity, "all_clear" and "withdrawn"
