"""Build the Bot and the Dispatcher and poll Telegram.

Dependencies reach the handlers by name through the Dispatcher (no globals); see
`telegram_bot.common` for the names. For `floodwatch run --components bot`::

    bot = create_bot(settings)
    dispatcher = build_dispatcher(catalog=..., bot_store=..., readings=..., alert_store=...,
                                  settings=settings)
    await run_polling(bot, dispatcher)          # until cancelled or dispatcher.stop_polling()

or all of it at once with `run_bot(settings, catalog=..., bot_store=..., readings=...,
alert_store=...)`. The delivery side can share the same `Bot` (one HTTP session).
"""

from __future__ import annotations

import logging

from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.types import BotCommand, BotCommandScopeAllGroupChats, BotCommandScopeDefault

from alerts.store import AlertStore
from floodwatch.errors import ConfigError
from floodwatch.settings import Settings
from floodwatch.storage.base import ReadingStore
from telegram_bot.common import CatalogSource, LanguageMiddleware
from telegram_bot.routers import admin, fallback, groups, my, start, status, subscribe
from telegram_bot.store import BotStore
from telegram_bot.texts import LANGUAGES
from telegram_bot.update_errors import UpdateErrors

log = logging.getLogger(__name__)

POLLING_TIMEOUT_S = 10

COMMANDS = {
    "en": {
        "start": "Welcome and menu",
        "my": "My subscriptions",
        "status": "Level, forecast and chart of a gauge",
        "rivers": "Subscribe by river",
        "language": "Change the language",
        "help": "What I can do",
    },
    "ru": {
        "start": "Приветствие и меню",
        "my": "Мои подписки",
        "status": "Уровень, прогноз и график поста",
        "rivers": "Подписка по реке",
        "language": "Сменить язык",
        "help": "Что я умею",
    },
}
GROUP_COMMANDS = {
    "en": {
        "subscribe_all": "Subscribe this group to all gauges [severity]",
        "subscribe_river": "Subscribe this group to a river: NAME [severity]",
        "my": "This group's subscriptions",
        "status": "Level, forecast and chart of a gauge",
    },
    "ru": {
        "subscribe_all": "Подписать группу на все посты [уровень]",
        "subscribe_river": "Подписать группу на реку: РЕКА [уровень]",
        "my": "Подписки группы",
        "status": "Уровень, прогноз и график поста",
    },
}


def create_bot(settings: Settings, *, session: AiohttpSession | None = None) -> Bot:
    """A Bot for FLOODWATCH_TELEGRAM_TOKEN, talking to FLOODWATCH_TELEGRAM_API_URL if set."""
    if settings.telegram_token is None:
        raise ConfigError("FLOODWATCH_TELEGRAM_TOKEN is not set")
    if session is None:
        api = (
            TelegramAPIServer.from_base(settings.telegram_api_url)
            if settings.telegram_api_url
            else None
        )
        session = AiohttpSession(api=api) if api is not None else AiohttpSession()
    return Bot(
        settings.telegram_token.get_secret_value(),
        session=session,
        default=DefaultBotProperties(parse_mode=ParseMode.HTML, link_preview_is_disabled=True),
    )


def build_dispatcher(
    *,
    catalog: CatalogSource,
    bot_store: BotStore,
    readings: ReadingStore,
    settings: Settings,
    alert_store: AlertStore | None = None,
    update_errors: UpdateErrors | None = None,
) -> Dispatcher:
    """A Dispatcher with every feature's router and the dependencies handlers ask for."""
    dispatcher = Dispatcher(
        catalog=catalog,
        bot_store=bot_store,
        readings=readings,
        alert_store=alert_store,
        settings=settings,
        update_errors=update_errors or UpdateErrors(),
    )
    for observer in (dispatcher.message, dispatcher.edited_message, dispatcher.callback_query):
        observer.outer_middleware(LanguageMiddleware())
    dispatcher.include_routers(
        start.make_router(),
        admin.make_router(),
        groups.make_router(),
        my.make_router(),
        status.make_router(),
        subscribe.make_router(),
        fallback.make_router(),  # last: takes whatever the others did not
    )
    return dispatcher


async def set_commands(bot: Bot) -> None:
    """The command menus Telegram shows, per language, for private chats and groups."""
    for lang in LANGUAGES:
        code = None if lang == "en" else lang
        await bot.set_my_commands(
            [BotCommand(command=c, description=d) for c, d in COMMANDS[lang].items()],
            scope=BotCommandScopeDefault(),
            language_code=code,
        )
        await bot.set_my_commands(
            [BotCommand(command=c, description=d) for c, d in GROUP_COMMANDS[lang].items()],
            scope=BotCommandScopeAllGroupChats(),
            language_code=code,
        )


async def run_polling(bot: Bot, dispatcher: Dispatcher) -> None:
    """Poll until cancelled or `dispatcher.stop_polling()`; the bot's session stays open
    (its owner closes it)."""
    try:
        await set_commands(bot)
    except Exception:  # a menu is a nicety; the bot works without it
        log.exception("could not set the bot's command menu")
    await dispatcher.start_polling(
        bot,
        polling_timeout=POLLING_TIMEOUT_S,
        handle_signals=False,
        close_bot_session=False,
    )


async def run_bot(
    settings: Settings,
    *,
    catalog: CatalogSource,
    bot_store: BotStore,
    readings: ReadingStore,
    alert_store: AlertStore | None = None,
    bot: Bot | None = None,
) -> None:
    """The conversation half of the bot, until cancelled. `bot`: share one with delivery."""
    own = bot is None
    bot = bot or create_bot(settings)
    dispatcher = build_dispatcher(
        catalog=catalog,
        bot_store=bot_store,
        readings=readings,
        settings=settings,
        alert_store=alert_store,
    )
    try:
        await run_polling(bot, dispatcher)
    finally:
        if own:
            await bot.session.close()
