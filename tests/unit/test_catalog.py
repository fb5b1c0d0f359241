"""The station catalog: invalid files fail with a message naming file, station and field;
the shipped catalogs load and carry the real published thresholds."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from floodwatch.catalog import Catalog, Station, load_catalog, parse_catalog
from floodwatch.errors import ConfigError
from floodwatch.settings import CATALOG_DIR

Doc = dict[str, Any]


def _level(key: str, value: float, severity: str) -> dict[str, Any]:
    return {"key": key, "value": value, "severity": severity, "short": key, "names": {"en": key}}


def _valid_doc() -> Doc:
    return {
        "stations": [
            {
                "id": "gauge-a",
                "names": {"en": "Gauge A"},
                "river": {"en": "River"},
                "lat": 50.0,
                "lon": 8.0,
                "unit": "cm",
            },
            {
                "id": "gauge-b",
                "names": {"en": "Gauge B", "de": "Pegel B"},
                "river": {"en": "River"},
                "lat": 50.1,
                "lon": 8.1,
                "unit": "cm",
                "levels": [_level("low", 200, "watch"), _level("high", 300, "danger")],
                "clear_margin": 10,
                "upstream": ["gauge-a"],
            },
        ]
    }


def _station_b(doc: Doc) -> dict[str, Any]:
    station: dict[str, Any] = doc["stations"][1]
    return station


def _set(**changes: Any) -> Callable[[Doc], None]:
    def mutate(doc: Doc) -> None:
        _station_b(doc).update(changes)

    return mutate


def _duplicate(doc: Doc) -> None:
    doc["stations"].append(copy.deepcopy(_station_b(doc)))


def _loop(doc: Doc) -> None:
    doc["stations"][0]["upstream"] = ["gauge-b"]


def _empty(doc: Doc) -> None:
    doc["stations"] = []


# (case, how to break the valid document, station the message must name, field it must name)
INVALID: list[tuple[str, Callable[[Doc], None], str | None, str]] = [
    ("unknown field", _set(colour="red"), "gauge-b", "colour"),
    ("bad id pattern", _set(id="Gauge B"), "Gauge B", "id"),
    ("id too long", _set(id="g" * 65), "g" * 65, "id"),
    ("duplicate id", _duplicate, "gauge-b", "id"),
    (
        "unordered ladder",
        _set(levels=[_level("high", 300, "watch"), _level("low", 200, "warning")]),
        "gauge-b",
        "levels",
    ),
    (
        "equal rung values",
        _set(levels=[_level("a", 300, "watch"), _level("b", 300, "warning")]),
        "gauge-b",
        "levels",
    ),
    (
        "severity decreasing",
        _set(levels=[_level("low", 200, "danger"), _level("high", 300, "watch")]),
        "gauge-b",
        "levels",
    ),
    (
        "duplicate level key",
        _set(levels=[_level("x", 200, "watch"), _level("x", 300, "danger")]),
        "gauge-b",
        "levels",
    ),
    ("unknown severity", _set(levels=[_level("x", 200, "extreme")]), "gauge-b", "severity"),
    ("NaN threshold", _set(levels=[_level("x", math.nan, "watch")]), "gauge-b", "levels.0.value"),
    (
        "level without names",
        _set(levels=[{**_level("x", 1, "watch"), "names": {}}]),
        "gauge-b",
        "names",
    ),
    ("unknown upstream", _set(upstream=["gauge-z"]), "gauge-b", "upstream"),
    ("self upstream", _set(upstream=["gauge-b"]), "gauge-b", "upstream"),
    ("upstream loop", _loop, "gauge-a", "upstream"),
    ("lat out of range", _set(lat=91.0), "gauge-b", "lat"),
    ("lon out of range", _set(lon=-180.5), "gauge-b", "lon"),
    ("bad unit", _set(unit="mm"), "gauge-b", "unit"),
    ("negative clear margin", _set(clear_margin=-1), "gauge-b", "clear_margin"),
    ("empty names", _set(names={}), "gauge-b", "names"),
    ("inverted valid range", _set(valid_range={"min": 10, "max": 5}), "gauge-b", "valid_range"),
    ("zero flatline hours", _set(qc={"flatline_hours": 0}), "gauge-b", "qc.flatline_hours"),
    ("empty stations", _empty, None, "stations"),
]


@pytest.mark.parametrize(
    ("mutate", "station", "field"),
    [pytest.param(mutate, station, field, id=case) for case, mutate, station, field in INVALID],
)
def test_invalid_catalog_names_file_station_and_field(
    tmp_path: Path, mutate: Callable[[Doc], None], station: str | None, field: str
) -> None:
    doc = _valid_doc()
    mutate(doc)
    path = tmp_path / "stations.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")

    with pytest.raises(ConfigError) as caught:
        load_catalog(path)

    message = str(caught.value)
    assert str(path) in message
    assert field in message
    if station is not None:
        assert f"station {station!r}" in message
        # One bad station must not also be reported as "the catalog lists no stations".
        assert "no stations" not in message


def test_the_valid_base_document_loads() -> None:
    catalog = parse_catalog(_valid_doc())
    assert list(catalog) == ["gauge-a", "gauge-b"]
    assert catalog["gauge-b"].upstream == ("gauge-a",)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("stations: [\n  - id: a\n", "not valid YAML", id="yaml syntax error"),
        pytest.param("", "(catalog)", id="empty file"),
        pytest.param("- just\n- a list\n", "(catalog)", id="not a mapping"),
        pytest.param("stations: 5\n", "stations", id="stations not a list"),
    ],
)
def test_unparseable_catalog_names_the_file(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_catalog(path)
    assert str(path) in str(caught.value)
    assert expected in str(caught.value)


def test_missing_catalog_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.yaml"
    with pytest.raises(ConfigError, match="cannot read station catalog") as caught:
        load_catalog(path)
    assert str(path) in str(caught.value)


# --- the shipped catalogs ----------------------------------------------------------------

SHIPPED = ["rhine", "amur", "calder", "demo"]


def _shipped(name: str) -> Catalog:
    return load_catalog(CATALOG_DIR / f"{name}.yaml")


def test_every_catalog_file_in_the_package_is_tested() -> None:
    assert sorted(path.stem for path in CATALOG_DIR.glob("*.yaml")) == sorted(SHIPPED)


@pytest.mark.parametrize(
    ("name", "count", "languages"),
    [
        ("rhine", 12, {"de", "en", "ru"}),
        ("amur", 16, {"ru", "en"}),
        ("calder", 5, {"en"}),
        ("demo", 4, {"en", "de", "ru"}),
    ],
)
def test_shipped_catalog_loads(name: str, count: int, languages: set[str]) -> None:
    catalog = _shipped(name)
    assert len(catalog) == count
    for station in catalog.values():
        assert languages <= set(station.names), station.id
        assert languages <= set(station.river), station.id
        for level in station.levels:
            assert languages <= set(level.names), (station.id, level.key)


# (catalog, station, level key, value, severity, short name)
REAL_MARKS = [
    ("rhine", "rhein-mainz", "mark-i", 475, "warning", "I"),
    ("rhine", "rhein-mainz", "mark-ii", 630, "danger", "II"),
    ("rhine", "rhein-duesseldorf", "mark-i", 710, "warning", "I"),
    ("rhine", "rhein-duesseldorf", "mark-ii", 880, "danger", "II"),
    ("amur", "amur-khabarovsk", "nya", 450, "warning", "НЯ"),
    ("amur", "amur-khabarovsk", "oya", 600, "danger", "ОЯ"),
    ("amur", "amur-komsomolsk-na-amure", "nya", 450, "warning", "НЯ"),
    ("amur", "amur-komsomolsk-na-amure", "oya", 650, "danger", "ОЯ"),
    ("amur", "amur-elabuga", "oya", 550, "danger", "ОЯ"),
    ("amur", "amur-troitskoye", "oya", 450, "danger", "ОЯ"),
]


@pytest.mark.parametrize(("name", "station_id", "key", "value", "severity", "short"), REAL_MARKS)
def test_real_published_thresholds_are_in_the_catalogs(
    name: str, station_id: str, key: str, value: float, severity: str, short: str
) -> None:
    levels = {level.key: level for level in _shipped(name)[station_id].levels}
    assert levels[key].value == value
    assert levels[key].severity == severity
    assert levels[key].short == short


def test_only_gauges_with_published_thresholds_have_a_ladder() -> None:
    marks = {(name, station_id) for name, station_id, *_ in REAL_MARKS}
    for name in ("rhine", "amur", "calder"):
        for station in _shipped(name).values():
            assert bool(station.levels) == ((name, station.id) in marks), station.id


def test_rhine_links_follow_the_confluences() -> None:
    rhine = _shipped("rhine")
    # The Neckar joins between Philippsburg and Mainz, the Main at Mainz.
    assert set(rhine["rhein-mainz"].upstream) == {
        "rhein-philippsburg",
        "neckar-mannheimneckar",
        "main-raunheim",
    }
    assert rhine["rhein-wesel"].upstream == ("rhein-duesseldorf",)
    assert rhine["neckar-mannheimneckar"].upstream == ("neckar-heidelberg-up",)
    assert rhine["rhein-basel-rheinhalle"].upstream == ()


def _chain_from_head(catalog: Catalog) -> list[Station]:
    """The stations of a single-file chain, head first (each has one upstream: the last)."""
    chain = [station for station in catalog.values() if not station.upstream]
    assert len(chain) == 1
    while True:
        below = [s for s in catalog.values() if s.upstream == (chain[-1].id,)]
        if not below:
            return chain
        assert len(below) == 1
        chain.append(below[0])


def test_amur_posts_form_one_chain_in_river_order() -> None:
    amur = _shipped("amur")
    chain = [station.id for station in _chain_from_head(amur)]
    assert chain == list(amur)  # the file lists them upstream to downstream
    assert chain[0] == "amur-pokrovka"
    assert chain[-1] == "amur-nikolaevsk-na-amure"
    # The river flows east overall: the estuary is far east of the source.
    assert amur[chain[-1]].lon - amur[chain[0]].lon > 15


def test_daily_amur_posts_tolerate_daily_steps_in_qc() -> None:
    for station in _shipped("amur").values():
        assert station.qc.flatline_hours >= 240, station.id
        assert station.max_jump_per_hour * 24 >= 692, station.id  # Dzhalinda 1985 ice break


def test_calder_is_in_metres_without_alert_levels() -> None:
    for station in _shipped("calder").values():
        assert station.unit == "m"
        assert station.levels == ()


def test_demo_ladders_are_complete() -> None:
    demo = _shipped("demo")
    assert [s.id for s in _chain_from_head(demo)] == list(demo)
    for station in demo.values():
        assert [level.severity for level in station.levels] == ["watch", "warning", "danger"]
        assert station.clear_margin > 0
