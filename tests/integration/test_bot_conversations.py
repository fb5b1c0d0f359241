"""Whole conversations with the bot through aiogram's real HTTP session and a local Bot API
server; the bot polls for real."""

from __future__ import annotations

from pathlib import Path

from tests.harness.bot_api import Sent
from tests.harness.bot_conversation import running_bot, seed_readings

USER = 1001


def to(chat_id: int) -> object:
    return lambda s: s.chat_id == chat_id


async def test_start_welcomes_in_the_users_language_and_language_changes(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as rb:
        server = rb.server
        first = await server.ask(USER, "/start", language_code="ru")
        assert "Floodwatch" in (first.text or "")
        assert "гидропост" in (first.text or "")
        assert first.reply_markup
        assert first.reply_markup["keyboard"][0][0]["request_location"]
        menu = await server.wait_for(
            lambda s: (
                s.chat_id == USER
                and s.method == "sendMessage"
                and bool(s.reply_markup and "inline_keyboard" in s.reply_markup)
            )
        )
        assert menu.button("Язык")
        chat = await rb.bot_store.chat(USER)
        assert chat is not None
        assert chat.language == "ru"

        choose = await server.ask(USER, "/language", language_code="ru")
        since = server.mark()
        server.press(USER, "English")
        done = await server.wait_for(lambda s: s.chat_id == USER, since=since)
        assert done.text == "Language: English."
        chat = await rb.bot_store.chat(USER)
        assert chat is not None
        assert chat.language == "en"
        # The chosen language wins over the Telegram setting from now on.
        again = await server.ask(USER, "/help", language_code="ru")
        assert "/my" in (again.text or "")
        assert "your subscriptions" in (again.text or "")
        assert choose.buttons()
        assert server.commands, "the command menu was set"
        assert all(a.get("callback_query_id") for a in server.answered_callbacks)


async def test_unknown_language_falls_back_to_english(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as rb:
        first = await rb.server.ask(USER, "/start", language_code="de")
        assert "warns you" in (first.text or "")


async def test_location_share_nearest_gauges_subscribe_and_severity(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as rb:
        server = rb.server
        # Mainz old town: Mainz gauge is nearest, a few km away.
        answer = await server.ask(USER, location=(49.999, 8.274))
        assert answer.text
        assert "nearest" in answer.text
        first = answer.buttons()[0]
        assert first["text"].startswith("Mainz — ")
        assert first["text"].endswith(" km")
        assert float(first["text"].split("— ")[1].split()[0]) < 2
        distances = [float(b["text"].split("— ")[1].split()[0]) for b in answer.buttons()]
        assert distances == sorted(distances)

        since = server.mark()
        server.press(USER, "Mainz")
        subscribed = await server.wait_for(to(USER), since=since)  # type: ignore[arg-type]
        assert "Subscribed to <b>Mainz</b>" in (subscribed.text or "")
        subs = await rb.bot_store.subscriptions(USER)
        assert [(s.station_id, s.min_severity) for s in subs] == [("rhein-mainz", "warning")]

        since = server.mark()
        server.press(USER, "Danger only")
        done = await server.wait_for(to(USER), since=since)  # type: ignore[arg-type]
        assert "danger" in (done.text or "")
        subs = await rb.bot_store.subscriptions(USER)
        assert [(s.station_id, s.min_severity) for s in subs] == [("rhein-mainz", "danger")]


async def test_river_then_gauge_and_whole_river(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as rb:
        server = rb.server
        rivers = await server.ask(USER, "/rivers")
        assert {b["text"] for b in rivers.buttons()} == {"Rhine", "Neckar", "Main"}
        since = server.mark()
        server.press(USER, "Neckar")
        gauges = await server.wait_for(to(USER), since=since)  # type: ignore[arg-type]
        assert "Neckar" in (gauges.text or "")
        names = [b["text"] for b in gauges.buttons()]
        assert "Heidelberg" in " ".join(names)
        since = server.mark()
        server.press(USER, "Heidelberg")
        await server.wait_for(
            lambda s: s.chat_id == USER and "Subscribed" in (s.text or ""), since=since
        )
        since = server.mark()
        server.press(USER, "Watch and above")
        await server.wait_for(to(USER), since=since)  # type: ignore[arg-type]

        # The whole river as one subscription.
        since = server.mark()
        server.push_callback(USER, gauges.button("all gauges")["callback_data"], gauges.message_id)
        await server.wait_for(
            lambda s: s.chat_id == USER and "Subscribed" in (s.text or ""), since=since
        )
        subs = await rb.bot_store.subscriptions(USER)
        assert {(s.station_id, s.river, s.min_severity) for s in subs} == {
            ("neckar-heidelberg-up", None, "watch"),
            (None, "Neckar", "warning"),
        }


async def test_search_by_name_in_either_language(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as rb:
        server = rb.server
        found = await server.ask(USER, "майнц", language_code="ru")
        assert found.button("Майнц")
        assert "Найдено" in (found.text or "")  # the chat's language stays Russian
        nothing = await server.ask(USER + 1, "Atlantis")
        assert "No gauge or river matches" in (nothing.text or "")
        river = await server.ask(USER + 1, "Main")
        assert river.button("all gauges on the Main")
        assert river.button("Mainz")  # a name containing the query


async def test_my_lists_levels_then_unsubscribe_and_mute(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as rb:
        server = rb.server
        await rb.bot_store.upsert_chat(USER, "private", "en")
        await rb.bot_store.subscribe(USER, station_id="rhein-mainz", min_severity="warning")
        await rb.bot_store.subscribe(USER, river="Neckar", min_severity="danger")
        await seed_readings(rb.readings, "rhein-mainz", [400, 410, 420, 431])

        my = await server.ask(USER, "/my")
        assert "Mainz</b>: 431 cm" in (my.text or "")
        assert "all gauges on the Neckar" in (my.text or "")

        since = server.mark()
        server.press(USER, "8 h")
        muted = await server.wait_for(to(USER), since=since)  # type: ignore[arg-type]
        assert "Muted until" in (muted.text or "")
        chat = await rb.bot_store.chat(USER)
        assert chat is not None
        assert chat.muted_until is not None

        since = server.mark()
        server.push_callback(USER, my.button("✖ Mainz")["callback_data"], my.message_id)
        gone = await server.wait_for(to(USER), since=since)  # type: ignore[arg-type]
        assert "Unsubscribed from Mainz" in (gone.text or "")
        subs = await rb.bot_store.subscriptions(USER)
        assert [(s.station_id, s.river) for s in subs] == [(None, "Neckar")]

        # The same button again: the subscription is gone, answered, not an error.
        since_answers = len(server.answered_callbacks)
        server.push_callback(USER, my.button("✖ Mainz")["callback_data"], my.message_id)
        await _answered(server, since_answers)
        assert "gone already" in server.answered_callbacks[-1].get("text", "")

        since = server.mark()
        server.press(USER, "Unmute")
        await server.wait_for(lambda s: s.chat_id == USER and "on" in (s.text or ""), since=since)
        chat = await rb.bot_store.chat(USER)
        assert chat is not None
        assert chat.muted_until is None


async def test_status_sends_text_and_a_png_chart(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as rb:
        server = rb.server
        await seed_readings(rb.readings, "rhein-mainz", [440 + 5 * i for i in range(12)])
        text = await server.ask(USER, "/status Mainz")
        assert "Level: <b>495 cm</b>" in (text.text or "")
        assert "rising" in (text.text or "")
        assert "II — 630 cm" in (text.text or "")
        assert "Forecast" in (text.text or "")
        photo = await server.wait_for(lambda s: s.chat_id == USER and s.method == "sendPhoto")
        assert photo.photo_bytes is not None
        assert photo.photo_bytes.startswith(b"\x89PNG\r\n\x1a\n")
        assert len(photo.photo_bytes) > 5000

        # No argument and no subscriptions: a choice of gauges; pressing one gives its status.
        choose = await server.ask(USER, "/status")
        assert len(choose.buttons()) > 3
        since = server.mark()
        server.press(USER, "Mainz")
        await server.wait_for(lambda s: s.chat_id == USER and s.method == "sendPhoto", since=since)

        unknown = await server.ask(USER, "/status Atlantis")
        assert "No gauge matches" in (unknown.text or "")
        # A gauge without readings: text, no chart.
        since = server.mark()
        empty = await server.ask(USER, "/status rhein-wesel")
        assert "No readings yet" in (empty.text or "")


async def _answered(server: object, before: int) -> None:
    from tests.harness.inprocess import wait_until

    await wait_until(lambda: len(server.answered_callbacks) > before, 5, "callback answered")  # type: ignore[attr-defined]


def _sent_text(sent: Sent) -> str:
    return sent.text or ""
