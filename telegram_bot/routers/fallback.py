"""The last router: whatever no feature took gets a short helpful answer, and any error in a
handler is logged and answered, never left as a silent failure."""

from __future__ import annotations

import logging

from aiogram import Bot, F, Router
from aiogram.types import CallbackQuery, ErrorEvent, Message

from telegram_bot.texts import language_of, t
from telegram_bot.update_errors import UpdateErrors

log = logging.getLogger(__name__)


def addressee(text: str) -> str | None:
    """The bot a command names (`/status@some_bot` → `some_bot`), None if it names none."""
    command = text.split(maxsplit=1)[0]
    _, at, name = command.partition("@")
    return name.lower() if at else None


async def unknown_command(message: Message, bot: Bot, lang: str) -> None:
    name = addressee(message.text or "")
    if name is not None and name != ((await bot.me()).username or "").lower():
        return  # a command for another bot in the same group
    await message.answer(t(lang, "unknown_command"))


async def unsupported(message: Message, lang: str) -> None:
    if message.chat.type != "private":
        return  # group chatter that is no command is none of the bot's business
    await message.answer(t(lang, "unsupported"))


async def edited(message: Message, lang: str) -> None:
    if message.chat.type == "private":
        await message.answer(t(lang, "edited"))


async def stale_callback(query: CallbackQuery, lang: str) -> None:
    log.info(
        "stale or unknown callback data %r from user %s",
        (query.data or "")[:64],
        query.from_user.id,
    )
    await query.answer(t(lang, "stale_button"), show_alert=True)


async def on_error(event: ErrorEvent, update_errors: UpdateErrors) -> bool:
    update = event.update
    update_errors.record(update, event.exception)
    try:
        if update.callback_query is not None:
            query = update.callback_query
            await query.answer(
                t(language_of(query.from_user.language_code), "error"), show_alert=True
            )
        elif update.message is not None:
            message = update.message
            lang = language_of(message.from_user.language_code if message.from_user else None)
            await message.answer(t(lang, "error"))
    except Exception:  # the answer itself failed (Telegram down, chat blocked): logged only
        log.exception("could not tell the user about the error")
    return True


def make_router() -> Router:
    """A fresh router (a router belongs to one dispatcher), handlers in order."""
    router = Router(name="fallback")
    router.message(F.text.startswith("/"))(unknown_command)
    router.message()(unsupported)
    router.edited_message()(edited)
    router.callback_query()(stale_callback)
    router.errors()(on_error)
    return router
