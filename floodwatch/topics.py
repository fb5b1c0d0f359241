"""MQTT topic names, as fixed by DESIGN.md."""

from __future__ import annotations

import re

PREFIX = "floodwatch"
STATION_ID_PATTERN = r"[a-z0-9-]{1,64}"
STATION_ID_RE = re.compile(rf"^{STATION_ID_PATTERN}$")
GAUGE_LEVEL_FILTER = f"{PREFIX}/gauges/+/level"
CLEAN_READINGS_FILTER = f"{PREFIX}/readings/+"
# Readings quality control did not pass clean (suspect, spike, flatline, maintenance):
# stored like any other, published here so the alert engine can tell dispatchers.
FLAGGED_READINGS_FILTER = f"{PREFIX}/flagged/+"
FORECASTS_FILTER = f"{PREFIX}/forecasts/+"
ALERTS_FILTER = f"{PREFIX}/alerts/+"
# A single-level wildcard never matches the events topic, so the two filters stay apart.
ALERTS_CURRENT_FILTER = f"{PREFIX}/alerts/+/current"
INVALID_STATION = "_invalid"


def gauge_level(station_id: str) -> str:
    return f"{PREFIX}/gauges/{station_id}/level"


def rejected(station_id: str) -> str:
    return f"{PREFIX}/rejected/{station_id}"


def clean_reading(station_id: str) -> str:
    return f"{PREFIX}/readings/{station_id}"


def flagged_reading(station_id: str) -> str:
    return f"{PREFIX}/flagged/{station_id}"


def station_state(station_id: str) -> str:
    return f"{PREFIX}/stations/{station_id}/state"


def alert(station_id: str) -> str:
    return f"{PREFIX}/alerts/{station_id}"


def alert_current(station_id: str) -> str:
    """The retained current alert picture of a gauge."""
    return f"{PREFIX}/alerts/{station_id}/current"


def forecast(station_id: str) -> str:
    return f"{PREFIX}/forecasts/{station_id}"


def shared(group: str, topic_filter: str) -> str:
    """A shared subscription, so several collectors in one group split the messages."""
    return f"$share/{group}/{topic_filter}"


def station_from_gauge_topic(topic: str) -> str | None:
    """The station id of a gauge level topic, or None if the topic or id is malformed."""
    parts = topic.split("/")
    if len(parts) != 4 or parts[0] != PREFIX or parts[1] != "gauges" or parts[3] != "level":
        return None
    return parts[2] if STATION_ID_RE.match(parts[2]) else None


def station_from_topic(topic: str, kind: str) -> str | None:
    """The station id of `floodwatch/{kind}/{station_id}` (readings, forecasts, ...), or None."""
    parts = topic.split("/")
    if len(parts) != 3 or parts[0] != PREFIX or parts[1] != kind:
        return None
    return parts[2] if STATION_ID_RE.match(parts[2]) else None


def station_from_alert_current_topic(topic: str) -> str | None:
    """The station id of `floodwatch/alerts/{station_id}/current`, or None."""
    parts = topic.split("/")
    if len(parts) != 4 or parts[0] != PREFIX or parts[1] != "alerts" or parts[3] != "current":
        return None
    return parts[2] if STATION_ID_RE.match(parts[2]) else None
