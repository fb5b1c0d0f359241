"""The CAP feed served at GET /cap: an Atom feed with one complete CAP alert per entry.

CAP 1.2 allows one alert per document, so several active alerts travel in a feed. Alert
aggregators and dispatch systems (WMO Alert Hub, Google Public Alerts, the NWS feeds)
poll an Atom or RSS feed and take each entry's CAP alert. Here every entry carries the
whole alert in `<content type="application/cap+xml">`, so one request returns everything,
and, when the API also serves single alerts, a `rel="alternate"` link to that document.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from xml.sax.saxutils import escape, quoteattr

from alerts import templates
from alerts.cap import NOT_XML, XML_DECLARATION, CapReference, alert_xml, cap_identifier, is_public
from alerts.events import AlertEvent
from floodwatch.catalog import Station

ATOM_NS = "http://www.w3.org/2005/Atom"
CAP_MEDIA_TYPE = "application/cap+xml"


@dataclass(frozen=True, slots=True)
class CapEntry:
    """One alert of the feed: the event, its station, when its alert was first published
    (kept, so `references` to it stay valid), and the earlier alerts it updates or ends."""

    event: AlertEvent
    station: Station
    sent: datetime
    references: Sequence[CapReference] = ()


def cap_feed(
    entries: Iterable[CapEntry],
    *,
    sender: str,
    feed_url: str,
    updated: datetime,
    tz: tzinfo,
    language: str = "en",
    title: str = "Floodwatch flood alerts",
    sender_name: str = "Floodwatch",
    alert_url: Callable[[str], str] | None = None,
) -> bytes:
    """An Atom feed (UTF-8) with one entry per CAP alert; operator-only events are skipped.

    Local times in the texts are in each gauge's catalog `timezone`, else in `tz` (the
    FLOODWATCH_TIMEZONE setting). Which alerts are active is the caller's decision
    (typically each station's latest public event while it is above a rung, and its
    Cancel for a while after).
    `alert_url(identifier)` gives the address of a single alert, if the API serves them;
    without it an entry's id is the feed's address with the identifier as fragment.
    """
    parts = [
        XML_DECLARATION + f'<feed xmlns="{ATOM_NS}">',
        _atom("id", feed_url),
        _atom("title", title),
        _atom("updated", _rfc3339(updated)),
        f"<author>{_atom('name', sender_name)}</author>",
        f'<link rel="self" href={quoteattr(feed_url)}/>',
    ]
    for entry in entries:
        if is_public(entry.event):
            zone = entry.station.zone(tz)
            alert = alert_xml(
                entry.event,
                entry.station,
                sender=sender,
                sent=entry.sent,
                language=language,
                tz=zone,
                references=entry.references,
                sender_name=sender_name,
            )
            headline = templates.headline(entry.event, entry.station, language, zone)
            parts.append(_entry(entry, alert, headline, feed_url, alert_url))
    parts.append("</feed>\n")
    return "\n".join(parts).encode()


def _entry(
    entry: CapEntry,
    alert: str,
    headline: str,
    feed_url: str,
    alert_url: Callable[[str], str] | None,
) -> str:
    identifier = cap_identifier(entry.event)
    url = alert_url(identifier) if alert_url else None
    link = f'<link rel="alternate" type="{CAP_MEDIA_TYPE}" href={quoteattr(url)}/>' if url else ""
    return (
        "<entry>"
        + _atom("id", url or f"{feed_url}#{identifier}")
        + _atom("title", headline)
        + _atom("updated", _rfc3339(entry.sent))
        + link
        + f'<content type="{CAP_MEDIA_TYPE}">{alert}</content>'
        + "</entry>"
    )


def _atom(name: str, text: str) -> str:
    return f"<{name}>{escape(NOT_XML.sub('', text))}</{name}>"


def _rfc3339(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("feed times need a time zone; pass aware datetimes (UTC)")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
