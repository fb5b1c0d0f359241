"""/my: subscriptions with current levels; unsubscribe and mute from there."""

from __future__ import annotations

from datetime import timedelta

from aiogram import F, Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message

from alerts.store import AlertStore
from floodwatch.models import utc_now
from floodwatch.settings import Settings
from floodwatch.storage.base import ReadingStore
from telegram_bot.common import (
    CatalogSource,
    MenuCb,
    MuteCb,
    UnsubCb,
    current_catalog,
    esc,
    fmt_level,
    river_label,
    short,
)
from telegram_bot.store import BotStore
from telegram_bot.texts import t

MUTE_HOURS = (1, 8, 24)


async def send_my(
    chat_id: int,
    bot_store: BotStore,
    readings: ReadingStore,
    catalog: CatalogSource,
    alert_store: AlertStore | None,
    settings: Settings,
    lang: str,
    answer: Message | CallbackQuery,
) -> None:
    bot = answer.bot
    assert bot is not None
    subscriptions = await bot_store.subscriptions(chat_id)
    if not subscriptions:
        await bot.send_message(chat_id, t(lang, "my_empty"))
        return
    current = await current_catalog(catalog, alert_store)
    lines = [t(lang, "my_header")]
    rows: list[list[InlineKeyboardButton]] = []
    for sub in subscriptions:
        severity = t(lang, f"sev_{sub.min_severity}")
        if sub.station_id is not None:
            station = current.get(sub.station_id)
            name = station.name(lang) if station else sub.station_id
            level = t(lang, "no_reading")
            if station is not None:
                latest = await readings.latest(station.id)
                if latest:
                    when = latest[-1].ts.astimezone(station.zone(settings.timezone))
                    level = f"{fmt_level(latest[-1].level, station.unit)}, {when:%d.%m %H:%M}"
            lines.append(f"• <b>{esc(name)}</b>: {esc(level)} ({severity}+)")
            data = UnsubCb(kind="s", target=short(sub.station_id)).pack()
        elif sub.river is not None:
            name = t(lang, "river_target", river=river_label(current, sub.river, lang))
            lines.append(f"• {esc(name)} ({severity}+)")
            data = UnsubCb(kind="r", target=short(sub.river)).pack()
        else:
            name = t(lang, "all_target")
            lines.append(f"• {esc(name)} ({severity}+)")
            data = UnsubCb(kind="a", target="").pack()
        rows.append(
            [InlineKeyboardButton(text=t(lang, "btn_unsubscribe", name=name), callback_data=data)]
        )
    chat = await bot_store.chat(chat_id)
    if chat is not None and chat.muted_until is not None and chat.muted_until > utc_now():
        until = chat.muted_until.astimezone(settings.zone)
        lines.append(t(lang, "my_muted", until=f"{until:%d.%m %H:%M}"))
    mute_row = [
        InlineKeyboardButton(
            text=t(lang, "btn_mute", hours=h), callback_data=MuteCb(hours=h).pack()
        )
        for h in MUTE_HOURS
    ]
    mute_row.append(
        InlineKeyboardButton(text=t(lang, "btn_unmute"), callback_data=MuteCb(hours=0).pack())
    )
    rows.append(mute_row)
    await bot.send_message(
        chat_id, "\n".join(lines), reply_markup=InlineKeyboardMarkup(inline_keyboard=rows)
    )


async def my_command(
    message: Message,
    bot_store: BotStore,
    readings: ReadingStore,
    catalog: CatalogSource,
    alert_store: AlertStore | None,
    settings: Settings,
    lang: str,
) -> None:
    await send_my(
        message.chat.id, bot_store, readings, catalog, alert_store, settings, lang, message
    )


async def my_menu(
    query: CallbackQuery,
    bot_store: BotStore,
    readings: ReadingStore,
    catalog: CatalogSource,
    alert_store: AlertStore | None,
    settings: Settings,
    lang: str,
) -> None:
    await query.answer()
    if query.message is not None:
        await send_my(
            query.message.chat.id, bot_store, readings, catalog, alert_store, settings, lang, query
        )


async def unsubscribe(
    query: CallbackQuery,
    callback_data: UnsubCb,
    bot_store: BotStore,
    catalog: CatalogSource,
    alert_store: AlertStore | None,
    lang: str,
) -> None:
    if query.message is None:
        await query.answer(t(lang, "stale_button"), show_alert=True)
        return
    chat_id = query.message.chat.id
    current = await current_catalog(catalog, alert_store)
    # Match against the chat's own subscriptions, so a gauge removed from the catalog
    # can still be unsubscribed.
    for sub in await bot_store.subscriptions(chat_id):
        if (
            callback_data.kind == "s"
            and sub.station_id
            and short(sub.station_id) == callback_data.target
        ):
            station = current.get(sub.station_id)
            label = station.name(lang) if station else sub.station_id
            removed = await bot_store.unsubscribe(chat_id, station_id=sub.station_id)
            break
        if callback_data.kind == "r" and sub.river and short(sub.river) == callback_data.target:
            label = t(lang, "river_target", river=river_label(current, sub.river, lang))
            removed = await bot_store.unsubscribe(chat_id, river=sub.river)
            break
        if callback_data.kind == "a" and sub.station_id is None and sub.river is None:
            label = t(lang, "all_target")
            removed = await bot_store.unsubscribe(chat_id)
            break
    else:
        removed = False
        label = ""
    if not removed:
        await query.answer(t(lang, "not_subscribed"), show_alert=True)
        return
    await query.answer(t(lang, "unsubscribed", target=label))
    assert query.bot is not None
    await query.bot.send_message(chat_id, t(lang, "unsubscribed", target=esc(label)))


async def mute(
    query: CallbackQuery, callback_data: MuteCb, bot_store: BotStore, settings: Settings, lang: str
) -> None:
    if query.message is None or callback_data.hours not in (0, *MUTE_HOURS):
        await query.answer(t(lang, "stale_button"), show_alert=True)
        return
    chat_id = query.message.chat.id
    assert query.bot is not None
    if callback_data.hours == 0:
        await bot_store.mute(chat_id, None)
        await query.answer()
        await query.bot.send_message(chat_id, t(lang, "unmuted"))
        return
    until = utc_now() + timedelta(hours=callback_data.hours)
    await bot_store.mute(chat_id, until)
    await query.answer()
    local = until.astimezone(settings.zone)
    await query.bot.send_message(chat_id, t(lang, "muted", until=f"{local:%d.%m %H:%M}"))


def make_router() -> Router:
    """A fresh router (a router belongs to one dispatcher), handlers in order."""
    router = Router(name="my")
    router.message(Command("my"))(my_command)
    router.callback_query(MenuCb.filter(F.item == "my"))(my_menu)
    router.callback_query(UnsubCb.filter())(unsubscribe)
    router.callback_query(MuteCb.filter())(mute)
    return router
