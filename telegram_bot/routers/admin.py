"""Hydrologists' commands (ids in FLOODWATCH_TELEGRAM_ADMINS): thresholds, clear margin,
maintenance, audit trail, the latest backtest. Changes go through the alert engine's
audited path (`alerts.thresholds.apply_changes`, by `telegram:<user id>`); everyone else
gets a polite refusal, logged with their id."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import BufferedInputFile, Message

from alerts.store import AlertStore
from alerts.thresholds import apply_changes, level_field
from floodwatch.catalog import Station
from floodwatch.errors import ConfigError
from floodwatch.settings import Settings
from telegram_bot.backtest_digest import digest, plots_to_show
from telegram_bot.common import (
    AdminOnly,
    CatalogSource,
    current_catalog,
    esc,
    file_catalog,
    fmt_level,
    resolve_gauge,
)
from telegram_bot.texts import t

log = logging.getLogger(__name__)

MAX_REPLY = 3900
RESET_WORDS = ("reset", "-", "default")


def ladder_text(station: Station, lang: str) -> str:
    lines = [t(lang, "ladder", name=esc(station.name(lang)), id=station.id, unit=station.unit)]
    for rung in station.levels:
        lines.append(
            f"  <code>{rung.key}</code> {esc(rung.short)} {fmt_level(rung.value, station.unit)}"
            f" ({rung.severity})"
        )
    if not station.levels:
        lines.append(t(lang, "status_no_thresholds"))
    lines.append(t(lang, "ladder_margin", margin=f"{station.clear_margin:g}", unit=station.unit))
    lines.append(t(lang, "ladder_maintenance", state="on" if station.maintenance else "off"))
    return "\n".join(lines)


async def _change(
    message: Message,
    catalog: CatalogSource,
    alert_store: AlertStore | None,
    lang: str,
    gauge: str,
    changes: dict[str, object],
) -> None:
    if alert_store is None:
        await message.answer(t(lang, "admin_unavailable"))
        return
    source = file_catalog(catalog)
    station = resolve_gauge(source, gauge)
    if station is None:
        await message.answer(t(lang, "unknown_gauge", query=esc(gauge[:100])))
        return
    user_id = message.from_user.id if message.from_user else 0
    try:
        entries = await apply_changes(
            alert_store, source, station.id, changes, by=f"telegram:{user_id}"
        )
    except ConfigError as exc:
        await message.answer(t(lang, "change_failed", error=esc(str(exc))[:MAX_REPLY]))
        return
    lines = [t(lang, "changed")]
    for entry in entries:
        lines.append(f"  {station.id} {entry.field}: {entry.old} → {entry.new or '(catalog)'}")
    current = await current_catalog(catalog, alert_store)
    lines.append("")
    lines.append(ladder_text(current.get(station.id, station), lang))
    await message.answer("\n".join(lines))


async def thresholds(
    message: Message,
    command: CommandObject,
    catalog: CatalogSource,
    alert_store: AlertStore | None,
    lang: str,
) -> None:
    gauge = (command.args or "").strip()
    if not gauge:
        await message.answer(t(lang, "usage_thresholds"))
        return
    current = await current_catalog(catalog, alert_store)
    station = resolve_gauge(current, gauge)
    if station is None:
        await message.answer(t(lang, "unknown_gauge", query=esc(gauge[:100])))
        return
    await message.answer(ladder_text(station, lang))


async def set_level(
    message: Message,
    command: CommandObject,
    catalog: CatalogSource,
    alert_store: AlertStore | None,
    lang: str,
) -> None:
    parts = (command.args or "").split()
    if len(parts) != 3:
        await message.answer(t(lang, "usage_set"))
        return
    gauge, key, value = parts
    if key in ("clear_margin", "margin"):
        field = "clear_margin"
    elif key == "maintenance":
        field = "maintenance"
    else:
        field = key if key.startswith("levels.") else level_field(key)
    new: object = None if value.lower() in RESET_WORDS else value
    await _change(message, catalog, alert_store, lang, gauge, {field: new})


async def margin(
    message: Message,
    command: CommandObject,
    catalog: CatalogSource,
    alert_store: AlertStore | None,
    lang: str,
) -> None:
    parts = (command.args or "").split()
    if len(parts) != 2:
        await message.answer(t(lang, "usage_margin"))
        return
    new: object = None if parts[1].lower() in RESET_WORDS else parts[1]
    await _change(message, catalog, alert_store, lang, parts[0], {"clear_margin": new})


async def maintenance(
    message: Message,
    command: CommandObject,
    catalog: CatalogSource,
    alert_store: AlertStore | None,
    lang: str,
) -> None:
    parts = (command.args or "").split()
    if len(parts) != 2 or parts[1].lower() not in ("on", "off"):
        await message.answer(t(lang, "usage_maintenance"))
        return
    await _change(message, catalog, alert_store, lang, parts[0], {"maintenance": parts[1].lower()})


async def audit(
    message: Message,
    command: CommandObject,
    catalog: CatalogSource,
    alert_store: AlertStore | None,
    lang: str,
) -> None:
    if alert_store is None:
        await message.answer(t(lang, "admin_unavailable"))
        return
    gauge = (command.args or "").strip()
    station_id = None
    if gauge:
        station = resolve_gauge(file_catalog(catalog), gauge)
        if station is None:
            await message.answer(t(lang, "unknown_gauge", query=esc(gauge[:100])))
            return
        station_id = station.id
    entries = await alert_store.audit(station_id, limit=20)
    if not entries:
        await message.answer(t(lang, "audit_empty"))
        return
    lines = [t(lang, "audit_header")]
    for entry in entries:
        lines.append(
            f"{entry.at:%Y-%m-%d %H:%M} {esc(entry.by)} {entry.station_id} {entry.field}: "
            f"{esc(entry.old)} → {esc(entry.new or '(catalog)')}"
        )
    await message.answer("\n".join(lines)[:MAX_REPLY])


def latest_summary(folder: Path) -> Path | None:
    found = [p for p in folder.rglob("summary.json") if p.is_file()]
    return max(found, key=lambda p: p.stat().st_mtime) if found else None


def load_latest(folder: Path) -> tuple[Path, Any] | None:
    """The newest summary.json under `folder` and its content (None: no folder, no file)."""
    if not folder.is_dir():
        return None
    path = latest_summary(folder)
    if path is None:
        return None
    return path, json.loads(path.read_text(encoding="utf-8"))


async def backtest(message: Message, settings: Settings, lang: str) -> None:
    try:
        found = await asyncio.to_thread(load_latest, settings.backtest_dir)
    except (OSError, ValueError) as exc:
        await message.answer(t(lang, "change_failed", error=esc(str(exc))[:MAX_REPLY]))
        return
    if found is None:
        await message.answer(t(lang, "backtest_none"))
        return
    path, data = found
    await message.answer(digest(data, path.parent.name, lang))
    for plot in plots_to_show(data, path.parent):
        photo = await asyncio.to_thread(plot.read_bytes)
        await message.answer_photo(BufferedInputFile(photo, plot.name), caption=esc(plot.stem))


def make_router() -> Router:
    """A fresh router (a router belongs to one dispatcher), handlers in order."""
    router = Router(name="admin")
    router.message.middleware(AdminOnly())  # every command here is for hydrologists only
    router.message(Command("thresholds"))(thresholds)
    router.message(Command("set"))(set_level)
    router.message(Command("margin"))(margin)
    router.message(Command("maintenance"))(maintenance)
    router.message(Command("audit"))(audit)
    router.message(Command("backtest"))(backtest)
    return router
