"""Phrases shared by the message texts: quantities with units, trends, local times.

Pure helpers of alerts.templates; the words come from the language's Texts.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, tzinfo

from alerts.events import AlertEvent
from alerts.texts import Texts

# Characters XML 1.0 forbids (CAP reuses the plain text), plus line breaks and tabs,
# which would break a message's layout when they come from a name.
_UNSAFE = re.compile("[\x00-\x1f\x7f\ud800-\udfff\ufffe\uffff]+")


def quantity(value: float, unit: str, unit_word: str, texts: Texts, fine: bool) -> str:
    # Centimetres read as whole numbers, metres and feet need two decimals; a slow rise
    # (daily gauges: 0.4 cm/h) keeps a decimal so it does not read as "0 cm per hour".
    places = 0 if unit == "cm" else 2
    if fine and unit == "cm" and abs(value) < 10 and round(value, 1) != round(value):
        places = 1
    number = f"{round(value, places) + 0.0:.{places}f}"  # + 0.0 turns -0.0 into 0.0
    return f"{number.replace('.', texts.decimal_point)} {unit_word}"


def trend(event: AlertEvent, texts: Texts, rate_text: Callable[[float], str]) -> str:
    """Rising or falling with the rate per hour when known, or steady, in words."""
    rate = event.rate_per_h
    direction = event.direction
    if direction is None and rate is not None:
        direction = "rising" if rate > 0 else "falling" if rate < 0 else "steady"
    if direction not in ("rising", "falling", "steady"):
        return texts.trend["unknown"]
    if direction != "steady" and rate:
        return texts.trend[f"{direction}_rate"].format(rate=rate_text(abs(rate)))
    return texts.trend[direction]


def position(
    event: AlertEvent, texts: Texts, quantity: Callable[[float], str], threshold: str | None
) -> str | None:
    """How far the level is above or below the event's rung."""
    if event.threshold is None or event.level is None or threshold is None:
        return None
    gap = event.level - event.threshold.value
    side = "above" if gap >= 0 else "below"
    return texts.position[side].format(gap=quantity(abs(gap)), threshold=threshold)


def to_local(when: datetime, tz: tzinfo) -> datetime:
    # Events carry UTC; a naive time is taken as UTC rather than as the server's zone.
    aware = when if when.tzinfo else when.replace(tzinfo=UTC)
    return aware.astimezone(tz)


def day(when: datetime, texts: Texts) -> str:
    """A local date: "5 Jan", "5 января"."""
    return texts.date.format(day=when.day, month=texts.months[when.month - 1])


def moment(when: datetime, tz: tzinfo, texts: Texts) -> str:
    """A local time with date and zone: "19:00 on 5 Jan (CET)"."""
    local = to_local(when, tz)
    return texts.zoned.format(moment=unzoned(local, texts), zone=zone_label(local))


def unzoned(local: datetime, texts: Texts) -> str:
    return texts.moment.format(time=f"{local:%H:%M}", date=day(local, texts))


def zone_label(local: datetime) -> str:
    name = local.tzname() or ""
    if name and name[0] not in "+-":
        return name  # CET, MSK, UTC
    # Zones without a common abbreviation (Asia/Vladivostok is "+10") read better as UTC+10.
    offset = local.utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset else 0
    if not minutes:
        return "UTC"
    hours, rest = divmod(abs(minutes), 60)
    sign = "+" if minutes > 0 else "-"
    return f"UTC{sign}{hours}" + (f":{rest:02d}" if rest else "")


def eta(event: AlertEvent, texts: Texts) -> str | None:
    """ "in about 6 hours" from the event to the expected time; days from 48 hours on."""
    if event.expected_at is None:
        return None
    hours = (to_local(event.expected_at, UTC) - to_local(event.at, UTC)).total_seconds() / 3600
    if hours < 1:
        return texts.eta_soon
    n, nouns = (round(hours), texts.hours) if hours < 48 else (round(hours / 24), texts.days)
    return texts.eta.format(n=n, noun=nouns[texts.plural(n)])


def band(
    earliest: datetime | None, latest: datetime | None, tz: tzinfo, texts: Texts
) -> str | None:
    if earliest is None or latest is None:
        return None
    start, end = to_local(earliest, tz), to_local(latest, tz)
    if start.date() == end.date():
        return texts.band_same_day.format(
            start=f"{start:%H:%M}", end=f"{end:%H:%M}", date=day(start, texts)
        )
    return texts.band.format(start=unzoned(start, texts), end=unzoned(end, texts))


def clean(value: str) -> str:
    return " ".join(_UNSAFE.sub(" ", value).split())


def clip(value: str, size: int) -> str:
    return value if len(value) <= size else value[: size - 1].rstrip() + "…"
