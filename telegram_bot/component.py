"""The `bot` component of `floodwatch run`: delivery of alerts (outbox → Telegram) and the
conversations (residents, dispatch groups, hydrologists), sharing one Bot session."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from aiogram import Dispatcher

from alerts.channels.metrics import DispatchMetrics
from alerts.store import AlertStore
from floodwatch.catalog import Catalog
from floodwatch.errors import StoreUnavailable
from floodwatch.settings import Settings
from floodwatch.storage import open_store
from floodwatch.watchdog import task_ended
from telegram_bot.bot import build_dispatcher, run_polling
from telegram_bot.delivery import TelegramDelivery
from telegram_bot.message_ids import UpdateFloorMiddleware
from telegram_bot.update_errors import UpdateErrors

log = logging.getLogger(__name__)
# How long stopping waits for the long poll to end before cancelling it.
STOP_WAIT_S = 5.0


class BotComponent:
    def __init__(
        self,
        settings: Settings,
        *,
        catalog_source: Callable[[], Catalog],
        file_catalog: Callable[[], Catalog],
        alert_store: AlertStore | None = None,
        dispatch_metrics: DispatchMetrics | None = None,
    ) -> None:
        """`catalog_source`: the catalog in force (alerts are worded with it);
        `file_catalog`: the file's catalog, which the threshold commands edit against."""
        self.settings = settings
        self.delivery = TelegramDelivery(
            settings,
            catalog_source=catalog_source,
            alert_store=alert_store,
            dispatch_metrics=dispatch_metrics,
        )
        self.readings = open_store(settings)
        self._file_catalog = file_catalog
        self._polling: asyncio.Task[None] | None = None
        self._stopping = False
        self._dispatcher: Dispatcher | None = None
        self.update_errors = UpdateErrors()

    def wake(self) -> None:
        self.delivery.wake()

    async def start(self) -> None:
        await self.delivery.start()
        try:
            await self.readings.open()
        except StoreUnavailable as exc:  # /status says so; subscriptions still work
            log.warning("readings store unavailable for the bot: %s", exc)
        self._dispatcher = build_dispatcher(
            catalog=self._file_catalog,
            bot_store=self.delivery.store,
            readings=self.readings,
            settings=self.settings,
            alert_store=self.delivery.alerts,
            update_errors=self.update_errors,
        )
        # Residents' messages take message ids too: the delivery's floor must see them.
        self._dispatcher.update.outer_middleware(UpdateFloorMiddleware(self.delivery.floor))
        self._polling = asyncio.create_task(
            run_polling(self.delivery.bot, self._dispatcher), name="telegram-polling"
        )

    async def stop(self) -> None:
        self._stopping = True
        if self._polling is not None and not self._polling.done():
            # stop_polling lets the long poll end cleanly; cancel only if it does not.
            if self._dispatcher is not None:
                with contextlib.suppress(RuntimeError):
                    await self._dispatcher.stop_polling()
            done, _ = await asyncio.wait({self._polling}, timeout=STOP_WAIT_S)
            if not done:
                self._polling.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._polling
        await self.readings.close()
        await self.delivery.stop()

    def failure(self) -> str | None:
        if self._stopping:
            return None
        return task_ended([self._polling]) or self.delivery.failure()

    def health(self) -> tuple[bool, dict[str, Any]]:
        ok, details = self.delivery.health()
        polling = self._polling is not None and not self._polling.done()
        return ok and polling, {**details, "polling": "running" if polling else "stopped"}

    def render(self) -> bytes:
        return self.delivery.render() + self.update_errors.render()
