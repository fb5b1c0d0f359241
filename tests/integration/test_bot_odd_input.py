"""Odd input gets a short helpful answer, never an exception."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tests.harness.bot_conversation import ADMIN_ID, running_bot
from tests.harness.inprocess import wait_until

USER = 2002


async def test_odd_input_is_answered_gracefully(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as rb:
        server = rb.server
        unknown = await server.ask(USER, "/frobnicate now")
        assert "don't know that command" in (unknown.text or "")

        huge = await server.ask(USER, "x" * 5000)
        assert "too long" in (huge.text or "")
        assert len(huge.text or "") < 200

        sticker = await server.ask(USER, sticker=True)
        assert "text, locations and commands" in (sticker.text or "")
        photo = await server.ask(USER, photo=True)
        assert "text, locations and commands" in (photo.text or "")

        since = server.mark()
        server.push_edited_message(USER, "/status Mainz")
        edited = await server.wait_for(lambda s: s.chat_id == USER, since=since)
        assert "only read new messages" in (edited.text or "")

        nowhere = await server.ask(USER, location=(0.0, 0.0))
        assert "could not read that location" in (nowhere.text or "")

        # Stale and unknown callback data: answered with a hint, nothing sent, no error.
        for data in (
            "ga:sub:0000000000",
            "sv:s:deadbeef00:danger",
            "rv:zzz",
            "garbage",
            "mu:5",
            "lg:fr",
            "ga:sub",
            "un:s:0000000000",
        ):
            before = len(server.answered_callbacks)
            server.push_callback(USER, data, message_id=999)
            await wait_until(lambda b=before: len(server.answered_callbacks) > b, 5, data)  # type: ignore[misc]
            text = server.answered_callbacks[-1].get("text", "")
            assert "out of date" in text or "gone already" in text, (data, text)
        assert not [c for c in server.calls if c.status >= 400], server.calls[-3:]

        # Still talking normally afterwards.
        hello = await server.ask(USER, "/start")
        assert "Floodwatch" in (hello.text or "")


async def test_an_error_in_a_handler_is_counted_logged_once_and_answered(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="telegram_bot")
    async with running_bot(tmp_path) as rb:
        await rb.bot_store.upsert_chat(USER, "private", "en")
        await rb.bot_store.subscribe(USER, station_id="rhein-mainz")
        await rb.readings.close()  # the readings store fails under the handler
        secret = "/my private words"
        answer = await rb.server.ask(USER, secret)
        assert "something went wrong" in (answer.text or "")
        await rb.readings.open()
        again = await rb.server.ask(USER, "/my")
        assert "Mainz" in (again.text or "")
    counted = {
        sample.labels["error"]: sample.value
        for family in rb.update_errors.registry.collect()
        for sample in family.samples
        if sample.name == "floodwatch_bot_internal_errors_total"
    }
    assert sum(counted.values()) == 1, counted
    lines = [r for r in caplog.records if "internal error on update" in r.getMessage()]
    assert len(lines) == 1
    assert lines[0].exc_info is None, "one line, no traceback"
    assert "private words" not in lines[0].getMessage(), "the user's text is never logged"


async def test_a_command_in_a_photo_caption_is_a_command(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """aiogram's Command filter reads captions: an admin command under a photo works like
    the text command, and anyone else gets the same polite refusal (it used to raise)."""
    caplog.set_level(logging.WARNING)
    async with running_bot(tmp_path) as rb:
        refused = await rb.server.ask(USER, photo=True, caption="/set rhein-mainz.mark-i=100")
        assert "for Floodwatch hydrologists only" in (refused.text or ""), refused.text
        shown = await rb.server.ask(
            ADMIN_ID, photo=True, caption="/thresholds rhein-mainz", user_id=ADMIN_ID
        )
        assert "mark-i" in (shown.text or "") or "475" in (shown.text or ""), shown.text
        overrides = await rb.alert_store.overrides()
    assert not overrides, "the refused /set changed nothing"
    assert not [r for r in caplog.records if r.exc_info], "no traceback"
    assert not [r for r in caplog.records if "internal error" in r.getMessage()]
