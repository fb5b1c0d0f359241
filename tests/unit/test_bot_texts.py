"""The bot's text table and its pure helpers."""

from __future__ import annotations

import string

import pytest

from floodwatch.catalog import load_catalog
from floodwatch.settings import CATALOG_DIR
from telegram_bot.common import haversine_km, nearest, resolve_gauge, search, short
from telegram_bot.routers.fallback import addressee
from telegram_bot.texts import LANGUAGES, TEXTS, language_of, t


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


@pytest.mark.parametrize("key", sorted(TEXTS))
def test_every_text_exists_in_every_language_with_the_same_placeholders(key: str) -> None:
    row = TEXTS[key]
    assert set(row) == set(LANGUAGES)
    assert _fields(row["en"]) == _fields(row["ru"])


@pytest.mark.parametrize(
    ("code", "lang"),
    [("ru", "ru"), ("ru-RU", "ru"), ("en-GB", "en"), ("de", "en"), (None, "en"), ("", "en")],
)
def test_language_of(code: str | None, lang: str) -> None:
    assert language_of(code) == lang


def test_unknown_language_falls_back_to_english() -> None:
    assert t("fr", "menu") == TEXTS["menu"]["en"]


def test_haversine_known_distance() -> None:
    # Mainz to Cologne cathedral: about 140 km as the crow flies.
    assert haversine_km(50.0, 8.271, 50.941, 6.958) == pytest.approx(142, abs=15)
    assert haversine_km(10, 10, 10, 10) == 0


def test_lookups_on_the_rhine_catalog() -> None:
    catalog = load_catalog(CATALOG_DIR / "rhine.yaml")
    assert nearest(catalog, 50.0, 8.27, 1)[0][0].id == "rhein-mainz"
    assert search(catalog, "MAINZ")[0].id == "rhein-mainz"
    assert resolve_gauge(catalog, "Майнц") is not None
    assert len(short("x" * 64)) == 10


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("/status", None),
        ("/status rhein-mainz", None),
        ("/status@Floodwatch_Bot rhein-mainz", "floodwatch_bot"),
        ("/frobnicate@other_bot", "other_bot"),
        ("/x@", ""),
    ],
)
def test_addressee_of_a_command(text: str, name: str | None) -> None:
    assert addressee(text) == name
