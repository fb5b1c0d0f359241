"""The alert outbox's "telegram" channel: fans each event out to its recipients.

For every outbox item it computes the recipients (telegram_bot/store.py), renders the
message once per language (alerts.templates.render, in the station's time zone) and
stores one pending `telegram_deliveries` row per chat in one transaction; only then does
the dispatcher record the item as delivered on "telegram". Sending is the sender's job
(telegram_bot/delivery.py), from those rows, so a crash at any point loses nothing: an
item fanned out but not yet recorded is fanned out again, and the rows already there are
kept as they are (one row per seq and chat).

The channel starts at the outbox's end the first time it is registered
(`AlertStore.register_channel`): residents never get alerts from before the bot existed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from alerts.channels.base import DeliveryFailed
from alerts.channels.metrics import DispatchMetrics
from alerts.store import AlertStore, OutboxItem
from alerts.templates import render
from floodwatch.catalog import Catalog
from floodwatch.errors import StoreUnavailable
from floodwatch.models import utc_now
from telegram_bot.store import BotStore, priority

log = logging.getLogger(__name__)

NAME = "telegram"


class TelegramChannel:
    name = NAME

    def __init__(
        self,
        alerts: AlertStore,
        store: BotStore,
        catalog_source: Callable[[], Catalog],
        zone: str,
        *,
        on_fanned_out: Callable[[], None] | None = None,
        metrics: DispatchMetrics | None = None,
    ) -> None:
        self.alerts = alerts
        self.store = store
        self._catalog = catalog_source
        self._zone = zone
        self._on_fanned_out = on_fanned_out
        self._metrics = metrics
        self._first_seq: int | None = None
        self.fanned_out = 0  # rows created since start

    async def start(self) -> None:
        try:
            await self._register()
        except StoreUnavailable as exc:  # retried before the first delivery
            log.warning("cannot register the telegram channel yet: %s", exc)

    async def stop(self) -> None:
        return None

    def health(self) -> dict[str, Any]:
        return {"first_seq": self._first_seq, "fanned_out": self.fanned_out}

    async def _register(self) -> int:
        if self._first_seq is None:
            self._first_seq = await self.alerts.register_channel(self.name)
            log.info("telegram channel delivers outbox events from seq %d on", self._first_seq)
        return self._first_seq

    async def deliver(self, items: Sequence[OutboxItem]) -> None:
        try:
            first = await self._register()
        except StoreUnavailable as exc:
            raise DeliveryFailed(f"cannot register the channel: {exc}") from exc
        added = 0
        try:
            for done, item in enumerate(items):
                if item.seq < first:
                    continue  # from before the channel existed: never sent
                try:
                    added += await self._fan_out(item)
                except StoreUnavailable as exc:
                    raise DeliveryFailed(f"bot store: {exc}", delivered=done) from exc
        finally:
            if added:
                self.fanned_out += added
                if self._on_fanned_out is not None:
                    self._on_fanned_out()

    async def _fan_out(self, item: OutboxItem) -> int:
        event = item.event
        station = self._catalog().get(event.station_id)
        if station is None:
            log.warning(
                "event %s: station %s is not in the catalog", event.event_id, event.station_id
            )
            if self._metrics is not None:
                self._metrics.dropped.labels(self.name, "unknown_station").inc()
            return 0
        chats = await self.store.recipients(event, station, utc_now())
        if not chats:
            return 0
        tz = station.zone(self._zone)
        texts = {lang: render(event, station, lang, tz) for lang in {c.language for c in chats}}
        return await self.store.fan_out(item.seq, priority(event), chats, texts)
