"""/start, /help, /language and the main menu."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command, CommandStart
from aiogram.types import (
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
)

from telegram_bot.common import LangCb, MenuCb
from telegram_bot.store import BotStore
from telegram_bot.texts import LANGUAGES, t

LANGUAGE_NAMES = {"en": "English", "ru": "Русский"}


def menu(lang: str) -> InlineKeyboardMarkup:
    def button(key: str, item: str) -> InlineKeyboardButton:
        return InlineKeyboardButton(text=t(lang, key), callback_data=MenuCb(item=item).pack())

    return InlineKeyboardMarkup(
        inline_keyboard=[
            [button("btn_rivers", "rivers"), button("btn_search", "search")],
            [button("btn_my", "my"), button("btn_language", "language")],
        ]
    )


def location_keyboard(lang: str) -> ReplyKeyboardMarkup:
    return ReplyKeyboardMarkup(
        keyboard=[[KeyboardButton(text=t(lang, "btn_location"), request_location=True)]],
        resize_keyboard=True,
    )


def language_keyboard() -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(
                    text=LANGUAGE_NAMES[code], callback_data=LangCb(lang=code).pack()
                )
                for code in LANGUAGES
            ]
        ]
    )


async def start(message: Message, lang: str) -> None:
    if message.chat.type == "private":
        await message.answer(t(lang, "welcome"), reply_markup=location_keyboard(lang))
    else:
        await message.answer(t(lang, "welcome"))
    await message.answer(t(lang, "menu"), reply_markup=menu(lang))


async def help_(message: Message, lang: str) -> None:
    await message.answer(t(lang, "help"))


async def language(message: Message, lang: str) -> None:
    await message.answer(t(lang, "choose_language"), reply_markup=language_keyboard())


async def language_chosen(query: CallbackQuery, callback_data: LangCb, bot_store: BotStore) -> None:
    if callback_data.lang not in LANGUAGES or query.message is None:
        await query.answer(t("en", "stale_button"))
        return
    lang = callback_data.lang
    await bot_store.set_language(query.message.chat.id, lang)
    await query.answer()
    await query.bot.send_message(  # type: ignore[union-attr]
        query.message.chat.id, t(lang, "language_set"), reply_markup=menu(lang)
    )


async def menu_language(query: CallbackQuery, lang: str) -> None:
    await query.answer()
    if query.message is not None:
        await query.bot.send_message(  # type: ignore[union-attr]
            query.message.chat.id, t(lang, "choose_language"), reply_markup=language_keyboard()
        )


async def menu_search(query: CallbackQuery, lang: str) -> None:
    await query.answer()
    if query.message is not None:
        await query.bot.send_message(query.message.chat.id, t(lang, "search_prompt"))  # type: ignore[union-attr]


def make_router() -> Router:
    """A fresh router (a router belongs to one dispatcher), handlers in order."""
    router = Router(name="start")
    router.message(CommandStart())(start)
    router.message(Command("help"))(help_)
    router.message(Command("language"))(language)
    router.callback_query(LangCb.filter())(language_chosen)
    router.callback_query(MenuCb.filter(F.item == "language"))(menu_language)
    router.callback_query(MenuCb.filter(F.item == "search"))(menu_search)
    return router
