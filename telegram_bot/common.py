"""What the routers share: callback data factories, gauge lookup, the language middleware.

Dependencies reach handlers by name through the Dispatcher (`Dispatcher(**deps)`):

| name | what |
|---|---|
| `catalog` | the catalog file's `Catalog`, or a zero-argument callable returning the current one |
| `bot_store` | `telegram_bot.store.BotStore` (chats, subscriptions) |
| `readings` | the readings store (`floodwatch.storage.ReadingStore`) |
| `alert_store` | `alerts.store.AlertStore` (threshold overrides and audit trail), or None |
| `settings` | `floodwatch.settings.Settings` |
| `update_errors` | `telegram_bot.update_errors.UpdateErrors` (the error handler records there) |

The language middleware adds `lang` (the chat's language) to every handler's data.
"""

from __future__ import annotations

import hashlib
import html
import logging
import math
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.filters.callback_data import CallbackData
from aiogram.types import CallbackQuery, InlineKeyboardButton, Message, TelegramObject

from alerts.store import AlertStore
from alerts.thresholds import effective_catalog
from floodwatch.catalog import Catalog, Station
from floodwatch.settings import Settings
from telegram_bot.store import SEVERITIES, BotStore
from telegram_bot.texts import language_of, t

log = logging.getLogger(__name__)

CatalogSource = Catalog | Callable[[], Catalog]
MAX_QUERY = 100
MAX_BUTTONS = 12
EARTH_RADIUS_KM = 6371.0088


# --------------------------------------------------------------------- callback data
# Values are short hashes of station ids and river names, so every button stays within
# Telegram's 64-byte callback data whatever the catalog's ids, and a hash that no longer
# resolves (the catalog changed) is answered as a stale button.


class MenuCb(CallbackData, prefix="mn"):
    item: str  # rivers | search | my | language


class LangCb(CallbackData, prefix="lg"):
    lang: str


class RiverCb(CallbackData, prefix="rv"):
    river: str  # short hash of the English river name


class GaugeCb(CallbackData, prefix="ga"):
    action: str  # sub | st (status)
    gauge: str  # short hash of the station id


class SeverityCb(CallbackData, prefix="sv"):
    kind: str  # s station | r river | a all
    target: str  # short hash (empty for all)
    severity: str


class UnsubCb(CallbackData, prefix="un"):
    kind: str
    target: str


class MuteCb(CallbackData, prefix="mu"):
    hours: int  # 0: unmute


def short(value: str) -> str:
    return hashlib.sha1(value.encode(), usedforsecurity=False).hexdigest()[:10]


# --------------------------------------------------------------------- catalog look-ups


def file_catalog(source: CatalogSource) -> Catalog:
    return source if isinstance(source, Catalog) else source()


async def current_catalog(source: CatalogSource, alert_store: AlertStore | None) -> Catalog:
    """The catalog with the hydrologists' overrides in force (as the alert engine sees it)."""
    catalog = file_catalog(source)
    if alert_store is None:
        return catalog
    try:
        overrides = await alert_store.overrides()
    except Exception:  # the overrides are a nicety for display; the file still answers
        log.exception("could not read threshold overrides")
        return catalog
    return effective_catalog(catalog, overrides)[0]


def river_key(station: Station) -> str:
    """The river name subscriptions use: the catalog's English name (else its first)."""
    return station.river.get("en") or next(iter(station.river.values()))


def rivers(catalog: Catalog) -> dict[str, list[Station]]:
    found: dict[str, list[Station]] = {}
    for station in catalog.values():
        found.setdefault(river_key(station), []).append(station)
    return found


def river_label(catalog: Catalog, river: str, lang: str) -> str:
    for station in catalog.values():
        if river_key(station) == river:
            return station.river.get(lang) or river
    return river


def by_short(catalog: Catalog, value: str) -> Station | None:
    for station in catalog.values():
        if short(station.id) == value:
            return station
    return None


def river_by_short(catalog: Catalog, value: str) -> str | None:
    for river in rivers(catalog):
        if short(river) == value:
            return river
    return None


def _norm(text: str) -> str:
    return " ".join(text.casefold().replace("ё", "е").split())


