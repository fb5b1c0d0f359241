"""`floodwatch thresholds ...` and `floodwatch maintenance ...`: hydrologists' edits from a
shell, through the same `apply_changes` the bot uses. A running engine picks them up within
FLOODWATCH_CATALOG_POLL_S and re-evaluates the gauge at once."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC
from typing import Any

from alerts.store import AlertStore, AuditEntry
from alerts.thresholds import apply_changes, level_field, with_overrides
from floodwatch.catalog import Catalog, Station, load_catalog
from floodwatch.errors import ConfigError
from floodwatch.settings import Settings


def parse_assignment(text: str) -> tuple[str, str, str]:
    """`STATION.KEY=VALUE` → (station, field, value); `STATION.margin=V` is the margin."""
    target, sep, value = text.partition("=")
    station_id, dot, key = target.partition(".")
    if not sep or not dot or not station_id or not key or not value:
        raise ConfigError(f"{text!r}: expected STATION.KEY=VALUE, e.g. rhein-mainz.mark-i=480")
    return station_id, _field(key), value


def _field(key: str) -> str:
    named = {"margin": "clear_margin", "clear_margin": "clear_margin", "maintenance": "maintenance"}
    return named.get(key, level_field(key))


async def set_values(settings: Settings, assignments: Sequence[str], by: str) -> int:
    changes: dict[str, dict[str, object]] = {}
    for text in assignments:
        station_id, field, value = parse_assignment(text)
        changes.setdefault(station_id, {})[field] = value
    return await _change(settings, changes, by)


async def set_one(settings: Settings, station_id: str, field: str, value: object, by: str) -> int:
    return await _change(settings, {station_id: {field: value}}, by)


async def reset(settings: Settings, station_id: str, keys: Sequence[str], by: str) -> int:
    """Back to the catalog file's values: the named fields, or every override."""
    async with _store(settings, create=False) as store:
        overridden = (await store.overrides()).get(station_id, {}) if store else {}
    fields = [_field(key) for key in keys] or sorted(_overridden(overridden))
    if not fields:
        print(f"{station_id}: nothing overridden")
        return 0
    return await _change(settings, {station_id: dict.fromkeys(fields)}, by)


async def _change(settings: Settings, changes: dict[str, dict[str, object]], by: str) -> int:
    catalog = load_catalog(settings.stations)
    for station_id in changes:
        _station(catalog, station_id)  # before the state file is created for nothing
    async with _store(settings, create=True) as store:
        assert store is not None
        for station_id, fields in changes.items():
            for entry in await apply_changes(store, catalog, station_id, fields, by):
                shown = entry.new if entry.new is not None else "catalog value"
                print(f"{station_id} {entry.field}: {entry.old} -> {shown} (by {by})")
    return 0


async def show(settings: Settings, station_id: str) -> int:
    catalog = load_catalog(settings.stations)
    station = _station(catalog, station_id)
    async with _store(settings, create=False) as store:
        overrides = (await store.overrides()).get(station_id, {}) if store else {}
        audit = await store.audit(station_id, limit=1000) if store else []
    effective = with_overrides(station, overrides) if overrides else station
    changed = _last_changes(audit, _overridden(overrides))
    print("\n".join(describe(station, effective, changed, settings.timezone)))
    return 0


def describe(
    station: Station, effective: Station, changed: dict[str, AuditEntry], default_zone: str
) -> list[str]:
    zone = station.timezone or f"{default_zone} (default)"
    river = next(iter(station.river.values()))
    lines = [f"{station.id}: {station.name()} ({river}), unit {station.unit}, time zone {zone}"]
    rows = [("level", "short", "severity", "catalog", "in force", "changed")]
    for rung, now in zip(station.levels, effective.levels, strict=True):
        rows.append(
            (
                rung.key,
                rung.short,
                rung.severity,
                _num(rung.value),
                _num(now.value),
                _who(changed.get(level_field(rung.key))),
            )
        )
    lines += [f"  {line}" for line in _table(rows)] if station.levels else ["  no levels"]
    margin_note = _who(changed.get("clear_margin"))
    lines.append(
        f"  clear margin: {_num(effective.clear_margin)} (catalog {_num(station.clear_margin)})"
        + (f", {margin_note}" if margin_note else "")
    )
    maintenance = "on" if effective.maintenance else "off"
    maintenance_note = _who(changed.get("maintenance"))
    lines.append(
        f"  maintenance: {maintenance}" + (f", {maintenance_note}" if maintenance_note else "")
    )
    return lines


async def audit(settings: Settings, station_id: str | None, limit: int) -> int:
    async with _store(settings, create=False) as store:
        entries = await store.audit(station_id, limit) if store else []
    if not entries:
        print("no threshold changes recorded" + (f" for {station_id}" if station_id else ""))
        return 0
    rows = [("when (UTC)", "by", "station", "field", "old", "new")]
    for entry in entries:
        when = entry.at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
        new = entry.new if entry.new is not None else "(catalog)"
        rows.append((when, entry.by, entry.station_id, entry.field, entry.old or "", new))
    print("\n".join(_table(rows)))
    return 0


def _station(catalog: Catalog, station_id: str) -> Station:
    station = catalog.get(station_id)
    if station is None:
        raise ConfigError(f"unknown station {station_id!r}")
    return station


def _overridden(overrides: Mapping[str, Any]) -> set[str]:
    fields = {level_field(key) for key in overrides.get("levels", {})}
    return fields | {name for name in ("clear_margin", "maintenance") if name in overrides}


def _last_changes(entries: Sequence[AuditEntry], fields: set[str]) -> dict[str, AuditEntry]:
    """The newest change of each field that is overridden now."""
    newest: dict[str, AuditEntry] = {}
    for entry in entries:  # newest first
        if entry.field in fields:
            newest.setdefault(entry.field, entry)
    return newest


def _who(entry: AuditEntry | None) -> str:
    if entry is None:
        return ""
    return f"by {entry.by} {entry.at.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _table(rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


@contextlib.asynccontextmanager
async def _store(settings: Settings, *, create: bool) -> AsyncIterator[AlertStore | None]:
    """The alert store for one command; None (with create=False) when the state file does
    not exist yet, so a look never creates it."""
    if not create and not settings.state_path.exists():
        yield None
        return
    store = AlertStore(settings.state_path)
    await store.open()
    try:
        yield store
    finally:
        await store.close()
