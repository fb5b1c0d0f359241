"""Hydrologists' threshold edits: overrides on top of the catalog file, with an audit trail.

An edit (from the CLI or the bot) is checked by building the station it would produce with
the catalog's own pydantic model, so an override can never make a ladder the catalog file
itself would refuse. The override and its audit row are stored in one transaction; a
running engine notices the new `changes_version` and re-evaluates the gauge at once.

Fields: `levels.<key>.value` (a rung's value), `clear_margin`, `maintenance` (on/off).
"""

from __future__ import annotations

import getpass
import hashlib
import logging
import math
from collections.abc import Mapping
from typing import Any

import orjson
from pydantic import ValidationError

from alerts.store import AlertStore, AuditEntry
from floodwatch.catalog import Catalog, Station
from floodwatch.errors import ConfigError
from floodwatch.models import utc_now

log = logging.getLogger(__name__)

FIELDS_HELP = "levels.<key>.value, clear_margin or maintenance"


def level_field(key: str) -> str:
    return f"levels.{key}.value"


def default_author() -> str:
    """Who made a CLI change when --by is not given: the OS user."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"


def fingerprint(station: Station) -> str:
    """What the alert state depends on besides maintenance: the ladder and its margin."""
    ladder = {"levels": [(t.key, t.value) for t in station.levels], "margin": station.clear_margin}
    return hashlib.sha256(orjson.dumps(ladder)).hexdigest()[:16]


def with_overrides(station: Station, overrides: Mapping[str, Any]) -> Station:
    """The station as the overrides make it; ConfigError if that is not a valid station.

    An override for a rung the catalog no longer has is ignored (the rung was removed from
    the file, so there is nothing left to override)."""
    data = station.model_dump()
    levels = overrides.get("levels", {})
    for rung in data["levels"]:
        if rung["key"] in levels:
            rung["value"] = levels[rung["key"]]
    for name in ("clear_margin", "maintenance"):
        if name in overrides:
            data[name] = overrides[name]
    try:
        return Station.model_validate(data)
    except ValidationError as exc:
        details = "; ".join(_describe(error) for error in exc.errors())
        raise ConfigError(f"station {station.id!r}: {details}") from None


def _describe(error: Mapping[str, Any]) -> str:
    where = ".".join(str(part) for part in error["loc"])
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{where}: {message}" if where else message


def effective_catalog(
    catalog: Catalog, overrides: Mapping[str, Mapping[str, Any]]
) -> tuple[Catalog, list[str]]:
    """The catalog with every station's overrides applied, and the problems found.

    A station whose overrides no longer fit its catalog entry (the file was edited so that
    an overridden rung now sits out of order) keeps the file's values; the problem is
    returned for the log rather than taking the whole catalog down.
    """
    stations, problems = [], []
    for station in catalog.values():
        changes = overrides.get(station.id)
        if not changes:
            stations.append(station)
            continue
        try:
            stations.append(with_overrides(station, changes))
        except ConfigError as exc:
            problems.append(f"{exc}; its overrides are ignored until fixed")
            stations.append(station)
    return Catalog(tuple(stations), catalog.source), problems


def _format(value: float | bool) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(int(value)) if value.is_integer() else repr(value)


def _parse_value(field: str, value: object) -> float | bool:
    if field == "maintenance":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("on", "true", "yes", "1"):
            return True
        if text in ("off", "false", "no", "0"):
            return False
        raise ConfigError(f"maintenance: {value!r} is not on or off")
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ConfigError(f"{field}: {value!r} is not a number") from None
    if not math.isfinite(number):
        raise ConfigError(f"{field}: {value!r} is not a finite number")
    return number


def current_value(station: Station, field: str) -> float | bool:
    """The value of `field` on a station; ConfigError naming the field if it has none."""
    if field in ("clear_margin", "maintenance"):
        value: float | bool = getattr(station, field)
        return value
    if field.startswith("levels.") and field.endswith(".value"):
        key = field.removeprefix("levels.").removesuffix(".value")
        for rung in station.levels:
            if rung.key == key:
                return rung.value
        known = ", ".join(rung.key for rung in station.levels) or "none"
        raise ConfigError(f"station {station.id!r} has no level {key!r} (its levels: {known})")
    raise ConfigError(f"unknown field {field!r}; use {FIELDS_HELP}")


async def apply_change(
    store: AlertStore,
    catalog: Catalog,
    station_id: str,
    field: str,
    new_value: object,
    by: str,
) -> AuditEntry:
    """Validate and store one change (`new_value` None: back to the catalog file's value).

    `catalog` is the file's catalog (without overrides). Raises ConfigError with a message
    fit for the person who made the change.
    """
    return (await apply_changes(store, catalog, station_id, {field: new_value}, by))[0]


async def apply_changes(
    store: AlertStore,
    catalog: Catalog,
    station_id: str,
    changes: Mapping[str, object],
    by: str,
) -> list[AuditEntry]:
    """Several changes to one station, checked together and stored in one transaction, so
    a ladder can be moved as a whole (raising both rungs past each other one at a time
    would pass through an unordered ladder)."""
    station = catalog.get(station_id)
    if station is None:
        raise ConfigError(f"unknown station {station_id!r}")
    if not changes:
        raise ConfigError("no change given")
    for field in changes:
        current_value(station, field)  # the field must exist in the catalog's own station
    overrides, version = await store.snapshot()
    mine = _copy(overrides.get(station_id, {}))
    before = with_overrides(station, mine) if mine else station
    for field, value in changes.items():
        _set(mine, field, None if value is None else _parse_value(field, value))
    after = with_overrides(station, mine)
    now = utc_now()
    at = now.replace(microsecond=now.microsecond // 1000 * 1000)  # as stored: milliseconds
    entries = [
        AuditEntry(
            at=at,
            by=by,
            station_id=station_id,
            field=field,
            old=_format(current_value(before, field)),
            new=None if value is None else _format(current_value(after, field)),
        )
        for field, value in changes.items()
    ]
    await store.record_changes(entries, if_version=version)
    for entry in entries:
        log.info(
            "%s changed %s %s: %s -> %s",
            by,
            station_id,
            entry.field,
            entry.old,
            entry.new or "(catalog value)",
        )
    return entries


def _copy(overrides: Mapping[str, Any]) -> dict[str, Any]:
    copied = dict(overrides)
    if "levels" in copied:
        copied["levels"] = dict(copied["levels"])
    return copied


def _set(overrides: dict[str, Any], field: str, value: float | bool | None) -> None:
    if field.startswith("levels."):
        key = field.removeprefix("levels.").removesuffix(".value")
        levels = overrides.setdefault("levels", {})
        if value is None:
            levels.pop(key, None)
        else:
            levels[key] = value
    elif value is None:
        overrides.pop(field, None)
    else:
        overrides[field] = value
