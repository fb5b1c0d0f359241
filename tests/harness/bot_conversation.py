"""A running conversation bot for tests: the local Bot API server, aiogram's real HTTP
session, the bot polling for real, and real SQLite stores with a few readings."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from aiogram import Bot, Dispatcher

from alerts.store import AlertStore
from floodwatch.catalog import Catalog, load_catalog
from floodwatch.models import ForecastPoint, Reading, utc_now
from floodwatch.settings import CATALOG_DIR, Settings
from floodwatch.storage.sqlite import SQLiteStore
from telegram_bot.bot import build_dispatcher, create_bot, run_polling
from telegram_bot.store import BotStore
from telegram_bot.update_errors import UpdateErrors
from tests.harness.bot_api import BotApiServer

ADMIN_ID = 4242
RHINE = CATALOG_DIR / "rhine.yaml"


@dataclass
class RunningBot:
    server: BotApiServer
    bot: Bot
    dispatcher: Dispatcher
    catalog: Catalog
    bot_store: BotStore
    alert_store: AlertStore
    readings: SQLiteStore
    settings: Settings
    update_errors: UpdateErrors


async def seed_readings(store: SQLiteStore, station_id: str, levels: list[float]) -> None:
    """Readings every 30 minutes ending now, and a forecast run issued now."""
    now = utc_now().replace(microsecond=0)
    start = now - timedelta(minutes=30 * (len(levels) - 1))
    await store.write(
        [
            Reading(station_id, start + timedelta(minutes=30 * i), level)
            for i, level in enumerate(levels)
        ]
    )
    last = levels[-1]
    await store.write_forecasts(
        [
            ForecastPoint(
                station_id=station_id,
                issued_at=now,
                valid_at=now + timedelta(hours=h),
                horizon_s=h * 3600,
                level=last + 5 * h,
                lower=last + 3 * h,
                upper=last + 7 * h,
                method="trend",
            )
            for h in (1, 3, 6, 12)
        ]
    )


@contextlib.asynccontextmanager
async def running_bot(tmp_path: Path, **extra_settings: object) -> AsyncIterator[RunningBot]:
    """`extra_settings`: values (also ones Settings does not define yet) the bot reads."""
    async with BotApiServer() as server:
        settings = Settings(
            telegram_token=server.token,
            telegram_api_url=server.url,
            telegram_admins=[ADMIN_ID],
            state_path=tmp_path / "state.sqlite",
            readings_path=tmp_path / "readings.sqlite",
            stations=RHINE,
        ).model_copy(update=extra_settings)
        catalog = load_catalog(RHINE)
        readings = SQLiteStore(settings.readings_path)
        alert_store = AlertStore(settings.state_path)
        bot_store = BotStore(settings.state_path)
        await readings.open()
        await alert_store.open()
        await bot_store.open()
        bot = create_bot(settings)
        update_errors = UpdateErrors()
        dispatcher = build_dispatcher(
            catalog=catalog,
            bot_store=bot_store,
            readings=readings,
            settings=settings,
            alert_store=alert_store,
            update_errors=update_errors,
        )
        task = asyncio.create_task(run_polling(bot, dispatcher))
        try:
            yield RunningBot(
                server,
                bot,
                dispatcher,
                catalog,
                bot_store,
                alert_store,
                readings,
                settings,
                update_errors,
            )
        finally:
            with contextlib.suppress(RuntimeError):
                await dispatcher.stop_polling()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await bot.session.close()
            await bot_store.close()
            await alert_store.close()
            await readings.close()
