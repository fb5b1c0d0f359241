"""Alert messages on the terminal, as residents read them in Telegram.

The text is the alert engine's own template (alerts.templates.render, Telegram HTML) in
the chosen language and the gauge's local time; the markup becomes terminal text: bold
as bold on a terminal that shows it (plain elsewhere), entities unescaped.
"""

from __future__ import annotations

import html
import re
from datetime import datetime, timedelta, tzinfo

from alerts import templates
from alerts.events import AlertEvent, EventKind
from floodwatch.catalog import Station

BOLD, RESET, DIM = "\x1b[1m", "\x1b[0m", "\x1b[2m"
_TAG = re.compile(r"<(/?)(b|i|code)>")


def html_to_terminal(text: str, *, ansi: bool) -> str:
    """Telegram HTML (`<b>`, `<i>`, `<code>` only) as terminal text."""

    def tag(match: re.Match[str]) -> str:
        if not ansi or match.group(2) != "b":
            return ""
        return RESET if match.group(1) else BOLD

    return html.unescape(_TAG.sub(tag, text))


def hours(delta: timedelta) -> str:
    """A lead time as people say it: "45 min", "5.2 h", "2.1 days"."""
    seconds = delta.total_seconds()
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 72 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def lead_line(crossed_at: datetime, prewarned_at: datetime | None, zone: tzinfo) -> str:
    """What the demo adds under an alert: how early residents had been told."""
    if prewarned_at is None:
        return "Not pre-warned: no forecast expected this level in time."
    local = prewarned_at.astimezone(zone)
    return (
        f"Pre-warned {hours(crossed_at - prewarned_at)} before the water reached it "
        f"(first pre-warning at {local:%H:%M on %d %b})."
    )


def header(event: AlertEvent, station: Station, zone: tzinfo) -> str:
    local = event.at.astimezone(zone)
    return f"── {local:%Y-%m-%d %H:%M %Z} · {station.name('en')} · {event.kind.value}"


def message(event: AlertEvent, station: Station, language: str, zone: tzinfo) -> str:
    """The resident's message as plain text (emoji markers kept)."""
    return html_to_terminal(templates.render(event, station, language, zone), ansi=False)


def block(
    event: AlertEvent,
    station: Station,
    language: str,
    zone: tzinfo,
    *,
    lead: str | None = None,
    ansi: bool = False,
) -> str:
    """One alert as printed: a dim header with the gauge time, the message, the lead."""
    text = html_to_terminal(templates.render(event, station, language, zone), ansi=ansi)
    top = header(event, station, zone)
    lines = [f"{DIM}{top}{RESET}" if ansi else top, text]
    if lead is not None:
        lines.append(f"⏱ {lead}")
    return "\n".join(lines)


def is_resident(event: AlertEvent) -> bool:
    return not event.operator_only


def opens_alert(event: AlertEvent) -> bool:
    return event.kind is EventKind.ESCALATION
