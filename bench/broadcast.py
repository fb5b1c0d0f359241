"""One danger alert to many subscribers through a local Bot API server.

The server (tests/harness/bot_api.py) enforces Telegram's documented limits (30 messages/s
overall, 1/s per chat, 20/min per group) and answers 429 when they are exceeded. The bot
is the real thing, `floodwatch run --components bot`, in a subprocess with the default
settings (25 messages/s). Prints the achieved rate against the limit (goal >= 90 %), the
429s received (goal 0) and the duplicates (must be 0). `--kill` kills the bot with SIGKILL
half-way through, at the worst moment (the server has carried out a send and holds its
answer back, so the bot dies not knowing), and starts it again; the restart time is left
out of the rate, and how the lost send was settled is printed.

    python bench/broadcast.py [--subscribers 10000] [--kill]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from alerts.store import AlertStore  # noqa: E402
from telegram_bot.store import BotStore  # noqa: E402
from tests.harness.alert_events import DANGER, event, state_after  # noqa: E402
from tests.harness.bot_api import TEST_TOKEN, BotApiServer  # noqa: E402
from tests.harness.gauges import write_catalog  # noqa: E402

RATE = 25.0  # FLOODWATCH_TELEGRAM_RATE_PER_S's default


def _bot(tmp: Path, server: BotApiServer, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOODWATCH_")}
    env.update(
        FLOODWATCH_STATE_PATH=str(tmp / "state.sqlite"),
        FLOODWATCH_STATIONS=str(tmp / "stations.yaml"),
        FLOODWATCH_TELEGRAM_TOKEN=TEST_TOKEN,
        FLOODWATCH_TELEGRAM_API_URL=server.url,
        FLOODWATCH_HTTP_PORT="0",
        FLOODWATCH_LOG_LEVEL="WARNING",
    )
    return subprocess.Popen(
        [sys.executable, "-m", "floodwatch.cli", "run", "--components", "bot"],
        cwd=ROOT,
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


async def _until(check: Callable[[], bool], step: float = 0.01) -> None:
    while True:
        if check():
            return
        await asyncio.sleep(step)


FIRST_CHAT = 100_000  # subscribers are private chats FIRST_CHAT, FIRST_CHAT + 1, ...


async def _subscribers(path: Path, count: int) -> None:
    store = BotStore(path)
    await store.open()
    now = int(time.time() * 1000)

    def fill(conn: object) -> None:
        db = conn  # sqlite3.Connection
        db.execute("BEGIN")  # type: ignore[attr-defined]
        db.executemany(  # type: ignore[attr-defined]
            "INSERT INTO bot_chats (chat_id, kind, language, active, dispatch, created_at_ms, "
            "updated_at_ms) VALUES (?, 'private', ?, 1, 0, ?, ?)",
            [(FIRST_CHAT + i, "ru" if i % 3 else "en", now, now) for i in range(count)],
        )
        db.executemany(  # type: ignore[attr-defined]
            "INSERT INTO bot_subscriptions (chat_id, target, station_id, river, min_severity, "
            "created_at_ms) VALUES (?, 'station:gauge-000', 'gauge-000', NULL, 'warning', ?)",
            [(FIRST_CHAT + i, now) for i in range(count)],
        )
        db.execute("COMMIT")  # type: ignore[attr-defined]

    await store._db.run(fill)
    await store.close()


async def main(count: int, kill: bool) -> int:
    with tempfile.TemporaryDirectory(prefix="fw-broadcast-") as name:
        tmp = Path(name)
        write_catalog(tmp / "stations.yaml", count=1)
        await _subscribers(tmp / "state.sqlite", count)
        alerts = AlertStore(tmp / "state.sqlite")
        await alerts.open()
        await alerts.register_channel("telegram")
        danger = event("gauge-000", threshold=DANGER, level=640.0)
        await alerts.commit("gauge-000", state_after([danger]), [danger])
        await alerts.close()
        async with BotApiServer(enforce_limits=True) as server:
            log = tmp / "bot.log"
            held = FIRST_CHAT + count // 2
            if kill:
                server.hold_answer(held, 3.0)
            bot = _bot(tmp, server, log)
            paused = 0.0
            killed_at = 0.0
            try:
                if kill:
                    await _until(lambda: any(s.chat_id == held for s in server.sent))
                    bot.send_signal(signal.SIGKILL)
                    killed_at = time.monotonic()
                    bot.wait()
                    at_kill = len(server.sent)
                    bot = _bot(tmp, server, log)
                    await _until(lambda: len(server.sent) > at_kill)
                    paused = server.sent[at_kill].at - server.sent[at_kill - 1].at
                    print(f"killed (SIGKILL) after {at_kill} messages")
                await _until(lambda: len({s.chat_id for s in server.sent}) >= count, 0.05)
                await asyncio.sleep(2.0)  # duplicates, if any, would show by now
            finally:
                bot.send_signal(signal.SIGTERM)
                try:
                    bot.wait(15)
                finally:
                    bot.kill()
            sent = [s for s in server.sent if s.method == "sendMessage"]
            span = sent[-1].at - sent[0].at - paused
            rate = (len(sent) - 1) / span if span > 0 else float("inf")
            per_chat = Counter(s.chat_id for s in sent)
            duplicates = sum(n - 1 for n in per_chat.values() if n > 1)
            print(f"subscribers: {count}, messages recorded: {len(sent)}")
            print(
                f"rate: {rate:.2f} msg/s against the limit {RATE:.0f} "
                f"({100 * rate / RATE:.1f} %, goal >= 90 %)"
                + (f"; restart gap {paused:.1f} s left out" if kill else "")
            )
            print(f"429 received: {server.count_429} (goal 0)")
            for call in server.calls:
                if call.status == 429:
                    print(f"  429 for chat {call.chat_id} ({call.method}) at {call.at:.2f}")
            if kill and server.count_429:
                print(f"  kill at {killed_at:.2f}")
            print(f"duplicates: {duplicates} (goal 0); chats missing: {count - len(per_chat)}")
            if kill:
                settled = [
                    c.chat_id
                    for c in server.calls
                    if c.method == "editMessageText" and "not modified" in c.description
                ]
                print(f"lost send to chat {held} settled as delivered: {settled == [held]}")
            return 0 if duplicates == 0 and len(per_chat) == count else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--subscribers", type=int, default=10_000)
    parser.add_argument("--kill", action="store_true", help="SIGKILL the bot half-way")
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.subscribers, args.kill)))
