"""Dispatch groups: subscribe a group to everything or a river; bot admins mark dispatch chats."""

from __future__ import annotations

import logging

from aiogram import F, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import Message

from alerts.store import AlertStore
from floodwatch.settings import Settings
from telegram_bot.common import (
    CatalogSource,
    admin_or_refuse,
    current_catalog,
    esc,
    find_river,
    river_label,
)
from telegram_bot.store import SEVERITIES, BotStore
from telegram_bot.texts import t

log = logging.getLogger(__name__)

GROUP_KINDS = ("group", "supergroup")


def _split_severity(args: str) -> tuple[str, str | None]:
    """("Rhine danger") → ("Rhine", "danger"); a last word that is no severity stays."""
    words = args.split()
    if words and words[-1].lower() in SEVERITIES:
        return " ".join(words[:-1]), words[-1].lower()
    return args.strip(), None


async def subscribe_all(
    message: Message, command: CommandObject, bot_store: BotStore, lang: str
) -> None:
    if message.chat.type not in GROUP_KINDS:
        await message.answer(t(lang, "group_only"))
        return
    args = (command.args or "").strip().lower()
    severity = args or "warning"
    if severity not in SEVERITIES:
        await message.answer(t(lang, "bad_severity"))
        return
    await bot_store.subscribe(message.chat.id, min_severity=severity)
    await message.answer(
        t(lang, "severity_set", target=t(lang, "all_target"), severity=t(lang, f"sev_{severity}"))
    )


async def subscribe_river(
    message: Message,
    command: CommandObject,
    bot_store: BotStore,
    catalog: CatalogSource,
    alert_store: AlertStore | None,
    lang: str,
) -> None:
    if message.chat.type not in GROUP_KINDS:
        await message.answer(t(lang, "group_only"))
        return
    name, severity = _split_severity(command.args or "")
    if not name:
        await message.answer(t(lang, "group_usage_river"))
        return
    current = await current_catalog(catalog, alert_store)
    river = find_river(current, name)
    if river is None:
        await message.answer(t(lang, "unknown_river", name=esc(name[:100])))
        return
    severity = severity or "warning"
    await bot_store.subscribe(message.chat.id, river=river, min_severity=severity)
    target = t(lang, "river_target", river=river_label(current, river, lang))
    await message.answer(
        t(lang, "severity_set", target=esc(target), severity=t(lang, f"sev_{severity}"))
    )


async def dispatch(
    message: Message, command: CommandObject, bot_store: BotStore, settings: Settings, lang: str
) -> None:
    if not await admin_or_refuse(message, settings, lang):
        return
    user_id = message.from_user.id if message.from_user else None
    arg = (command.args or "").strip().lower()
    if arg not in ("on", "off"):
        await message.answer(t(lang, "dispatch_usage"))
        return
    await bot_store.set_dispatch(message.chat.id, arg == "on")
    log.info("user %s set dispatch %s for chat %s", user_id, arg, message.chat.id)
    await message.answer(t(lang, "dispatch_on" if arg == "on" else "dispatch_off"))


async def migrated(message: Message, bot_store: BotStore) -> None:
    """The group became a supergroup: Telegram gave it a new id; its subscriptions and
    pending alerts follow (the service message arrives in the old group)."""
    new_id = message.migrate_to_chat_id
    if new_id is None:
        return
    log.info("group %s became supergroup %s", message.chat.id, new_id)
    await bot_store.migrate_chat(message.chat.id, new_id)


def make_router() -> Router:
    """A fresh router (a router belongs to one dispatcher), handlers in order."""
    router = Router(name="groups")
    router.message(F.migrate_to_chat_id)(migrated)
    router.message(Command("subscribe_all"))(subscribe_all)
    router.message(Command("subscribe_river"))(subscribe_river)
    router.message(Command("dispatch"))(dispatch)
    return router
