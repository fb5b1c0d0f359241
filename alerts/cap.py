"""CAP 1.2 (OASIS Common Alerting Protocol) alerts for dispatch systems, one per event.

Operator-only events (gauge offline, faulty, maintenance) never appear in CAP. Times are
written in UTC with the `-00:00` offset the standard asks for ("Z" is not allowed), to
the second. The standard library's ElementTree writes the XML, so every value is escaped;
characters XML cannot carry at all are removed first. alerts.cap_feed wraps several
alerts into the feed served at GET /cap.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from urllib.parse import quote

from alerts import templates
from alerts.events import AlertEvent, EventKind
from alerts.texts import texts_for
from floodwatch.catalog import Station

CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"
XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'
RADIUS_KM = 10.0  # the stretch of river a gauge speaks for, by default
VALID_FOR = timedelta(hours=24)
NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_NOT_IN_SENDER = re.compile(r"[\s,<&]")


@dataclass(frozen=True, slots=True)
class CapProfile:
    """How a kind of event reads in CAP. `cancels`: it ends the alerts it references."""

    urgency: str
    certainty: str
    response: str | None  # None: by the rung's severity
    cancels: bool = False


PROFILES: Mapping[EventKind, CapProfile] = {
    EventKind.ESCALATION: CapProfile("Immediate", "Observed", None),
    EventKind.DEESCALATION: CapProfile("Immediate", "Observed", "Monitor"),
    EventKind.RAPID_RISE: CapProfile("Immediate", "Observed", "Monitor"),
    EventKind.PREWARNING: CapProfile("Expected", "Likely", "Prepare"),
    EventKind.PREWARNING_UPDATE: CapProfile("Expected", "Likely", "Prepare"),
    EventKind.PREWARNING_WITHDRAWN: CapProfile("Past", "Unlikely", "AllClear", cancels=True),
    EventKind.ALL_CLEAR: CapProfile("Past", "Observed", "AllClear", cancels=True),
}
SEVERITY = {"watch": "Moderate", "warning": "Severe", "danger": "Extreme"}
_RESPONSE = {"watch": "Monitor", "warning": "Prepare", "danger": "Avoid"}


@dataclass(frozen=True, slots=True)
class CapReference:
    """An earlier alert that an Update or Cancel refers to."""

    sender: str
    identifier: str
    sent: datetime

    @classmethod
    def to(cls, event: AlertEvent, *, sender: str, sent: datetime) -> CapReference:
        """The reference to the alert published for `event` by `sender` at `sent`."""
        return cls(sender, cap_identifier(event), sent)

    def __str__(self) -> str:
        # CAP 1.2 <references>: "sender,identifier,sent", several separated by spaces.
        return f"{self.sender},{self.identifier},{cap_time(self.sent)}"


def is_public(event: AlertEvent) -> bool:
    """Whether the event belongs in CAP (operator-only events do not)."""
    return event.kind in PROFILES


def cap_identifier(event: AlertEvent) -> str:
    # CAP forbids spaces, commas, "<" and "&" in identifiers; percent-encoding keeps the
    # event id's uniqueness and leaves the usual ids ("rhein-mainz:escalation:…") as they are.
    return quote(event.event_id, safe="-._~:")


def cap_time(moment: datetime) -> str:
    """CAP date-time: to the second, with a numeric offset; UTC is written -00:00."""
    if moment.tzinfo is None:
        raise ValueError("CAP times need a time zone; pass aware datetimes (UTC)")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S") + "-00:00"


def cap_alert(
    event: AlertEvent,
    station: Station,
    *,
    sender: str,
    sent: datetime,
    language: str = "en",
    tz: tzinfo,
    references: Sequence[CapReference] = (),
    sender_name: str = "Floodwatch",
    radius_km: float = RADIUS_KM,
    valid_for: timedelta = VALID_FOR,
) -> bytes:
    """One CAP 1.2 <alert> document (UTF-8) for a resident event.

    `tz` is the zone for times in the description text. An event that supersedes earlier
    alerts (a higher rung, a moved forecast) passes them as `references` and becomes an
    Update; all-clear and a withdrawn pre-warning are Cancels and must reference what they
    end. The alert expires `valid_for` after the event (or after the latest expected time).
    Raises ValueError for operator-only events, a malformed sender or naive datetimes.
    """
    element = alert_xml(
        event,
        station,
        sender=sender,
        sent=sent,
        language=language,
        tz=tz,
        references=references,
        sender_name=sender_name,
        radius_km=radius_km,
        valid_for=valid_for,
    )
    return (XML_DECLARATION + element).encode()


def alert_xml(
    event: AlertEvent,
    station: Station,
    *,
    sender: str,
    sent: datetime,
    language: str = "en",
    tz: tzinfo,
    references: Sequence[CapReference] = (),
    sender_name: str = "Floodwatch",
    radius_km: float = RADIUS_KM,
    valid_for: timedelta = VALID_FOR,
) -> str:
    """The <alert> element as text, without an XML declaration, to embed in a feed."""
    profile = PROFILES.get(event.kind)
    if profile is None:
        raise ValueError(f"{event.kind.value} events are for operators and never go to CAP")
    if not sender or _NOT_IN_SENDER.search(sender):
        raise ValueError("CAP sender must be non-empty, without spaces, commas, '<' or '&'")
    if profile.cancels and not references:
        raise ValueError(f"a {event.kind.value} cancels earlier alerts and must reference them")
    alert = ET.Element(_cap("alert"))
    _texts(
        alert,
        ("identifier", cap_identifier(event)),
        ("sender", sender),
        ("sent", cap_time(sent)),
        ("status", "Actual"),
        ("msgType", "Cancel" if profile.cancels else "Update" if references else "Alert"),
        ("scope", "Public"),
        ("references", " ".join(str(ref) for ref in references) or None),
    )
    info = ET.SubElement(alert, _cap("info"))
    _texts(info, *_classification(event, profile, language))
    _texts(info, *_times(event, profile, sent, valid_for), ("senderName", sender_name))
    _texts(info, *_texts_of(event, station, language, tz))
    for name, value in _parameters(event, station):
        _texts(ET.SubElement(info, _cap("parameter")), ("valueName", name), ("value", value))
    _texts(
        ET.SubElement(info, _cap("area")),
        ("areaDesc", templates.place(station, language)),
        ("circle", f"{station.lat:.4f},{station.lon:.4f} {radius_km:g}"),
    )
    return ET.tostring(alert, encoding="unicode", default_namespace=CAP_NS)


def _classification(
    event: AlertEvent, profile: CapProfile, language: str
) -> list[tuple[str, str | None]]:
    texts = texts_for(language)
    severity = event.threshold.severity if event.threshold else ""
    other = "rapid_rise" if event.kind is EventKind.RAPID_RISE else "flood"
    return [
        ("language", texts.cap_language),
        ("category", "Met"),  # CAP files floods under Met (meteorological, incl. flood)
        ("event", texts.events.get(severity, texts.events[other])),
        ("responseType", profile.response or _RESPONSE.get(severity, "Monitor")),
        ("urgency", profile.urgency),
        # An ended alert is Minor; a rise faster than the station's limit with no rung in
        # sight is at least a watch.
        ("severity", "Minor" if profile.cancels else SEVERITY.get(severity, "Moderate")),
        ("certainty", profile.certainty),
    ]


def _times(
    event: AlertEvent, profile: CapProfile, sent: datetime, valid_for: timedelta
) -> list[tuple[str, str | None]]:
    onset = event.earliest or event.expected_at or event.at
    ends = max(event.latest or event.expected_at or event.at, sent)
    return [
        ("onset", None if profile.cancels else cap_time(onset)),
        ("expires", cap_time(ends + valid_for)),
    ]


def _texts_of(
    event: AlertEvent, station: Station, language: str, tz: tzinfo
) -> list[tuple[str, str | None]]:
    return [
        ("headline", templates.headline(event, station, language, tz)),
        ("description", templates.render_plain(event, station, language, tz)),
        ("instruction", templates.instruction(event, language)),
    ]


def _parameters(event: AlertEvent, station: Station) -> list[tuple[str, str]]:
    """Machine-readable values, in the station's unit, for dispatch systems to sort on."""
    rung, previous = event.threshold, event.previous
    values: list[tuple[str, str | None]] = [
        ("stationId", event.station_id),
        ("waterLevel", _number(event.level)),
        ("unit", event.unit or station.unit),
        ("trend", event.direction),
        ("ratePerHour", _number(event.rate_per_h)),
        ("threshold", rung.key if rung else None),
        ("thresholdName", rung.short if rung else None),
        ("thresholdLevel", _number(rung.value) if rung else None),
        ("previousThreshold", previous.key if previous else None),
        ("expectedAt", cap_time(event.expected_at) if event.expected_at else None),
        ("expectedEarliest", cap_time(event.earliest) if event.earliest else None),
        ("expectedLatest", cap_time(event.latest) if event.latest else None),
    ]
    return [(name, value) for name, value in values if value is not None]


def _number(value: float | None) -> str | None:
    return None if value is None else f"{value:g}"


def _cap(name: str) -> str:
    return f"{{{CAP_NS}}}{name}"


def _texts(parent: ET.Element, *items: tuple[str, str | None]) -> None:
    """Append text elements in order; None leaves an optional element out."""
    for name, text in items:
        if text is not None:
            ET.SubElement(parent, _cap(name)).text = NOT_XML.sub("", text)
