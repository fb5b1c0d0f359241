"""Prints the alert engine's events as residents read them, in outbox order, and keeps
them for messages.txt. Reads the outbox through the store's channel API ("demo-terminal"),
like any delivery channel, so it shows exactly what the engine committed."""

from __future__ import annotations

import sys
from collections import defaultdict
from datetime import timedelta

from alerts.events import AlertEvent, EventKind
from alerts.store import AlertStore
from floodwatch.catalog import Catalog
from floodwatch.demo import lead, terminal
from floodwatch.demo.recorder import Recorder
from floodwatch.demo.report import Message

CHANNEL = "demo-terminal"


class Printer:
    def __init__(
        self,
        store: AlertStore,
        catalog: Catalog,
        recorder: Recorder,
        *,
        language: str,
        default_zone: str,
        ansi: bool | None = None,
    ) -> None:
        self.store = store
        self.catalog = catalog
        self.recorder = recorder
        self.language = language
        self.default_zone = default_zone
        self.ansi = sys.stdout.isatty() if ansi is None else ansi
        self.messages: list[Message] = []
        self.events: list[AlertEvent] = []
        self._by_station: defaultdict[str, list[AlertEvent]] = defaultdict(list)

    async def drain(self) -> None:
        while items := await self.store.pending(CHANNEL):
            for item in items:
                self._show(item.event)
            await self.store.mark_delivered(CHANNEL, [item.seq for item in items])

    def _show(self, event: AlertEvent) -> None:
        self.events.append(event)
        self._by_station[event.station_id].append(event)
        station = self.catalog.get(event.station_id)
        if station is None or event.operator_only:
            return
        zone = station.zone(self.default_zone)
        note = self._lead(event)
        plain = terminal.block(event, station, self.language, zone, lead=note, ansi=False)
        self.messages.append(Message(event, plain))
        if self.ansi:
            text = terminal.block(event, station, self.language, zone, lead=note, ansi=True)
        else:
            text = plain
        print(f"\n{text}", flush=True)

    def _lead(self, event: AlertEvent) -> str | None:
        """For an alert: how early the pre-warning came before the water reached the rung."""
        station = self.catalog.get(event.station_id)
        if event.kind is not EventKind.ESCALATION or event.threshold is None or station is None:
            return None
        keys = [rung.key for rung in station.levels]
        rung = lead.rung_index(event, keys)
        before = self.recorder.reading_before(event.station_id, event.at)
        crossed = event.at
        if before is not None and event.level is not None:
            crossed = lead.crossing_time(before, (event.at, event.level), event.threshold.value)
        horizon = timedelta(hours=station.forecast.horizons_h[-1])
        since = lead.prewarned_since(
            self._by_station[event.station_id], keys, rung, crossed, horizon
        )
        return terminal.lead_line(crossed, since, station.zone(self.default_zone))
