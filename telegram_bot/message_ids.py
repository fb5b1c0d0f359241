"""The highest Telegram message id seen, so a send cut off by a crash can be looked up.

Telegram has no idempotency key: if the bot dies after Telegram accepted a message and
before the bot recorded it, the bot cannot tell whether the message went out. What it can
do is remember, before each send, the highest message id it has seen in the chat's id
space (the *floor*); the message, if it was sent, has an id just above it. After the
restart `telegram_bot.in_doubt` asks Telegram about those few ids (see there).

Id spaces (MTProto, as the Bot API exposes them): supergroups and channels number their
messages per chat; private chats and basic groups share the bot's own message box, one
sequence across all of them. Ids are collected from every answer of the bot's HTTP
session (`FloorMiddleware`, so conversation replies count too) and from every update the
bot receives (`UpdateFloorMiddleware`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, cast

from aiogram import BaseMiddleware
from aiogram.client.session.middlewares.base import (
    BaseRequestMiddleware,
    NextRequestMiddlewareType,
)
from aiogram.methods.base import TelegramType
from aiogram.types import Message, TelegramObject, Update

if TYPE_CHECKING:
    from aiogram import Bot
    from aiogram.methods import Response, TelegramMethod

# Ids of supergroups and channels start at -100xxxxxxxxxx in the Bot API.
CHANNEL_ID_BELOW = -1_000_000_000_000
BOX = 0  # the key of the bot's own message box (no chat has id 0)


def id_space(chat_id: int) -> int:
    """The key of the sequence a chat's message ids come from."""
    return chat_id if chat_id <= CHANNEL_ID_BELOW else BOX


class MessageIdFloor:
    def __init__(self) -> None:
        self._highest: dict[int, int] = {}

    def seen(self, chat_id: int, message_id: int) -> None:
        space = id_space(chat_id)
        if message_id > self._highest.get(space, 0):
            self._highest[space] = message_id

    def seen_message(self, message: Message) -> None:
        self.seen(message.chat.id, message.message_id)

    def floor(self, chat_id: int) -> int | None:
        """The highest id seen in the chat's space; None: nothing known yet."""
        return self._highest.get(id_space(chat_id))

    def load(self, highest: dict[int, int]) -> None:
        """Start from what the store recorded (`BotStore.message_id_floors`)."""
        for space, message_id in highest.items():
            if message_id > self._highest.get(space, 0):
                self._highest[space] = message_id


class FloorMiddleware(BaseRequestMiddleware):
    """Every message the bot sends, whatever sent it, raises the floor."""

    def __init__(self, floor: MessageIdFloor) -> None:
        self.floor = floor

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        # The chain hands back the method's result itself (a Message for sends), though
        # aiogram's protocol is typed as a Response.
        result: Any = await make_request(bot, method)
        if isinstance(result, Message):
            self.floor.seen_message(result)
        return cast("Response[TelegramType]", result)


class UpdateFloorMiddleware(BaseMiddleware):
    """Every message the bot receives raises the floor too (users' messages take ids)."""

    def __init__(self, floor: MessageIdFloor) -> None:
        self.floor = floor

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        if isinstance(event, Update):
            for message in (event.message, event.edited_message, event.channel_post):
                if message is not None:
                    self.floor.seen_message(message)
        return await handler(event, data)