def search(catalog: Catalog, query: str) -> list[Station]:
    """Stations whose id or a name (any language) contains the query; exact matches first."""
    q = _norm(query)
    if not q:
        return []
    exact, partial = [], []
    for station in catalog.values():
        names = [station.id, *station.names.values()]
        normed = [_norm(name) for name in names]
        if q in normed:
            exact.append(station)
        elif any(q in name for name in normed):
            partial.append(station)
    return exact + partial


def find_river(catalog: Catalog, query: str) -> str | None:
    q = _norm(query)
    for river, stations in rivers(catalog).items():
        if any(_norm(name) == q for name in stations[0].river.values()):
            return river
    return None


def resolve_gauge(catalog: Catalog, query: str) -> Station | None:
    """One station for an admin's or /status argument: the id, else a unique name match."""
    if query in catalog:
        return catalog[query]
    matches = search(catalog, query)
    exact = [s for s in matches if _norm(query) in {_norm(n) for n in s.names.values()}]
    if len(exact) == 1:
        return exact[0]
    return matches[0] if len(matches) == 1 else None


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


def nearest(catalog: Catalog, lat: float, lon: float, n: int = 5) -> list[tuple[Station, float]]:
    ranked = [(s, haversine_km(lat, lon, s.lat, s.lon)) for s in catalog.values()]
    ranked.sort(key=lambda pair: pair[1])
    return ranked[:n]


def gauge_buttons(
    stations: Iterable[Station],
    lang: str,
    action: str = "sub",
    labels: dict[str, str] | None = None,
) -> list[list[InlineKeyboardButton]]:
    rows = []
    for station in list(stations)[:MAX_BUTTONS]:
        text = (labels or {}).get(station.id) or station.name(lang)
        data = GaugeCb(action=action, gauge=short(station.id)).pack()
        rows.append([InlineKeyboardButton(text=text, callback_data=data)])
    return rows


def severity_buttons(kind: str, target: str, lang: str) -> list[list[InlineKeyboardButton]]:
    return [
        [
            InlineKeyboardButton(
                text=t(lang, f"btn_sev_{severity}"),
                callback_data=SeverityCb(kind=kind, target=target, severity=severity).pack(),
            )
        ]
        for severity in SEVERITIES
    ]


def esc(text: object) -> str:
    return html.escape(str(text), quote=False)


def fmt_level(value: float, unit: str) -> str:
    number = f"{value:.0f}" if unit == "cm" else f"{value:.2f}"
    return f"{number} {unit}"


# --------------------------------------------------------------------- middleware


class LanguageMiddleware(BaseMiddleware):
    """Registers the chat on first contact (language from the user's Telegram settings)
    and hands handlers `lang`: the chat's chosen language."""

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        message = event.message if isinstance(event, CallbackQuery) else event
        user = getattr(event, "from_user", None)
        lang = language_of(getattr(user, "language_code", None))
        store: BotStore | None = data.get("bot_store")
        if isinstance(message, Message) and store is not None:
            chat = await store.chat(message.chat.id)
            if chat is None or not chat.active:  # first contact, or back after blocking us
                known = chat.language if chat is not None else lang
                chat = await store.upsert_chat(message.chat.id, message.chat.type, known)
            lang = chat.language
        data["lang"] = lang
        return await handler(event, data)


async def admin_or_refuse(message: Message, settings: Settings, lang: str) -> bool:
    """True for FLOODWATCH_TELEGRAM_ADMINS; anyone else gets a polite refusal, logged with
    their user id."""
    user_id = message.from_user.id if message.from_user else None
    if user_id is not None and user_id in settings.telegram_admins:
        return True
    # A command may come as a photo's or a document's caption (aiogram's Command filter
    # reads both); a message with neither has no command word at all.
    words = (message.text or message.caption or "").split(maxsplit=1)
    command = words[0][:40] if words else "(no text)"
    log.warning("refused %s from user %s in chat %s", command, user_id, message.chat.id)
    await message.answer(t(lang, "refused"))
    return False


class AdminOnly(BaseMiddleware):
    """Guards every message handler of a router (register it as the router's inner
    middleware, which runs once a handler's filters matched): admins only."""

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        if isinstance(event, Message) and not await admin_or_refuse(
            event, data["settings"], data["lang"]
        ):
            return None
        return await handler(event, data)
