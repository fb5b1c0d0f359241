"""English message texts."""

from __future__ import annotations

from alerts.events import EventKind as K
from alerts.texts.base import Texts

_LEVEL = "Level: <b>{level}</b>, {trend}."
_NOW = "Now: {level}, {trend}."
_EXPECTED_BAND = "Likely between {band}."
_INSTRUCTION = "<i>{instruction}</i>"
_LAST_LEVEL = "Last level: {level}."

_SEVERITY = {"watch": "Flood watch", "warning": "Flood warning", "danger": "Flood danger"}

TEXTS = Texts(
    code="en",
    cap_language="en-GB",
    lines={
        K.ESCALATION: (
            "{marker} <b>{severity}</b> — {place}",
            "The water has reached <b>{threshold}</b> ({threshold_value}).",
            _LEVEL,
            "Previous level: {previous}.",
            _INSTRUCTION,
        ),
        K.DEESCALATION: (
            "{marker} <b>Water falling</b> — {place}",
            "The water fell below {previous}.",
            "Level in force now: <b>{threshold}</b> ({threshold_value}).",
            _LEVEL,
        ),
        K.ALL_CLEAR: (
            "{marker} <b>All clear</b> — {place}",
            "The water fell below the lowest level, {threshold} ({threshold_value}).",
            _LEVEL,
            _INSTRUCTION,
        ),
        K.PREWARNING: (
            "{marker} <b>{expected}</b> — {place}",
            "The water is expected to reach <b>{threshold}</b> ({threshold_value}) "
            "at <b>{expected_at}</b>, {eta}.",
            _EXPECTED_BAND,
            _NOW,
            _INSTRUCTION,
        ),
        K.PREWARNING_UPDATE: (
            "{marker} <b>{expected}</b> (forecast updated) — {place}",
            "The water is now expected to reach <b>{threshold}</b> ({threshold_value}) "
            "at <b>{expected_at}</b>, {eta}.",
            _EXPECTED_BAND,
            _NOW,
            _INSTRUCTION,
        ),
        K.PREWARNING_WITHDRAWN: (
            "{marker} <b>Forecast withdrawn</b> — {place}",
            "The water is no longer expected to reach {threshold} ({threshold_value}).",
            _NOW,
            _INSTRUCTION,
        ),
        K.RAPID_RISE: (
            "{marker} <b>Rapid rise</b> — {place}",
            _LEVEL,
            "The water is {position} ({threshold_value}).",
        ),
        K.OFFLINE: (
            "{marker} <b>Gauge offline</b> — {gauge}",
            "Since {at}.",
            "{detail}",
            _LAST_LEVEL,
        ),
        K.ONLINE: (
            "{marker} <b>Gauge back online</b> — {gauge}",
            "At {at}.",
            "{detail}",
            _LAST_LEVEL,
        ),
        K.FAULTY: (
            "{marker} <b>Faulty readings</b> — {gauge}",
            "Since {at}.",
            "{detail}",
            _LAST_LEVEL,
        ),
        K.UNCONFIRMED: (
            "{marker} <b>Unconfirmed high reading</b> — {gauge}",
            "Reads <b>{level}</b> at {at}.",
            "That is at or above <b>{threshold}</b> ({threshold_value}).",
            "Up from {from_level} at {from_at}: {trend}.",
            "{detail}",
            "Quality control holds it until the next reading: verify the gauge now. "
            "Residents are told as soon as a reading confirms it.",
        ),
        K.FAULT_CLEARED: (
            "{marker} <b>Readings valid again</b> — {gauge}",
            "At {at}.",
            "{detail}",
            _LAST_LEVEL,
        ),
        K.MAINTENANCE_ON: (
            "{marker} <b>Maintenance mode on</b> — {gauge}",
            "Since {at}.",
            "{detail}",
        ),
        K.MAINTENANCE_OFF: (
            "{marker} <b>Maintenance mode off</b> — {gauge}",
            "At {at}.",
            "{detail}",
        ),
    },
    place="<b>{station}</b> (river {river})",
    gauge="<b>{station}</b> (<code>{station_id}</code>)",
    threshold="{short} — {name}",
    threshold_named="{name}",
    severity=_SEVERITY,
    expected={key: f"{value} expected" for key, value in _SEVERITY.items()},
    events={**_SEVERITY, "rapid_rise": "Rapid river rise", "flood": "River flood"},
    trend={
        "rising_rate": "rising {rate} per hour",
        "falling_rate": "falling {rate} per hour",
        "rising": "rising",
        "falling": "falling",
        "steady": "steady",
        "unknown": "trend not known",
    },
    position={"below": "{gap} below {threshold}", "above": "{gap} above {threshold}"},
    units={"cm": "cm", "m": "m", "ft": "ft"},
    decimal_point=".",
    months=("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
    date="{day} {month}",
    moment="{time} on {date}",
    zoned="{moment} ({zone})",
    band="{start} and {end}",
    band_same_day="{start} and {end} on {date}",
    hours=("hour", "hours"),
    days=("day", "days"),
    plural=lambda n: 0 if n == 1 else 1,
    eta="in about {n} {noun}",
    eta_soon="within the hour",
    instructions={
        "watch": "Follow the updates and take care near the river.",
        "warning": "Get ready: move valuables, vehicles and animals away from low-lying "
        "ground and keep off the river banks.",
        "danger": "Keep away from the river and flooded areas, follow the instructions of "
        "the local authorities and be ready to leave.",
        "all_clear": "Take care near the river: banks and roads may be damaged.",
        "withdrawn": "No action is needed; keep following the updates.",
    },
)
