"""Settling a send whose answer was lost (a crash, a timeout), without sending it twice.

Before each send the sender records in the delivery row the chat's *floor*: the highest
message id it had seen in that chat's id space (`telegram_bot.message_ids`). The row keeps
it until Telegram's answer is recorded. A row found pending with a floor is *in doubt*:
its message may or may not have gone out.

To find out, the bot asks Telegram to edit each id just above the floor, in that chat,
into the very same text. Telegram answers "message is not modified" only when that chat
has a message with that id, sent by the bot, with exactly that text and no buttons: the
alert itself, delivered. Any other refusal ("message to edit not found": an id of another
chat or not used yet; "message can't be edited": a resident's own message) rules that id
out. After `PROBE_SPAN` ids without the alert, it was not delivered and is sent.

Why this is enough: one message per chat is in flight at a time, so only sends that began
after the floor was taken (other chats' alerts, at most a few dozen at the global rate,
and replies in conversations) can sit between the floor and the alert. If more did, the
alert is sent again: the fallback is a repeat, never a loss. The one imperfect case: an id
above the floor that is another bot message *of the same chat* whose answer was lost in the
same crash would be edited into the alert's text; the resident then has the alert (as an
edited message) and it is not sent again. Counted and logged as `overwrote`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest, TelegramRetryAfter

log = logging.getLogger(__name__)

# Ids looked at above the floor: in-flight sends (8) plus what the global rate and
# conversations can add while one send is on its way, with room to spare.
PROBE_SPAN = 40
NOT_MODIFIED = "message is not modified"


@dataclass(frozen=True, slots=True)
class Settled:
    """The outcome: `message_id` of the delivered alert, or None (not delivered)."""

    message_id: int | None
    outcome: str  # delivered | overwrote | not_found | no_floor


async def settle(
    bot: Bot,
    chat_id: int,
    text: str,
    floor: int,
    *,
    before_call: Callable[[], Awaitable[None]],
    pause: Callable[[float], None],
    span: int = PROBE_SPAN,
) -> Settled:
    """Whether the alert `text` reached `chat_id` (see the module docstring).

    `floor` < 0 means none was known when the send began: nothing can be looked up and
    the message is sent again. `before_call` waits for a slot of the global rate limit;
    `pause(seconds)` honours a 429's retry_after for all sending, as for any other call.
    Network errors propagate (the row stays in doubt and is settled on the next try).
    """
    if floor < 0:
        return Settled(None, "no_floor")
    for message_id in range(floor + 1, floor + 1 + span):
        found = await _probe(bot, chat_id, message_id, text, before_call, pause)
        if found is not None:
            return Settled(message_id, found)
    return Settled(None, "not_found")


async def _probe(
    bot: Bot,
    chat_id: int,
    message_id: int,
    text: str,
    before_call: Callable[[], Awaitable[None]],
    pause: Callable[[float], None],
) -> str | None:
    while True:
        await before_call()
        try:
            await bot.edit_message_text(
                text=text, chat_id=chat_id, message_id=message_id, parse_mode="HTML"
            )
        except TelegramRetryAfter as exc:
            pause(exc.retry_after)  # `before_call` then waits it out
            continue
        except TelegramBadRequest as exc:
            return "delivered" if NOT_MODIFIED in exc.message.lower() else None
        log.warning(
            "settling a lost send to chat %d edited message %d into the alert's text",
            chat_id,
            message_id,
        )
        return "overwrote"
