"""Which CAP alerts the feed at GET /cap carries now, from the outbox and the gauge states.

A gauge's public events form three streams, each a run of alerts ended by its own cancel:
the ladder (escalation, de-escalation; ended by the all-clear), pre-warnings (issued,
updated; ended by the withdrawal) and rapid rise (no cancel; active while the engine holds
it). A stream that is active shows its latest alert, referencing the earlier ones of the
same run (an Update); an ended one shows its Cancel, referencing the whole run, for
`keep` after it. `sent` is the event's commit time, so an alert keeps its identity and
`sent` across requests, and references to it stay valid.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from alerts.cap import CapReference
from alerts.cap_feed import CapEntry
from alerts.events import EventKind
from alerts.gauge_state import GaugeState
from alerts.store import OutboxItem
from floodwatch.catalog import Station

CANCEL_KEEP = timedelta(hours=12)


@dataclass(frozen=True, slots=True)
class Stream:
    kinds: frozenset[EventKind]
    cancel: EventKind | None

    def active(self, state: GaugeState) -> bool:
        if EventKind.ESCALATION in self.kinds:
            return state.active is not None
        if EventKind.PREWARNING in self.kinds:
            return state.prewarning is not None
        return state.rapid


STREAMS = (
    Stream(frozenset({EventKind.ESCALATION, EventKind.DEESCALATION}), EventKind.ALL_CLEAR),
    Stream(
        frozenset({EventKind.PREWARNING, EventKind.PREWARNING_UPDATE}),
        EventKind.PREWARNING_WITHDRAWN,
    ),
    Stream(frozenset({EventKind.RAPID_RISE}), None),
)
CANCELS = frozenset(stream.cancel for stream in STREAMS if stream.cancel is not None)


def _references(run: Sequence[OutboxItem], sender: str) -> list[CapReference]:
    return [CapReference.to(item.event, sender=sender, sent=item.created_at) for item in run]


def _stream_entry(
    stream: Stream,
    history: Sequence[OutboxItem],
    station: Station,
    state: GaugeState,
    *,
    sender: str,
    now: datetime,
    keep: timedelta,
) -> CapEntry | None:
    run: list[OutboxItem] = []
    cancel: OutboxItem | None = None
    for item in history:  # oldest first
        if item.event.kind in stream.kinds:
            if cancel is not None:
                run, cancel = [], None  # a new run begins
            run.append(item)
        elif item.event.kind is stream.cancel and run and cancel is None:
            cancel = item
    if cancel is not None:
        if now - cancel.created_at > keep:
            return None
        return CapEntry(cancel.event, station, cancel.created_at, _references(run, sender))
    if not run or not stream.active(state):
        return None
    latest = run[-1]
    return CapEntry(latest.event, station, latest.created_at, _references(run[:-1], sender))


def station_entries(
    history: Sequence[OutboxItem],
    station: Station,
    state: GaugeState,
    *,
    sender: str,
    now: datetime,
    keep: timedelta = CANCEL_KEEP,
) -> list[CapEntry]:
    """The feed's entries for one gauge; `history` is its outbox items, oldest first."""
    entries = []
    for stream in STREAMS:
        entry = _stream_entry(stream, history, station, state, sender=sender, now=now, keep=keep)
        if entry is not None:
            entries.append(entry)
    return entries


def candidates(
    states: Mapping[str, GaugeState],
    recent: Iterable[OutboxItem],
    *,
    now: datetime,
    keep: timedelta = CANCEL_KEEP,
) -> list[str]:
    """Gauges that may have an entry: something active, or a cancel still shown."""
    wanted = {
        station_id
        for station_id, state in states.items()
        if state.active is not None or state.prewarning is not None or state.rapid
    }
    wanted.update(
        item.event.station_id
        for item in recent
        if item.event.kind in CANCELS and now - item.created_at <= keep
    )
    return sorted(wanted)
