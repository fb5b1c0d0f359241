"""Message texts per language, as data: one table of line templates per event kind.

Templates are `str.format` strings. Placeholders hold values that the renderer has already
escaped (or, for plain text, cleaned); a line whose placeholders are not all known is
left out, so "Previous level: {previous}." disappears when there was none. Tags are only
<b>, <i> and <code>, which Telegram accepts and the plain renderer strips.
"""

from __future__ import annotations

from alerts.texts import en, ru
from alerts.texts.base import Texts

__all__ = ["Texts", "primary_language", "texts_for"]

_TABLES = {en.TEXTS.code: en.TEXTS, ru.TEXTS.code: ru.TEXTS}


def primary_language(language: str) -> str:
    """ "ru" for "ru", "ru-RU", "ru_RU" or "RU"."""
    return language.replace("_", "-").split("-")[0].lower()


def texts_for(language: str) -> Texts:
    """The texts for a language tag; English for languages without texts."""
    return _TABLES.get(primary_language(language), en.TEXTS)
