"""/status [gauge]: level with unit, trend, thresholds, forecast, and a PNG chart."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from aiogram import F, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import BufferedInputFile, CallbackQuery, InlineKeyboardMarkup, Message

from alerts.store import AlertStore
from floodwatch.catalog import Station
from floodwatch.models import ForecastPoint, Reading, utc_now
from floodwatch.settings import Settings
from floodwatch.storage.base import ReadingStore
from telegram_bot.chart import CHART_DAYS, render_chart
from telegram_bot.common import (
    MAX_QUERY,
    CatalogSource,
    GaugeCb,
    by_short,
    current_catalog,
    esc,
    fmt_level,
    gauge_buttons,
    search,
)
from telegram_bot.store import BotStore
from telegram_bot.texts import t

TREND_WINDOW = timedelta(hours=3)


def trend_line(station: Station, recent: list[Reading], lang: str) -> str:
    window = [r for r in recent if r.ts >= recent[-1].ts - TREND_WINDOW]
    hours = (window[-1].ts - window[0].ts).total_seconds() / 3600 if len(window) > 1 else 0.0
    if hours <= 0:
        return t(lang, "status_trend_steady")
    rate = (window[-1].level - window[0].level) / hours
    steady = 0.5 if station.unit == "cm" else 0.005
    if abs(rate) < steady:
        return t(lang, "status_trend_steady")
    key = "status_trend_rising" if rate > 0 else "status_trend_falling"
    return t(lang, key, rate=fmt_level(abs(rate), station.unit))


def forecast_lines(
    station: Station, forecast: list[ForecastPoint], lang: str, settings: Settings
) -> list[str]:
    if not forecast:
        return []
    zone = station.zone(settings.timezone)
    within = [p for p in forecast if p.horizon_s <= 24 * 3600] or forecast
    last = max(within, key=lambda p: (p.horizon_s, p.valid_at))
    peak = max(forecast, key=lambda p: p.level)
    unit = station.unit
    lines = [
        t(
            lang,
            "status_forecast",
            hours=round(last.horizon_s / 3600),
            level=fmt_level(last.level, unit),
            low=fmt_level(last.lower, unit).split()[0],
            high=fmt_level(last.upper, unit),
        )
    ]
    if peak is not last:
        when = peak.valid_at.astimezone(zone)
        lines.append(
            t(lang, "status_peak", level=fmt_level(peak.level, unit), time=f"{when:%d.%m %H:%M}")
        )
    return lines


def status_text(
    station: Station,
    recent: list[Reading],
    forecast: list[ForecastPoint],
    lang: str,
    settings: Settings,
) -> str:
    river = station.river.get(lang) or next(iter(station.river.values()))
    lines = [t(lang, "status_title", name=esc(station.name(lang)), river=esc(river))]
    if station.maintenance:
        lines.append(t(lang, "status_maintenance"))
    if recent:
        last = recent[-1]
        when = last.ts.astimezone(station.zone(settings.timezone))
        lines.append(
            t(
                lang,
                "status_level",
                level=fmt_level(last.level, station.unit),
                time=f"{when:%d.%m %H:%M}",
            )
        )
        lines.append(trend_line(station, recent, lang))
    else:
        lines.append(t(lang, "status_no_data"))
    if station.levels:
        lines.append(t(lang, "status_thresholds"))
        for rung in station.levels:
            name = rung.names.get(lang) or next(iter(rung.names.values()))
            lines.append(
                f"  {esc(rung.short)} — {fmt_level(rung.value, station.unit)}: {esc(name)}"
            )
    else:
        lines.append(t(lang, "status_no_thresholds"))
    lines += forecast_lines(station, forecast, lang, settings)
    return "\n".join(lines)


async def send_status(
    chat_id: int,
    station: Station,
    readings: ReadingStore,
    settings: Settings,
    lang: str,
    answer: Message | CallbackQuery,
) -> None:
    bot = answer.bot
    assert bot is not None
    now = utc_now()
    history = await readings.query(station.id, now - timedelta(days=CHART_DAYS), now)
    recent = [r for r in history if r.is_clean] or await readings.latest(station.id)
    forecast = await readings.latest_forecast_run(station.id)
    await bot.send_message(chat_id, status_text(station, recent, forecast, lang, settings))
    if not recent and not forecast:
        return
    png = await asyncio.to_thread(render_chart, station, recent, forecast, language=lang, now=now)
    await bot.send_photo(
        chat_id,
        BufferedInputFile(png, filename=f"{station.id}.png"),
        caption=t(lang, "chart_caption", name=esc(station.name(lang))),
    )


async def status_command(
    message: Message,
    command: CommandObject,
    catalog: CatalogSource,
    alert_store: AlertStore | None,
    bot_store: BotStore,
    readings: ReadingStore,
    settings: Settings,
    lang: str,
) -> None:
    current = await current_catalog(catalog, alert_store)
    query = (command.args or "").strip()
    if query:
        if len(query) > MAX_QUERY:
            await message.answer(t(lang, "too_long"))
            return
        station = current.get(query)
        matches = [station] if station else search(current, query)
        if len(matches) == 1:
            await send_status(message.chat.id, matches[0], readings, settings, lang, message)
            return
        if not matches:
            await message.answer(t(lang, "status_unknown", query=esc(query)))
            return
    else:
        subscribed = [s.station_id for s in await bot_store.subscriptions(message.chat.id)]
        matches = [current[sid] for sid in subscribed if sid and sid in current]
        if len(matches) == 1:
            await send_status(message.chat.id, matches[0], readings, settings, lang, message)
            return
        matches = matches or list(current.values())
    await message.answer(
        t(lang, "status_choose"),
        reply_markup=InlineKeyboardMarkup(
            inline_keyboard=gauge_buttons(matches, lang, action="st")
        ),
    )


async def status_chosen(
    query: CallbackQuery,
    callback_data: GaugeCb,
    catalog: CatalogSource,
    alert_store: AlertStore | None,
    readings: ReadingStore,
    settings: Settings,
    lang: str,
) -> None:
    current = await current_catalog(catalog, alert_store)
    station = by_short(current, callback_data.gauge)
    if station is None or query.message is None:
        await query.answer(t(lang, "stale_button"), show_alert=True)
        return
    await query.answer()
    await send_status(query.message.chat.id, station, readings, settings, lang, query)


def make_router() -> Router:
    """A fresh router (a router belongs to one dispatcher), handlers in order."""
    router = Router(name="status")
    router.message(Command("status"))(status_command)
    router.callback_query(GaugeCb.filter(F.action == "st"))(status_chosen)
    return router
