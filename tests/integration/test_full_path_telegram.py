"""The whole path: a gauge publishes to the real broker → collector → alert engine →
outbox → Telegram (aiogram's real session, local Bot API server). Only the chats
subscribed to that gauge get the message; one `floodwatch run` process runs it all."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

from floodwatch.models import utc_now
from floodwatch.settings import MqttEndpoint
from telegram_bot.store import BotStore
from tests.harness.bot_api import TEST_TOKEN, BotApiServer
from tests.harness.gauges import Sample, publish, write_catalog
from tests.harness.mosquitto import MosquittoServer

ROOT = Path(__file__).resolve().parents[2]


async def test_reading_to_telegram_for_subscribed_chats_only(
    tmp_path: Path, mosquitto: MosquittoServer
) -> None:
    catalog = tmp_path / "stations.yaml"
    write_catalog(catalog, count=2)
    state = tmp_path / "state.sqlite"
    bot_store = BotStore(state)
    await bot_store.open()
    await bot_store.upsert_chat(101, "private", "en")
    await bot_store.subscribe(101, station_id="gauge-000", min_severity="watch")
    await bot_store.upsert_chat(202, "private", "ru")
    await bot_store.subscribe(202, station_id="gauge-001", min_severity="watch")
    await bot_store.close()
    env = {key: value for key, value in os.environ.items() if not key.startswith("FLOODWATCH_")}
    async with BotApiServer(enforce_limits=True) as server:
        env.update(
            FLOODWATCH_MQTT_URL=mosquitto.url,
            FLOODWATCH_STATIONS=str(catalog),
            FLOODWATCH_STATE_PATH=str(state),
            FLOODWATCH_READINGS_PATH=str(tmp_path / "readings.sqlite"),
            FLOODWATCH_SPOOL_PATH=str(tmp_path / "spool.sqlite"),
            FLOODWATCH_TELEGRAM_TOKEN=TEST_TOKEN,
            FLOODWATCH_TELEGRAM_API_URL=server.url,
            FLOODWATCH_HTTP_PORT="0",
            FLOODWATCH_LOG_LEVEL="WARNING",
        )
        log = tmp_path / "run.log"
        process = subprocess.Popen(
            [sys.executable, "-m", "floodwatch.cli", "run"],
            cwd=ROOT,
            env=env,
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
        )
        try:
            # The bot polls getUpdates once everything has started.
            deadline = time.monotonic() + 30
            while not any(call.method == "getUpdates" for call in server.calls):
                assert process.poll() is None, log.read_text()
                assert time.monotonic() < deadline, log.read_text()
                await asyncio.sleep(0.1)
            # 12 cm every 5 minutes: a fast but real rise (QC allows 200 cm/h), 380 → 620 cm.
            rise = [380 + 12 * step for step in range(21)]
            start = utc_now() - timedelta(minutes=5 * len(rise) + 5)
            samples = [
                Sample("gauge-000", start + timedelta(minutes=5 * i), level)
                for i, level in enumerate(rise)
            ]
            await publish(MqttEndpoint.parse(mosquitto.url), samples)
            deadline = time.monotonic() + 30
            while len({s.text for s in server.sent if s.method == "sendMessage"}) < 2:
                assert process.poll() is None, log.read_text()
                assert time.monotonic() < deadline, (server.sent, log.read_text())
                await asyncio.sleep(0.1)
            await asyncio.sleep(1.5)  # anything wrongly routed would arrive by now
            sent = [s for s in server.sent if s.method == "sendMessage"]
            assert {s.chat_id for s in sent} == {101}
            texts = [s.text or "" for s in sent]
            assert any("Watch" in text for text in texts)
            assert any("Danger" in text for text in texts)
            assert all("gauge-000" in text for text in texts)
            assert len(texts) == len(set(texts))  # each alert once
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                assert process.wait(30) == 0, log.read_text()
            finally:
                process.kill()
