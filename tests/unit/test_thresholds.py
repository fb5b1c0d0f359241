"""Hydrologists' threshold edits: validated with the catalog's own model, stored with an
audit row, and applied on top of the catalog file."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from alerts.store import AlertStore
from alerts.thresholds import apply_change, apply_changes, effective_catalog, fingerprint
from floodwatch.catalog import Catalog, parse_catalog
from floodwatch.errors import ConfigError


def _rung(key: str, value: float, severity: str) -> dict[str, Any]:
    return {"key": key, "value": value, "severity": severity, "short": key, "names": {"en": key}}


def _catalog() -> Catalog:
    station = {
        "id": "g1",
        "names": {"en": "G1"},
        "river": {"en": "River"},
        "lat": 50,
        "lon": 8,
        "unit": "cm",
        "clear_margin": 10,
        "levels": [_rung("watch", 400, "watch"), _rung("danger", 600, "danger")],
    }
    return parse_catalog({"stations": [station, {**station, "id": "g2", "levels": []}]})


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[AlertStore]:
    opened = AlertStore(tmp_path / "state.sqlite")
    await opened.open()
    yield opened
    await opened.close()


@pytest.mark.parametrize(
    ("field", "value", "old", "new", "override"),
    [
        ("levels.watch.value", 380, "400", "380", {"levels": {"watch": 380.0}}),
        ("levels.danger.value", "650.5", "600", "650.5", {"levels": {"danger": 650.5}}),
        ("clear_margin", "15", "10", "15", {"clear_margin": 15.0}),
        ("maintenance", "on", "off", "on", {"maintenance": True}),
        ("maintenance", True, "off", "on", {"maintenance": True}),
    ],
)
async def test_valid_changes_are_stored_with_an_audit_row(
    store: AlertStore, field: str, value: object, old: str, new: str, override: dict[str, Any]
) -> None:
    entry = await apply_change(store, _catalog(), "g1", field, value, "anna")
    assert (entry.station_id, entry.field, entry.old, entry.new, entry.by) == (
        "g1",
        field,
        old,
        new,
        "anna",
    )
    assert await store.overrides() == {"g1": override}
    assert await store.audit() == [entry]


@pytest.mark.parametrize(
    ("station_id", "field", "value", "message"),
    [
        ("g1", "levels.watch.value", 700, "'danger' (600.0) must be above 'watch' (700.0)"),
        ("g1", "levels.danger.value", 400, "'danger' (400.0) must be above 'watch' (400.0)"),
        ("g1", "levels.flood.value", 500, "has no level 'flood' (its levels: watch, danger)"),
        ("g2", "levels.watch.value", 500, "has no level 'watch' (its levels: none)"),
        ("nowhere", "clear_margin", 5, "unknown station 'nowhere'"),
        ("g1", "colour", 5, "unknown field 'colour'"),
        ("g1", "clear_margin", -1, "clear_margin: Input should be greater than or equal to 0"),
        ("g1", "levels.watch.value", "high", "'high' is not a number"),
        ("g1", "levels.watch.value", "nan", "'nan' is not a finite number"),
        ("g1", "maintenance", "perhaps", "'perhaps' is not on or off"),
    ],
)
async def test_invalid_changes_are_refused_and_nothing_is_stored(
    store: AlertStore, station_id: str, field: str, value: object, message: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        await apply_change(store, _catalog(), station_id, field, value, "anna")
    assert message in str(refused.value)
    assert await store.overrides() == {}
    assert await store.audit() == []


async def test_a_ladder_moves_as_a_whole_in_one_change(store: AlertStore) -> None:
    catalog = _catalog()
    with pytest.raises(ConfigError):  # one rung at a time passes through a bad ladder
        await apply_change(store, catalog, "g1", "levels.watch.value", 650, "anna")
    entries = await apply_changes(
        store, catalog, "g1", {"levels.watch.value": 650, "levels.danger.value": 800}, "anna"
    )
    assert [(e.old, e.new) for e in entries] == [("400", "650"), ("600", "800")]
    effective, problems = effective_catalog(catalog, await store.overrides())
    assert problems == []
    assert [rung.value for rung in effective["g1"].levels] == [650, 800]


async def test_maintenance_on_and_off_and_back_to_the_catalog(store: AlertStore) -> None:
    catalog = _catalog()
    await apply_change(store, catalog, "g1", "maintenance", "on", "anna")
    assert effective_catalog(catalog, await store.overrides())[0]["g1"].maintenance
    off = await apply_change(store, catalog, "g1", "maintenance", "off", "bob")
    assert (off.old, off.new) == ("on", "off")
    reset = await apply_change(store, catalog, "g1", "maintenance", None, "bob")
    assert (reset.old, reset.new) == ("off", None)
    assert await store.overrides() == {}
    assert [e.by for e in await store.audit("g1")] == ["bob", "bob", "anna"]


def test_overrides_that_no_longer_fit_the_catalog_are_ignored_for_that_station() -> None:
    catalog = _catalog()
    overrides: dict[str, dict[str, Any]] = {
        "g1": {"levels": {"watch": 700.0}},
        "g2": {"clear_margin": 3.0},
    }
    effective, problems = effective_catalog(catalog, overrides)
    assert effective["g1"] == catalog["g1"]  # the file's ladder, not an unordered one
    assert effective["g2"].clear_margin == 3.0
    assert len(problems) == 1
    assert "station 'g1'" in problems[0]


def test_an_override_of_a_rung_removed_from_the_file_is_ignored() -> None:
    catalog = _catalog()
    effective, problems = effective_catalog(catalog, {"g2": {"levels": {"watch": 1.0}}})
    assert problems == []
    assert effective["g2"] == catalog["g2"]


def test_fingerprint_follows_the_ladder_and_margin_only() -> None:
    catalog = _catalog()
    station = catalog["g1"]
    assert fingerprint(station) == fingerprint(station.model_copy(update={"maintenance": True}))
    assert fingerprint(station) != fingerprint(station.model_copy(update={"clear_margin": 5}))
    moved, _ = effective_catalog(catalog, {"g1": {"levels": {"watch": 390.0}}})
    assert fingerprint(moved["g1"]) != fingerprint(station)
