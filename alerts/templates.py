"""Alert messages as residents and dispatchers read them: Telegram HTML or plain text.

Pure functions of an event, its station, a language and a time zone. The wording lives in
alerts.texts as per-kind tables; this module only fills them in. Every interpolated value
is cleaned and escaped here, so a station named `<script>` or `R&D` cannot break the
markup, and long names are shortened before escaping, so a cut never splits an entity.
Times are UTC inside and shown in the zone the caller passes.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Mapping
from datetime import tzinfo
from string import Formatter

from alerts import phrases
from alerts.events import AlertEvent, EventKind, ThresholdRef
from alerts.texts import Texts, primary_language, texts_for
from floodwatch.catalog import Station

TELEGRAM_LIMIT = 4096  # characters of one Telegram message
HEADLINE_LIMIT = 160  # CAP 1.2 asks for headlines under 160 characters

_SEVERITY_MARKER = {"watch": "🟡", "warning": "🟠", "danger": "🔴"}
_KIND_MARKER = {
    EventKind.ALL_CLEAR: "✅",
    EventKind.PREWARNING_WITHDRAWN: "ℹ️",
    EventKind.RAPID_RISE: "⚠️",
    EventKind.OFFLINE: "📡",
    EventKind.ONLINE: "📡",
    EventKind.FAULTY: "🔧",
    EventKind.UNCONFIRMED: "❓",
    EventKind.FAULT_CLEARED: "🔧",
    EventKind.MAINTENANCE_ON: "🛠",
    EventKind.MAINTENANCE_OFF: "🛠",
}
_TAGS = re.compile(r"</?(?:b|i|code)>")
_FORMATTER = Formatter()


def render(event: AlertEvent, station: Station, language: str, tz: tzinfo) -> str:
    """The Telegram message (parse_mode HTML), at most TELEGRAM_LIMIT characters."""
    return _fitted(event, station, language, tz, markup=True)


def render_plain(event: AlertEvent, station: Station, language: str, tz: tzinfo) -> str:
    """The same message without markup or emoji, for CAP descriptions and MQTT."""
    return _fitted(event, station, language, tz, markup=False)


def headline(event: AlertEvent, station: Station, language: str, tz: tzinfo) -> str:
    """The first line of the plain message, short enough for a CAP headline."""
    return phrases.clip(
        render_plain(event, station, language, tz).split("\n", 1)[0], HEADLINE_LIMIT
    )


def place(station: Station, language: str) -> str:
    """The gauge as residents know it, plain: "Mainz (river Rhine)"."""
    texts = texts_for(language)
    languages = (primary_language(language), texts.code)
    return _TAGS.sub("", texts.place).format(
        station=phrases.clip(phrases.clean(_pick(station.names, languages)), 256),
        river=phrases.clip(phrases.clean(_pick(station.river, languages)), 128),
    )


def instruction(event: AlertEvent, language: str) -> str | None:
    """What residents should do, or None where there is nothing to advise."""
    key = _instruction_key(event)
    return texts_for(language).instructions.get(key) if key else None


def _instruction_key(event: AlertEvent) -> str | None:
    if event.kind is EventKind.ALL_CLEAR:
        return "all_clear"
    if event.kind is EventKind.PREWARNING_WITHDRAWN:
        return "withdrawn"
    return event.threshold.severity if event.threshold else None


def _fitted(event: AlertEvent, station: Station, language: str, tz: tzinfo, markup: bool) -> str:
    # Shorten names until the message fits; a handful of passes at most.
    limit = 256
    while True:
        text = _render(event, station, language, tz, markup, limit)
        if _utf16_len(text) <= TELEGRAM_LIMIT or limit <= 8:
            return text
        limit //= 2


def _utf16_len(text: str) -> int:
    # Telegram counts UTF-16 code units: an emoji outside the BMP counts twice.
    return len(text.encode("utf-16-le")) // 2


def _render(
    event: AlertEvent, station: Station, language: str, tz: tzinfo, markup: bool, limit: int
) -> str:
    texts = texts_for(language)
    languages = (primary_language(language), texts.code)
    values = _values(event, station, texts, languages, tz, markup, limit)
    lines = (_fill(line, values, markup) for line in texts.lines[event.kind])
    return "\n".join(line for line in lines if line)


def _fill(template: str, values: Mapping[str, str | None], markup: bool) -> str:
    """A line with its values, or "" when one of them is unknown."""
    if not markup:
        template = _TAGS.sub("", template)
    fields = {field for _, field, _, _ in _FORMATTER.parse(template) if field}
    if any(values.get(field) is None for field in fields):
        return ""
    return template.format_map(values).strip()


def _values(
    event: AlertEvent,
    station: Station,
    texts: Texts,
    languages: tuple[str, ...],
    tz: tzinfo,
    markup: bool,
    limit: int,
) -> dict[str, str | None]:
    def text(value: str | None, size: int = limit) -> str:
        cleaned = phrases.clip(phrases.clean(value or ""), size)
        return html.escape(cleaned, quote=False) if markup else cleaned

    def fragment(template: str, **parts: str) -> str:
        return (template if markup else _TAGS.sub("", template)).format(**parts)

    unit = event.unit or station.unit
    unit_word = text(texts.units.get(unit, unit), 16)

    def quantity(value: float) -> str:
        return phrases.quantity(value, unit, unit_word, texts, fine=False)

    def rate(value: float) -> str:
        return phrases.quantity(value, unit, unit_word, texts, fine=True)

    rung, previous = event.threshold, event.previous
    name = text(_pick(station.names, languages))
    river = text(_pick(station.river, languages))
    threshold = _rung(rung, texts, languages, text) if rung else None
    severity = rung.severity if rung else None
    return {
        "marker": _marker(event) if markup else "",
        "place": fragment(texts.place, station=name, river=river),
        "gauge": fragment(texts.gauge, station=name, station_id=text(event.station_id, 64)),
        "severity": texts.severity.get(severity or "", texts.events["flood"]),
        "expected": texts.expected.get(severity or "", texts.events["flood"]),
        "threshold": threshold,
        "threshold_value": quantity(rung.value) if rung else None,
        "previous": _rung(previous, texts, languages, text) if previous else None,
        "level": quantity(event.level) if event.level is not None else None,
        "trend": phrases.trend(event, texts, rate),
        "expected_at": phrases.moment(event.expected_at, tz, texts) if event.expected_at else None,
        "eta": phrases.eta(event, texts),
        "band": phrases.band(event.earliest, event.latest, tz, texts),
        "position": phrases.position(event, texts, quantity, threshold),
        "at": phrases.moment(event.at, tz, texts),
        "from_level": quantity(event.from_level) if event.from_level is not None else None,
        "from_at": phrases.moment(event.from_at, tz, texts) if event.from_at else None,
        "detail": text(event.detail, 4 * limit) if event.detail else None,
        "instruction": instruction(event, texts.code),
    }


def _marker(event: AlertEvent) -> str:
    if event.kind in _KIND_MARKER:
        return _KIND_MARKER[event.kind]
    return _SEVERITY_MARKER.get(event.threshold.severity if event.threshold else "", "⚠️")


def _pick(names: Mapping[str, str], languages: tuple[str, ...]) -> str:
    """The name in the first language that has one, else any name at all."""
    for language in languages:
        if names.get(language):
            return names[language]
    return next((name for name in names.values() if name), "")


def _rung(
    ref: ThresholdRef, texts: Texts, languages: tuple[str, ...], text: Callable[..., str]
) -> str:
    short, name = phrases.clean(ref.short), phrases.clean(_pick(ref.names, languages))
    # "Опасное явление (ОЯ)" and "High water mark I" already say their short name.
    if not name:
        return text(short, 32)
    if re.search(rf"(?<!\w){re.escape(short)}(?!\w)", name):
        return texts.threshold_named.format(name=text(name))
    return texts.threshold.format(short=text(short, 32), name=text(name))
