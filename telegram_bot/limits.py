"""Telegram's sending limits, kept on our side so the Bot API never has to refuse.

* a global rate (FLOODWATCH_TELEGRAM_RATE_PER_S, default 25/s, under Telegram's ~30/s):
  sends are spaced 1/rate apart; `allow_paid_broadcast` raises it to Telegram's paid 1000/s;
* one message per second per chat, counted from when Telegram *answered* the previous one
  (it received it before that, so the spacing it sees is at least as long);
* 20 messages per minute per group chat (a sliding window, also from the answers);
* a `retry_after` pause: for the whole bot (Telegram does not say which limit it hit).

All times are `time.monotonic()` seconds; the clock is injectable for tests.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable

CHAT_INTERVAL_S = 1.0
GROUP_WINDOW_S = 60.0
GROUP_PER_WINDOW = 20
PAID_RATE_PER_S = 1000.0
# A little slack against clock granularity between us and the server.
SLACK_S = 0.02


class Limits:
    def __init__(
        self,
        rate_per_s: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        chat_interval_s: float = CHAT_INTERVAL_S,
        group_per_window: int = GROUP_PER_WINDOW,
        group_window_s: float = GROUP_WINDOW_S,
    ) -> None:
        if rate_per_s <= 0:
            raise ValueError("rate_per_s must be positive")
        self.interval = 1.0 / rate_per_s
        self._clock = clock
        self._chat_interval = chat_interval_s + SLACK_S
        self._group_max = group_per_window
        self._group_window = group_window_s + SLACK_S
        self._next_slot = 0.0
        self._last_request = 0.0
        self._paused_until = 0.0
        self._chat_last: dict[int, float] = {}
        self._chat_blocked: dict[int, float] = {}
        self._groups: dict[int, deque[float]] = {}

    def ready_at(self, chat_id: int, group: bool) -> float:
        """When the chat may get its next message (<= now: at once)."""
        at = self._chat_blocked.get(chat_id, 0.0)
        last = self._chat_last.get(chat_id)
        if last is not None:
            at = max(at, last + self._chat_interval)
        if group:
            window = self._groups.get(chat_id)
            if window is not None and len(window) >= self._group_max:
                at = max(at, window[-self._group_max] + self._group_window)
        return at

    def waiting(self, now: float) -> dict[int, float]:
        """Chats that must not get a message before the time given; forgets the past."""
        result: dict[int, float] = {}
        for chat_id in list(self._chat_last):
            ready = self.ready_at(chat_id, chat_id in self._groups)
            if ready > now:
                result[chat_id] = ready
            elif chat_id not in self._groups or not self._groups[chat_id]:
                self._chat_last.pop(chat_id, None)
                self._chat_blocked.pop(chat_id, None)
        for chat_id, until in list(self._chat_blocked.items()):
            if until > now:
                result[chat_id] = max(result.get(chat_id, 0.0), until)
            else:
                del self._chat_blocked[chat_id]
        for chat_id, window in list(self._groups.items()):
            while window and now - window[0] >= self._group_window:
                window.popleft()
            if not window:
                del self._groups[chat_id]
        return result

    async def slot(self) -> None:
        """Wait for the next global sending slot (and the end of any pause)."""
        while True:
            now = self._clock()
            at = max(now, self._next_slot, self._paused_until)
            if at <= now:
                self._next_slot = now + self.interval
                return
            await asyncio.sleep(at - now)

    async def spaced(self) -> None:
        """Right before a request: sends at least one interval apart. A slot is taken
        before the row's SQLite write; writes queued behind a long query would otherwise
        release their sends in a burst that Telegram's own window counts as too many."""
        now = self._clock()
        at = max(now, self._last_request + self.interval)
        self._last_request = at
        if at > now:
            await asyncio.sleep(at - now)

    def answered(self, chat_id: int, group: bool) -> None:
        """Telegram answered a send to this chat (whatever the answer)."""
        now = self._clock()
        self._chat_last[chat_id] = now
        if group:
            self._groups.setdefault(chat_id, deque()).append(now)

    def pause(self, seconds: float, chat_id: int | None = None) -> None:
        """Honour a `retry_after`: nothing at all for `seconds` (and not to that chat)."""
        until = self._clock() + seconds
        self._paused_until = max(self._paused_until, until)
        if chat_id is not None:
            self._chat_blocked[chat_id] = max(self._chat_blocked.get(chat_id, 0.0), until)

    @property
    def paused_for(self) -> float:
        return max(0.0, self._paused_until - self._clock())
