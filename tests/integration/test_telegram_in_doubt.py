"""Sends whose answer was lost, and groups that became supergroups.

A send in doubt (the bot died, or the connection broke after the request went out) is
settled by asking the local Bot API server, which numbers messages as Telegram does
(one sequence for private chats, per chat for supergroups), whether the message exists.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession

from tests.harness.alert_events import DANGER, event
from tests.harness.bot_api import TEST_TOKEN
from tests.integration.test_telegram_delivery import World, messages, open_world, until

SEQ = 9001  # a delivery made by the bot store directly, outside the outbox's numbering
TEXT = "<b>Danger</b> at Gauge 7: 6.40 m and rising"


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    async with open_world(tmp_path, enforce_limits=False) as state:
        yield state


@pytest.fixture
async def earlier_process(world: World) -> AsyncIterator[Bot]:
    """The bot process that died: it talked to the same server with the same token."""
    bot = Bot(TEST_TOKEN, session=AiohttpSession(api=world.server.api))
    yield bot
    await bot.session.close()


async def pending(world: World, chat_id: int, floor: int | None) -> None:
    """A row whose send began (floor recorded) and whose answer never got recorded."""
    chat = await world.bot_store.upsert_chat(chat_id, "private", "en")
    await world.bot_store.subscribe(chat_id, min_severity="watch")
    await world.bot_store.fan_out(SEQ, 3, [chat], {"en": TEXT})
    await world.bot_store.mark_sending(SEQ, chat_id, floor)


async def status_of(world: World, chat_id: int) -> tuple[str, int | None]:
    rows = await world.bot_store._db.run(
        lambda conn: conn.execute(
            "SELECT status, message_id FROM telegram_deliveries WHERE seq = ? AND chat_id = ?",
            (SEQ, chat_id),
        ).fetchall()
    )
    return rows[0][0], rows[0][1]


async def marked_sent(world: World, chat_id: int) -> None:
    """The server records a message before the bot has its answer: wait for the mark."""
    for _ in range(500):
        if (await status_of(world, chat_id))[0] == "sent":
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"chat {chat_id}'s row never marked sent")


def sends_to(world: World, chat_id: int) -> list[str | None]:
    return [s.text for s in messages(world.server) if s.chat_id == chat_id]


async def test_delivered_before_the_crash_is_found_and_not_sent_again(
    world: World, earlier_process: Bot
) -> None:
    floor = (await earlier_process.send_message(1, "an earlier reply")).message_id
    # Between the floor and the alert: other chats' messages and a resident's own message.
    await earlier_process.send_message(2, "an alert to another chat")
    world.server.push_message(7, "hello")
    sent = await earlier_process.send_message(7, TEXT, parse_mode="HTML")
    await earlier_process.send_message(3, "another chat again")
    await pending(world, 7, floor)

    delivery = await world.delivery()
    await until(lambda: delivery.metrics.in_doubt.labels("delivered")._value.get() == 1)

    await marked_sent(world, 7)
    assert sends_to(world, 7) == [TEXT]  # the one from before the crash, no repeat
    assert await status_of(world, 7) == ("sent", sent.message_id)
    probes = [c for c in world.server.calls if c.method == "editMessageText"]
    assert [c.description.split(":")[0] for c in probes][-1] == "message is not modified"
    assert all(c.chat_id == 7 for c in probes)
    edited = [s for s in world.server.sent if s.method == "editMessageText"]
    assert edited == []  # settling changed nothing anyone can see


async def test_not_delivered_before_the_crash_is_sent_once(
    world: World, earlier_process: Bot
) -> None:
    floor = (await earlier_process.send_message(1, "an earlier reply")).message_id
    await earlier_process.send_message(2, "an alert to another chat")
    await pending(world, 7, floor)  # the process died before its request went out

    delivery = await world.delivery()
    await until(lambda: len(sends_to(world, 7)) == 1)
    await until(lambda: delivery.metrics.in_doubt.labels("not_found")._value.get() == 1)

    assert sends_to(world, 7) == [TEXT]
    await marked_sent(world, 7)
    status, message_id = await status_of(world, 7)
    assert status == "sent"
    assert message_id is not None
    assert message_id > floor


async def test_lost_answer_is_settled_on_the_retry(world: World) -> None:
    await world.subscribers([4, 5, 6])
    await world.alerts.register_channel("telegram")
    world.server.lose_answers(5)  # sent and recorded by the server, answer never arrives
    delivery = await world.delivery()
    danger = event("gauge-000", threshold=DANGER, level=633.0)
    await world.commit(danger)
    await until(lambda: delivery.metrics.in_doubt.labels("delivered")._value.get() == 1)

    counts = Counter(s.chat_id for s in messages(world.server))
    assert counts == {4: 1, 5: 1, 6: 1}
    for _ in range(500):  # the last answers may still be on their way to the marks
        if {row[2] for row in await world.rows()} == {"sent"}:
            break
        await asyncio.sleep(0.02)
    assert {row[2] for row in await world.rows()} == {"sent"}
    assert delivery.metrics.retried.labels("error")._value.get() == 1


async def test_no_floor_known_sends_again(world: World, earlier_process: Bot) -> None:
    """The documented fallback: with no message id seen before the send (a brand-new bot
    whose very first send was cut off), nothing can be looked up, so it is sent again."""
    await earlier_process.send_message(7, TEXT, parse_mode="HTML")
    await pending(world, 7, None)

    delivery = await world.delivery()
    await until(lambda: len(sends_to(world, 7)) == 2)
    assert delivery.metrics.in_doubt.labels("no_floor")._value.get() == 1
    await marked_sent(world, 7)


async def test_group_upgraded_to_supergroup_gets_the_alert_at_its_new_id(world: World) -> None:
    old, new = -4001, -1004001
    await world.bot_store.upsert_chat(old, "group", "ru")
    await world.bot_store.subscribe(old, min_severity="warning")
    await world.bot_store.set_dispatch(old, True)
    await world.alerts.register_channel("telegram")
    world.server.migrate(old, new)
    delivery = await world.delivery()
    danger = event("gauge-000", threshold=DANGER, level=640.0)
    await world.commit(danger)

    await until(lambda: len(sends_to(world, new)) == 1)
    assert sends_to(world, new) == [world.text(danger, "ru")]
    assert sends_to(world, old) == []
    moved = await world.bot_store.chat(new)
    assert moved is not None
    assert moved.dispatch
    assert moved.kind == "supergroup"
    assert moved.language == "ru"
    assert [s.min_severity for s in await world.bot_store.subscriptions(new)] == ["warning"]
    assert await world.bot_store.subscriptions(old) == []
    gone = await world.bot_store.chat(old)
    assert gone is not None
    assert not gone.active
    assert delivery.metrics.migrated._value.get() == 1


async def test_a_429_while_settling_pauses_then_settles(world: World, earlier_process: Bot) -> None:
    floor = (await earlier_process.send_message(1, "an earlier reply")).message_id
    sent = await earlier_process.send_message(7, TEXT, parse_mode="HTML")
    await pending(world, 7, floor)
    world.server.fail_next(1, 429, retry_after=1, methods=["editMessageText"])

    delivery = await world.delivery()
    await until(lambda: delivery.metrics.in_doubt.labels("delivered")._value.get() == 1)
    await marked_sent(world, 7)

    assert sends_to(world, 7) == [TEXT]
    assert await status_of(world, 7) == ("sent", sent.message_id)
    refused = [c for c in world.server.calls if c.status == 429]
    assert [c.method for c in refused] == ["editMessageText"]
    # The retry_after paused all sending: the next probe came a second later at the least.
    probes = [c for c in world.server.calls if c.method == "editMessageText"]
    assert probes[1].at - probes[0].at >= 1.0
