"""Message texts for the machine channels (MQTT, InfluxDB), from alerts/templates.py.

The station comes from the catalog as it is now; an event of a station that has left the
catalog, or a template that fails, still goes out, with the texts it could get (never
none at all: the title falls back to the station id and the kind).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from alerts import templates
from alerts.events import AlertEvent
from floodwatch.catalog import Catalog, Station

log = logging.getLogger(__name__)

LANGUAGES = ("en", "ru")


class EventTexts:
    def __init__(self, catalog_source: Callable[[], Catalog], default_zone: str = "UTC") -> None:
        self._catalog_source = catalog_source
        self._default_zone = default_zone

    def _station(self, event: AlertEvent) -> Station | None:
        return self._catalog_source().get(event.station_id)

    def plain(self, event: AlertEvent) -> dict[str, str]:
        """The plain message per language; {} if the station is unknown."""
        station = self._station(event)
        if station is None:
            return {}
        texts = {}
        zone = station.zone(self._default_zone)
        for language in LANGUAGES:
            try:
                texts[language] = templates.render_plain(event, station, language, zone)
            except Exception:
                log.exception("no %s text for alert event %s", language, event.event_id)
        return texts

    def title(self, event: AlertEvent) -> str:
        """A short English line (the CAP headline), for annotations and logs."""
        station = self._station(event)
        if station is not None:
            try:
                return templates.headline(event, station, "en", station.zone(self._default_zone))
            except Exception:
                log.exception("no title for alert event %s", event.event_id)
        return f"{event.station_id}: {event.kind.value.replace('_', ' ')}"


def one_line(text: str) -> str:
    """The text on one line: InfluxDB's line protocol cannot carry line breaks."""
    return " · ".join(part.strip() for part in text.splitlines() if part.strip())
