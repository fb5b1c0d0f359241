"""Subscribing: by shared location (nearest gauges), by river → gauge, by searching a name;
then the lowest severity to hear about."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message

from alerts.store import AlertStore
from telegram_bot.common import (
    MAX_BUTTONS,
    MAX_QUERY,
    CatalogSource,
    GaugeCb,
    MenuCb,
    RiverCb,
    SeverityCb,
    by_short,
    current_catalog,
    esc,
    find_river,
    gauge_buttons,
    nearest,
    river_by_short,
    river_label,
    rivers,
    search,
    severity_buttons,
    short,
)
from telegram_bot.store import SEVERITIES, BotStore
from telegram_bot.texts import t

DEFAULT_SEVERITY = "warning"


def rivers_keyboard(catalog_rivers: dict[str, str]) -> InlineKeyboardMarkup:
    rows = [
        [InlineKeyboardButton(text=label, callback_data=RiverCb(river=short(river)).pack())]
        for river, label in sorted(catalog_rivers.items(), key=lambda item: item[1])
    ]
    return InlineKeyboardMarkup(inline_keyboard=rows)


async def send_rivers(
    chat_id: int,
    message_or_query: Message | CallbackQuery,
    catalog: CatalogSource,
    alert_store: AlertStore | None,
    lang: str,
) -> None:
    current = await current_catalog(catalog, alert_store)
    labels = {river: river_label(current, river, lang) for river in rivers(current)}
    bot = message_or_query.bot
    assert bot is not None
    if not labels:
        await bot.send_message(chat_id, t(lang, "no_gauges"))
        return
    await bot.send_message(chat_id, t(lang, "choose_river"), reply_markup=rivers_keyboard(labels))


async def rivers_command(
    message: Message, catalog: CatalogSource, alert_store: AlertStore | None, lang: str
) -> None:
    await send_rivers(message.chat.id, message, catalog, alert_store, lang)


async def rivers_menu(
    query: CallbackQuery, catalog: CatalogSource, alert_store: AlertStore | None, lang: str
) -> None:
    await query.answer()
    if query.message is not None:
        await send_rivers(query.message.chat.id, query, catalog, alert_store, lang)


async def river_chosen(
    query: CallbackQuery,
    callback_data: RiverCb,
    catalog: CatalogSource,
    alert_store: AlertStore | None,
    lang: str,
) -> None:
    current = await current_catalog(catalog, alert_store)
    river = river_by_short(current, callback_data.river)
    if river is None or query.message is None:
        await query.answer(t(lang, "stale_button"), show_alert=True)
        return
    await query.answer()
    stations = rivers(current)[river]
    rows = gauge_buttons(stations, lang)
    # The whole river is one more choice: every gauge on it, now and added later.
    rows.append(
        [
            InlineKeyboardButton(
                text="🌊 " + t(lang, "river_target", river=river_label(current, river, lang)),
                callback_data=SeverityCb(kind="r", target=short(river), severity="").pack(),
            )
        ]
    )
    assert query.bot is not None
    await query.bot.send_message(
        query.message.chat.id,
        t(lang, "choose_gauge", river=esc(river_label(current, river, lang))),
        reply_markup=InlineKeyboardMarkup(inline_keyboard=rows),
    )


async def location_shared(
    message: Message, catalog: CatalogSource, alert_store: AlertStore | None, lang: str
) -> None:
    location = message.location
    assert location is not None
    lat, lon = location.latitude, location.longitude
    if not (-90 <= lat <= 90 and -180 <= lon <= 180) or (lat == 0 and lon == 0):
        await message.answer(t(lang, "bad_location"))
        return
    current = await current_catalog(catalog, alert_store)
    found = nearest(current, lat, lon)
    if not found:
        await message.answer(t(lang, "no_gauges"))
        return
    labels = {
        station.id: f"{station.name(lang)} — {distance:.1f} km"
        if lang != "ru"
        else f"{station.name(lang)} — {distance:.1f} км"
        for station, distance in found
    }
    rows = gauge_buttons([s for s, _ in found], lang, labels=labels)
    await message.answer(
        t(lang, "nearest"), reply_markup=InlineKeyboardMarkup(inline_keyboard=rows)
    )


async def gauge_chosen(
    query: CallbackQuery,
    callback_data: GaugeCb,
    catalog: CatalogSource,
    alert_store: AlertStore | None,
    bot_store: BotStore,
    lang: str,
) -> None:
    current = await current_catalog(catalog, alert_store)
    station = by_short(current, callback_data.gauge)
    if station is None or query.message is None:
        await query.answer(t(lang, "stale_button"), show_alert=True)
        return
    chat_id = query.message.chat.id
    await bot_store.subscribe(chat_id, station_id=station.id, min_severity=DEFAULT_SEVERITY)
    await query.answer()
    assert query.bot is not None
    await query.bot.send_message(
        chat_id,
        t(
            lang,
            "subscribed",
            target=f"<b>{esc(station.name(lang))}</b>",
            severity=t(lang, f"sev_{DEFAULT_SEVERITY}"),
        ),
        reply_markup=InlineKeyboardMarkup(
            inline_keyboard=severity_buttons("s", short(station.id), lang)
        ),
    )


async def severity_chosen(
    query: CallbackQuery,
    callback_data: SeverityCb,
    catalog: CatalogSource,
    alert_store: AlertStore | None,
    bot_store: BotStore,
    lang: str,
) -> None:
    if query.message is None or callback_data.kind not in ("s", "r", "a"):
        await query.answer(t(lang, "stale_button"), show_alert=True)
        return
    current = await current_catalog(catalog, alert_store)
    chat_id = query.message.chat.id
    station_id = river = None
    if callback_data.kind == "s":
        station = by_short(current, callback_data.target)
        station_id = station.id if station else None
        label = station.name(lang) if station else ""
    elif callback_data.kind == "r":
        river = river_by_short(current, callback_data.target)
        label = t(lang, "river_target", river=river_label(current, river, lang)) if river else ""
    else:
        label = t(lang, "all_target")
    if (callback_data.kind == "s" and station_id is None) or (
        callback_data.kind == "r" and river is None
    ):
        await query.answer(t(lang, "stale_button"), show_alert=True)
        return
    assert query.bot is not None
    if callback_data.severity == "":  # a river chosen as a whole: subscribe, then ask
        await bot_store.subscribe(chat_id, river=river, min_severity=DEFAULT_SEVERITY)
        await query.answer()
        await query.bot.send_message(
            chat_id,
            t(lang, "subscribed", target=esc(label), severity=t(lang, f"sev_{DEFAULT_SEVERITY}")),
            reply_markup=InlineKeyboardMarkup(
                inline_keyboard=severity_buttons(callback_data.kind, callback_data.target, lang)
            ),
        )
        return
    if callback_data.severity not in SEVERITIES:
        await query.answer(t(lang, "stale_button"), show_alert=True)
        return
    await bot_store.subscribe(
        chat_id, station_id=station_id, river=river, min_severity=callback_data.severity
    )
    await query.answer()
    await query.bot.send_message(
        chat_id,
        t(
            lang,
            "severity_set",
            target=esc(label),
            severity=t(lang, f"sev_{callback_data.severity}"),
        ),
    )


async def search_text(
    message: Message, catalog: CatalogSource, alert_store: AlertStore | None, lang: str
) -> None:
    text = message.text or ""
    if len(text) > MAX_QUERY:
        await message.answer(t(lang, "too_long"))
        return
    current = await current_catalog(catalog, alert_store)
    found = search(current, text)
    river = find_river(current, text)
    rows = gauge_buttons(found[:MAX_BUTTONS], lang)
    if river is not None:
        rows.append(
            [
                InlineKeyboardButton(
                    text="🌊 " + t(lang, "river_target", river=river_label(current, river, lang)),
                    callback_data=SeverityCb(kind="r", target=short(river), severity="").pack(),
                )
            ]
        )
    if not rows:
        await message.answer(t(lang, "not_found", query=esc(text)))
        return
    await message.answer(t(lang, "found"), reply_markup=InlineKeyboardMarkup(inline_keyboard=rows))


def make_router() -> Router:
    """A fresh router (a router belongs to one dispatcher), handlers in order."""
    router = Router(name="subscribe")
    router.message(Command("rivers"))(rivers_command)
    router.callback_query(MenuCb.filter(F.item == "rivers"))(rivers_menu)
    router.callback_query(RiverCb.filter())(river_chosen)
    router.message(F.location)(location_shared)
    router.callback_query(GaugeCb.filter(F.action == "sub"))(gauge_chosen)
    router.callback_query(SeverityCb.filter())(severity_chosen)
    router.message(F.text, ~F.text.startswith("/"), F.chat.type == "private")(search_text)
    return router
