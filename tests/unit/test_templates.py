"""Alert message texts: every kind in both languages, local times, and hostile names."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from alerts.events import EventKind
from alerts.templates import headline, render, render_plain
from floodwatch.catalog import Station
from tests.harness.telegram_html import telegram_html_errors
from tests.unit.alert_samples import (
    AT,
    EXPECTED,
    KHABAROVSK,
    MAINZ,
    OPERATOR_KINDS,
    RESIDENT_KINDS,
    sample_event,
    station_like,
)

BERLIN = ZoneInfo("Europe/Berlin")
VLADIVOSTOK = ZoneInfo("Asia/Vladivostok")  # Khabarovsk's zone
UNIT = {"en": "cm", "ru": "см"}


@pytest.mark.parametrize(
    "text",
    [
        "<u>underlined</u>",
        "<b>never closed",
        "<b><i>crossed</b></i>",
        "1 < 2",
        "R&D",
        "&nbsp;",
        '<b class="x">attribute</b>',
        "<br/>",
        "x" * 4097,
    ],
)
def test_the_validator_rejects_what_telegram_rejects(text: str) -> None:
    assert telegram_html_errors(text)


def test_the_validator_accepts_escaped_text() -> None:
    assert telegram_html_errors("<b>R&amp;D</b> &lt;1&gt; &#x1F30A; <code>x</code>") == []


@pytest.mark.parametrize("language", ["en", "ru"])
@pytest.mark.parametrize("kind", RESIDENT_KINDS)
@pytest.mark.parametrize(("station", "tz"), [(MAINZ, BERLIN), (KHABAROVSK, VLADIVOSTOK)])
def test_resident_messages_say_where_how_high_and_which_rung(
    kind: EventKind, language: str, station: Station, tz: ZoneInfo
) -> None:
    event = sample_event(kind, station)
    assert event.threshold is not None
    assert event.level is not None
    for text in (render(event, station, language, tz), render_plain(event, station, language, tz)):
        assert station.names[language] in text
        assert station.river[language] in text
        assert f"{event.level:.0f} {UNIT[language]}" in text
        assert event.threshold.short in text
    assert telegram_html_errors(render(event, station, language, tz)) == []


@pytest.mark.parametrize("language", ["en", "ru"])
@pytest.mark.parametrize("kind", OPERATOR_KINDS)
def test_operator_messages_name_the_gauge_and_the_reason(kind: EventKind, language: str) -> None:
    text = render(sample_event(kind), MAINZ, language, BERLIN)
    assert telegram_html_errors(text) == []
    assert MAINZ.names[language] in text
    assert "<code>rhein-mainz</code>" in text
    assert "no reading for 3 h" in text
    assert "13:00" in text  # 12:00 UTC in Berlin


@pytest.mark.parametrize(
    ("kind", "language", "first_line"),
    [
        (EventKind.ESCALATION, "en", "🔴 <b>Flood danger</b> — <b>Mainz</b> (river Rhine)"),
        (EventKind.DEESCALATION, "en", "🟠 <b>Water falling</b> — <b>Mainz</b> (river Rhine)"),
        (EventKind.ALL_CLEAR, "en", "✅ <b>All clear</b> — <b>Mainz</b> (river Rhine)"),
        (
            EventKind.PREWARNING,
            "ru",
            "🔴 <b>Ожидается опасный уровень воды</b> — <b>Майнц</b> (р. Рейн)",
        ),
        (EventKind.ESCALATION, "ru", "🔴 <b>Опасный уровень воды</b> — <b>Майнц</b> (р. Рейн)"),
    ],
)
def test_the_first_line_shows_severity_and_place(
    kind: EventKind, language: str, first_line: str
) -> None:
    assert render(sample_event(kind), MAINZ, language, BERLIN).split("\n")[0] == first_line


def test_watch_is_yellow() -> None:
    watch = sample_event(EventKind.ESCALATION)
    assert watch.threshold is not None
    watch = sample_event(
        EventKind.ESCALATION,
        threshold=type(watch.threshold)("w", 400, "watch", "W", {"en": "Watch level"}),
    )
    assert render(watch, MAINZ, "en", BERLIN).startswith("🟡 <b>Flood watch</b>")


def test_escalation_names_both_rungs() -> None:
    text = render_plain(sample_event(EventKind.ESCALATION), MAINZ, "en", BERLIN)
    assert "The water has reached High water mark II (shipping stopped) (630 cm)." in text
    assert "Previous level: High water mark I (shipping restricted)." in text
    assert "Level: 642 cm, rising 6 cm per hour." in text


def test_deescalation_names_the_rung_left_and_the_rung_in_force() -> None:
    text = render_plain(
        sample_event(EventKind.DEESCALATION, KHABAROVSK), KHABAROVSK, "ru", VLADIVOSTOK
    )
    assert "Уровень опустился ниже отметки «Опасное явление (ОЯ)»." in text
    assert "Действует отметка «Неблагоприятное явление (НЯ)» (450 см)." in text


def test_a_short_name_missing_from_the_long_name_is_shown_before_it() -> None:
    text = render_plain(
        sample_event(EventKind.ESCALATION, KHABAROVSK), KHABAROVSK, "en", VLADIVOSTOK
    )
    assert "ОЯ — Dangerous level (OYa) (600 cm)" in text


def test_all_clear_says_below_the_lowest_rung() -> None:
    text = render_plain(sample_event(EventKind.ALL_CLEAR), MAINZ, "en", BERLIN)
    assert "fell below the lowest level, High water mark I (shipping restricted) (475 cm)" in text
    assert "Level: 460 cm, falling 4 cm per hour." in text


def test_prewarning_in_berlin_time() -> None:
    text = render_plain(sample_event(EventKind.PREWARNING), MAINZ, "en", BERLIN)
    assert "at 19:00 on 5 Jan (CET), in about 6 hours." in text
    assert "Likely between 18:00 and 23:30 on 5 Jan." in text


def test_prewarning_in_khabarovsk_time_crosses_midnight() -> None:
    text = render_plain(
        sample_event(EventKind.PREWARNING, KHABAROVSK), KHABAROVSK, "ru", VLADIVOSTOK
    )
    assert "около 04:00, 6 января (UTC+10), примерно через 6 часов." in text
    assert "Вероятно с 03:00 до 08:30, 6 января." in text


def test_a_band_over_two_days_gives_both_dates() -> None:
    event = sample_event(
        EventKind.PREWARNING, earliest=EXPECTED - timedelta(hours=6), latest=EXPECTED
    )
    text = render_plain(event, MAINZ, "en", BERLIN)
    assert "Likely between 13:00 and 19:00 on 5 Jan." in text
    text = render_plain(event, KHABAROVSK, "ru", VLADIVOSTOK)
    assert "Вероятно с 22:00, 5 января до 04:00, 6 января." in text


@pytest.mark.parametrize(
    ("hours", "en", "ru"),
    [
        (0.5, "within the hour", "в течение часа"),
        (1, "in about 1 hour", "примерно через 1 час"),
        (2, "in about 2 hours", "примерно через 2 часа"),
        (11, "in about 11 hours", "примерно через 11 часов"),
        (21, "in about 21 hours", "примерно через 21 час"),
        (22, "in about 22 hours", "примерно через 22 часа"),
        (47, "in about 47 hours", "примерно через 47 часов"),
        (48, "in about 2 days", "примерно через 2 дня"),
        (5 * 24 + 3, "in about 5 days", "примерно через 5 дней"),
    ],
)
def test_how_soon_in_words(hours: float, en: str, ru: str) -> None:
    event = sample_event(
        EventKind.PREWARNING, expected_at=AT + timedelta(hours=hours), earliest=None, latest=None
    )
    assert en in render(event, MAINZ, "en", BERLIN)
    assert ru in render(event, MAINZ, "ru", BERLIN)


@pytest.mark.parametrize(
    ("direction", "rate", "en", "ru"),
    [
        ("rising", 3.44, "rising 3.4 cm per hour", "растёт на 3,4 см в час"),
        ("rising", 0.4, "rising 0.4 cm per hour", "растёт на 0,4 см в час"),
        ("rising", 6.02, "rising 6 cm per hour", "растёт на 6 см в час"),
        ("falling", -12.0, "falling 12 cm per hour", "падает на 12 см в час"),
        ("steady", 0.1, "steady", "без изменений"),
        (None, 25.0, "rising 25 cm per hour", "растёт на 25 см в час"),
        ("rising", None, "rising.", "растёт."),
        (None, None, "trend not known", "тенденция неизвестна"),
    ],
)
def test_trend_in_words(direction: str | None, rate: float | None, en: str, ru: str) -> None:
    event = sample_event(EventKind.ESCALATION, direction=direction, rate_per_h=rate)
    assert en in render_plain(event, MAINZ, "en", BERLIN)
    assert ru in render_plain(event, MAINZ, "ru", BERLIN)


def test_metres_keep_two_decimals_with_the_local_decimal_point() -> None:
    station = station_like(
        MAINZ,
        unit="m",
        levels=[{**level.model_dump(), "value": level.value / 100} for level in MAINZ.levels],
    )
    event = sample_event(EventKind.ESCALATION, station, level=6.4237, rate_per_h=0.031)
    assert "Level: 6.42 m, rising 0.03 m per hour." in render_plain(event, station, "en", BERLIN)
    assert "Уровень: 6,42 м, растёт на 0,03 м в час." in render_plain(event, station, "ru", BERLIN)


@pytest.mark.parametrize("language", ["de", "fr-FR", ""])
def test_other_languages_get_english(language: str) -> None:
    text = render(sample_event(EventKind.ALL_CLEAR), MAINZ, language, BERLIN)
    assert "<b>All clear</b>" in text


def test_language_tags_with_a_region_are_understood() -> None:
    assert "<b>Отбой</b>" in render(sample_event(EventKind.ALL_CLEAR), MAINZ, "ru-RU", BERLIN)


def test_names_fall_back_to_any_language() -> None:
    station = station_like(MAINZ, names={"de": "Mainz am Rhein"}, river={"de": "Rhein"})
    text = render(sample_event(EventKind.ESCALATION), station, "ru", BERLIN)
    assert "<b>Mainz am Rhein</b> (р. Rhein)" in text


HOSTILE = '<script>alert("x")</script> & <b>Co</b> &amp;'


@pytest.mark.parametrize("language", ["en", "ru"])
@pytest.mark.parametrize("kind", list(EventKind))
def test_hostile_names_are_escaped(kind: EventKind, language: str) -> None:
    station = station_like(MAINZ, names={"en": HOSTILE, "ru": HOSTILE}, river={"en": "R&D <i>"})
    event = sample_event(kind, station, detail="<b>flag & co</b>" if kind.operator_only else None)
    text = render(event, station, language, BERLIN)
    assert telegram_html_errors(text) == []
    assert "&lt;script&gt;" in text
    assert "<script>" not in text
    assert "R&amp;D &lt;i&gt;" in text or kind.operator_only
    plain = render_plain(event, station, language, BERLIN)
    assert HOSTILE in plain  # plain text is not escaped: CAP's XML writer escapes it


@pytest.mark.parametrize("filler", ["x", "&", "<", "🌊"])
@pytest.mark.parametrize("kind", list(EventKind))
def test_huge_names_are_shortened_to_fit_one_message(kind: EventKind, filler: str) -> None:
    huge = filler * 5000
    station = station_like(MAINZ, names={"en": huge}, river={"en": huge})
    threshold = sample_event(kind).threshold
    if threshold is not None:
        threshold = type(threshold)(threshold.key, threshold.value, "danger", huge, {"en": huge})
    event = sample_event(
        kind, station, threshold=threshold, detail=huge if kind.operator_only else None
    )
    text = render(event, station, "en", BERLIN)
    assert telegram_html_errors(text) == []
    assert "…" in text
    if kind not in (EventKind.MAINTENANCE_ON, EventKind.MAINTENANCE_OFF):
        assert f"{event.level:.0f} cm" in text  # the facts survive the shortening


def test_control_characters_and_line_breaks_in_names_are_removed() -> None:
    station = station_like(MAINZ, names={"en": "Main\x00z\nnorth\x1b"})
    text = render(sample_event(EventKind.ESCALATION), station, "en", BERLIN)
    assert "<b>Main z north</b>" in text


def test_plain_text_has_no_markup_or_markers() -> None:
    text = render_plain(sample_event(EventKind.PREWARNING), MAINZ, "en", BERLIN)
    assert text.startswith("Flood danger expected — Mainz (river Rhine)\n")
    assert not re.search(r"</?[a-z]+>", text)
    assert "🔴" not in text


def test_headline_is_the_plain_first_line_within_160_characters() -> None:
    event = sample_event(EventKind.ESCALATION)
    assert headline(event, MAINZ, "en", BERLIN) == "Flood danger — Mainz (river Rhine)"
    station = station_like(MAINZ, names={"en": "M" * 300})
    assert len(headline(event, station, "en", BERLIN)) <= 160


def test_naive_times_are_taken_as_utc() -> None:
    naive = datetime(2018, 1, 5, 18, 0)  # noqa: DTZ001 - the point of the test
    event = sample_event(EventKind.PREWARNING, at=AT.replace(tzinfo=None), expected_at=naive)
    assert "19:00 on 5 Jan (CET)" in render(event, MAINZ, "en", BERLIN)


def test_utc_is_labelled_utc() -> None:
    assert "19:00" not in render(sample_event(EventKind.PREWARNING), MAINZ, "en", UTC)
    assert "18:00 on 5 Jan (UTC)" in render(sample_event(EventKind.PREWARNING), MAINZ, "en", UTC)
