"""Alert delivery to Telegram through aiogram's real HTTP session and a local Bot API server.

The outbox is filled with AlertStore.commit as the engine would; subscribers are set up
with BotStore; what Telegram "received" is read from the server's records.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import itertools
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from alerts.events import AlertEvent, EventKind
from alerts.store import AlertStore
from alerts.templates import render
from floodwatch.catalog import Catalog, load_catalog
from floodwatch.settings import Settings, load_settings
from telegram_bot.delivery import TelegramDelivery
from telegram_bot.store import BotStore
from tests.harness.alert_events import DANGER, WATCH, event, state_after
from tests.harness.bot_api import TEST_TOKEN, BotApiServer, Sent
from tests.harness.gauges import write_catalog
from tests.harness.mosquitto import MosquittoServer

ROOT = Path(__file__).resolve().parents[2]


class World:
    def __init__(self, tmp: Path, server: BotApiServer) -> None:
        self.tmp = tmp
        self.server = server
        self.catalog_path = tmp / "stations.yaml"
        write_catalog(self.catalog_path, count=3)
        self.catalog: Catalog = load_catalog(self.catalog_path)
        self.state = tmp / "state.sqlite"
        self.alerts = AlertStore(self.state)
        self.bot_store = BotStore(self.state)
        self.deliveries: list[TelegramDelivery] = []

    def settings(self, **overrides: object) -> Settings:
        values: dict[str, object] = {
            "state_path": self.state,
            "stations": self.catalog_path,
            "telegram_token": TEST_TOKEN,
            "telegram_api_url": self.server.url,
        }
        values.update(overrides)
        return load_settings(**values)

    def env(self, **overrides: str) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items() if not key.startswith("FLOODWATCH_")}
        env.update(
            FLOODWATCH_STATE_PATH=str(self.state),
            FLOODWATCH_STATIONS=str(self.catalog_path),
            FLOODWATCH_TELEGRAM_TOKEN=TEST_TOKEN,
            FLOODWATCH_TELEGRAM_API_URL=self.server.url,
            FLOODWATCH_HTTP_PORT="0",
            FLOODWATCH_LOG_LEVEL="WARNING",
        )
        env.update(overrides)
        return env

    async def delivery(self, **overrides: object) -> TelegramDelivery:
        delivery = TelegramDelivery(
            self.settings(**overrides),
            catalog_source=lambda: self.catalog,
            poll_s=0.05,
            backoff_s=(0.1, 0.4),
        )
        await delivery.start()
        self.deliveries.append(delivery)
        return delivery

    async def subscribers(
        self, chat_ids: list[int], *, language: str = "en", severity: str = "watch"
    ) -> None:
        for chat_id in chat_ids:
            kind = "private" if chat_id > 0 else "supergroup"
            await self.bot_store.upsert_chat(chat_id, kind, language)
            await self.bot_store.subscribe(chat_id, min_severity=severity)

    async def commit(self, *events: AlertEvent) -> None:
        for item in events:
            await self.alerts.commit(item.station_id, state_after([item]), [item])

    def text(self, item: AlertEvent, language: str = "en") -> str:
        station = self.catalog[item.station_id]
        return render(item, station, language, station.zone("UTC"))

    async def rows(self) -> list[tuple[int, int, str, int, str | None]]:
        return await self.bot_store._db.run(  # the table as the operator would query it
            lambda conn: conn.execute(
                "SELECT seq, chat_id, status, attempts, last_error FROM telegram_deliveries "
                "ORDER BY seq, chat_id"
            ).fetchall()
        )


@contextlib.asynccontextmanager
async def open_world(tmp_path: Path, *, enforce_limits: bool) -> AsyncIterator[World]:
    async with BotApiServer(enforce_limits=enforce_limits) as server:
        state = World(tmp_path, server)
        await state.alerts.open()
        await state.bot_store.open()
        try:
            yield state
        finally:
            for delivery in state.deliveries:
                await delivery.stop()
            await state.bot_store.close()
            await state.alerts.close()


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    async with open_world(tmp_path, enforce_limits=True) as state:
        yield state


async def until(check: Callable[[], bool | Awaitable[bool]], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        outcome = check()
        if inspect.isawaitable(outcome):
            outcome = await outcome
        if outcome:
            return
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


def messages(server: BotApiServer) -> list[Sent]:
    return [sent for sent in server.sent if sent.method == "sendMessage"]


def assert_chat_spacing(server: BotApiServer) -> None:
    """Never two messages to one chat within a second (as the server saw them)."""
    last: dict[int, float] = {}
    for sent in messages(server):
        if sent.chat_id in last:
            assert sent.at - last[sent.chat_id] >= 1.0, f"chat {sent.chat_id} within 1 s"
        last[sent.chat_id] = sent.at


async def test_broadcast_within_limits_danger_first(world: World) -> None:
    chats = [*range(1, 41), -1001, -1002]
    await world.subscribers(chats)
    await world.alerts.register_channel("telegram")  # the bot existed before these events
    watch = event("gauge-001", threshold=WATCH)
    danger = event("gauge-002", minutes=1, threshold=DANGER, level=612.0)
    await world.commit(watch, danger)  # both pending at once: danger goes first

    await world.delivery()
    await until(lambda: len(messages(world.server)) == 2 * len(chats))
    await asyncio.sleep(0.3)  # nothing more comes

    sent = messages(world.server)
    assert len(sent) == 2 * len(chats)
    assert world.server.count_429 == 0
    assert_chat_spacing(world.server)
    per_chat = Counter((s.chat_id, s.text) for s in sent)
    assert set(per_chat.values()) == {1}
    texts = [s.text for s in sent]
    assert set(texts) == {world.text(watch), world.text(danger)}
    last_danger = max(i for i, s in enumerate(sent) if s.text == world.text(danger))
    first_watch = min(i for i, s in enumerate(sent) if s.text == world.text(watch))
    assert last_danger < first_watch
    assert all(s.params.get("parse_mode") == "HTML" for s in sent)
    assert {row[2] for row in await world.rows()} == {"sent"}


async def test_messages_in_each_chats_language(world: World) -> None:
    await world.subscribers([1], language="ru")
    await world.subscribers([2], language="en")
    await world.delivery()
    danger = event("gauge-000", threshold=DANGER, level=640.0)
    await world.commit(danger)
    await until(lambda: len(messages(world.server)) == 2)
    by_chat = {s.chat_id: s.text for s in messages(world.server)}
    assert by_chat == {1: world.text(danger, "ru"), 2: world.text(danger, "en")}
    assert by_chat[1] != by_chat[2]


async def test_new_channel_never_sends_old_events(world: World) -> None:
    await world.subscribers([1, 2])
    await world.commit(event("gauge-000", threshold=DANGER, level=650.0))  # before the bot
    await world.delivery()
    fresh = event("gauge-001", minutes=5, threshold=WATCH)
    await world.commit(fresh)
    await until(lambda: len(messages(world.server)) == 2)
    await asyncio.sleep(0.5)
    assert [s.text for s in messages(world.server)] == [world.text(fresh)] * 2


async def test_retry_after_is_honoured(world: World) -> None:
    await world.subscribers([1, 2, 3])
    delivery = await world.delivery()
    world.server.fail_next(2, 429, retry_after=1)
    await world.commit(event("gauge-000", threshold=WATCH))
    await until(lambda: len(messages(world.server)) == 3)
    refused = [c for c in world.server.calls if c.status == 429]
    assert len(refused) == 2
    sends = [c for c in world.server.calls if c.method == "sendMessage"]
    # The refused chat hears nothing within retry_after of its 429 ...
    for call in refused:
        again = [c for c in sends if c.chat_id == call.chat_id and c.at > call.at]
        assert again[0].at - call.at >= 1.0
    # ... and the whole bot paused: sends already in flight when the 429 came back can
    # still arrive, then there is a pause of about retry_after.
    gaps = [b.at - a.at for a, b in itertools.pairwise(sends) if a.at >= refused[0].at]
    assert max(gaps) >= 0.8
    assert Counter(s.chat_id for s in messages(world.server)) == {1: 1, 2: 1, 3: 1}
    assert delivery.metrics.retry_after._value.get() == 2
    assert {(row[2], row[3]) for row in await world.rows()} == {("sent", 1)}


async def test_blocked_chat_is_deactivated(world: World) -> None:
    await world.subscribers([1, 2, 3])
    world.server.block(2)
    delivery = await world.delivery()
    await world.commit(event("gauge-000", threshold=WATCH))
    await until(lambda: len(messages(world.server)) == 2)
    await until(lambda: delivery.metrics.deactivated._value.get() == 1)
    chat = await world.bot_store.chat(2)
    assert chat is not None
    assert not chat.active
    rows = {row[1]: row for row in await world.rows()}
    assert rows[2][2] == "failed"
    assert "blocked" in (rows[2][4] or "")
    # A deactivated chat is not a recipient of the next alert.
    await world.commit(event("gauge-001", minutes=3, threshold=DANGER, level=620.0))
    await until(lambda: len(messages(world.server)) == 4)
    await asyncio.sleep(0.3)
    assert all(s.chat_id != 2 for s in messages(world.server))
    assert sum(1 for c in world.server.calls if c.chat_id == 2) == 1


async def test_server_errors_retried_then_counted_as_failed(world: World) -> None:
    await world.subscribers([1, 2, 3])
    world.server.fail_next(2, 500)  # transient: both retried and delivered
    world.server.fail_chat(3, 500)  # never works: failed after the attempts
    delivery = await world.delivery(telegram_max_attempts=3)
    await world.commit(event("gauge-000", threshold=WATCH))

    async def settled() -> bool:
        states = {row[1]: row[2:4] for row in await world.rows()}
        sent = all(states.get(chat, ("",))[0] == "sent" for chat in (1, 2))
        return sent and states.get(3) == ("failed", 3)

    # The rows, not the counters: the test waits for what it then reads.
    await until(settled)
    await until(lambda: delivery.metrics.failed.labels("attempts")._value.get() == 1)
    await until(lambda: {s.chat_id for s in messages(world.server)} == {1, 2})
    rows = {row[1]: row for row in await world.rows()}
    assert rows[3][2:4] == ("failed", 3)
    assert "500" in (rows[3][4] or "")
    assert {rows[1][2], rows[2][2]} == {"sent"}
    assert Counter(s.chat_id for s in messages(world.server)) == {1: 1, 2: 1}
    assert sum(1 for c in world.server.calls if c.chat_id == 3) == 3


async def test_paid_broadcast_passes_the_flag(world: World) -> None:
    await world.subscribers([1])
    await world.delivery(telegram_allow_paid_broadcast=True)
    await world.commit(event("gauge-000", threshold=WATCH))
    sent = await world.server.wait_for(lambda s: s.method == "sendMessage")
    assert str(sent.params.get("allow_paid_broadcast")).lower() == "true"


async def test_operator_events_reach_dispatch_chats_only(world: World) -> None:
    await world.subscribers([1, -500])
    await world.bot_store.set_dispatch(-500, True)
    await world.delivery()
    offline = event("gauge-000", EventKind.OFFLINE, threshold=None, level=None, detail="3 h")
    await world.commit(offline)
    await until(lambda: len(messages(world.server)) == 1)
    await asyncio.sleep(0.3)
    assert [s.chat_id for s in messages(world.server)] == [-500]


def _start_bot(world: World, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "floodwatch.cli", "run", "--components", "bot"],
        cwd=ROOT,
        env=world.env(),
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


async def test_kill_mid_broadcast_then_restart_delivers_each_once(world: World) -> None:
    """`floodwatch run --components bot` killed by SIGKILL in the middle of a broadcast."""
    chats = list(range(1, 121))
    await world.subscribers(chats)
    await world.alerts.register_channel("telegram")
    danger = event("gauge-000", threshold=DANGER, level=633.0)
    await world.commit(danger)
    log = world.tmp / "bot.log"
    # The 40th message goes out, and its answer is held until the bot is dead.
    held = 40
    world.server.hold_answer(held, 3.0)
    first = _start_bot(world, log)
    try:
        await until(lambda: held in {s.chat_id for s in messages(world.server)}, timeout=30)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        first.kill()
    at_kill = len(messages(world.server))
    second = _start_bot(world, log)
    try:
        await until(lambda: {s.chat_id for s in messages(world.server)} == set(chats), 60)
        await asyncio.sleep(1.5)  # anything sent twice would show by now
    finally:
        second.send_signal(signal.SIGTERM)
        try:
            second.wait(15)
        finally:
            second.kill()
    counts = Counter(s.chat_id for s in messages(world.server))
    duplicates = {chat: n for chat, n in counts.items() if n > 1}
    print(f"killed after {at_kill} messages; duplicates after restart: {duplicates}")
    assert 40 <= at_kill < len(chats), log.read_text()
    assert set(counts) == set(chats)
    # The kill comes right after the server recorded a message, the worst moment: that
    # message's answer is lost, and the restarted bot must settle it, not repeat it.
    assert duplicates == {}
    # It was settled by asking Telegram: the held message exists, unchanged.
    probes = [c for c in world.server.calls if c.method == "editMessageText"]
    assert [c.chat_id for c in probes if "not modified" in c.description] == [held]
    assert world.server.count_429 == 0
    assert_chat_spacing(world.server)  # a repeat comes after the restart, > 1 s later
    statuses = Counter(row[2] for row in await world.rows())
    assert statuses == {"sent": len(chats)}


async def test_run_alerts_and_bot_in_one_process(world: World, mosquitto: MosquittoServer) -> None:
    """`floodwatch run --components alerts bot`: the bot shares the engine's outbox store;
    an event committed to the outbox (here by another writer) reaches the subscribers."""
    await world.subscribers([1, 2])
    log = world.tmp / "run.log"
    env = world.env(
        FLOODWATCH_MQTT_URL=mosquitto.url,
        FLOODWATCH_READINGS_PATH=str(world.tmp / "readings.sqlite"),
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "floodwatch.cli", "run", "--components", "alerts", "bot"],
        cwd=ROOT,
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )
    try:
        # The channel registers at start; wait for it before committing.
        async def registered() -> bool:
            rows = await world.alerts._db.run(
                lambda conn: conn.execute("SELECT 1 FROM alert_channels").fetchall()
            )
            return bool(rows)

        deadline = time.monotonic() + 20
        while not await registered():
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            await asyncio.sleep(0.1)
        danger = event("gauge-000", threshold=DANGER, level=650.0)
        await world.commit(danger)
        await until(lambda: len(messages(world.server)) == 2, timeout=20)
        assert {s.chat_id for s in messages(world.server)} == {1, 2}
        assert {s.text for s in messages(world.server)} == {world.text(danger)}
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            assert process.wait(20) == 0, log.read_text()
        finally:
            process.kill()
