"""Sending alert messages to Telegram, within its limits, exactly once where it can be.

The sender takes pending `telegram_deliveries` rows (made by the "telegram" outbox
channel, telegram_bot/channel.py) and sends them with aiogram's real `Bot`:

* **Order.** Per chat its next row (highest priority, then oldest); across chats danger
  before warning before watch before the rest, then by outbox seq.
* **Limits** (telegram_bot/limits.py): the global rate, one message per second per chat,
  20 per minute per group, and at most one message in flight per chat.
* **No repeats.** Before each send the row records the chat's message id floor; OK → the
  row is marked `sent` with Telegram's message id. A row found with a floor and no answer
  (the bot died mid-send, or the connection failed after the request went out) is settled
  first by asking Telegram whether the message exists (telegram_bot/in_doubt.py), and is
  sent only if it does not.
* **Answers.** 429 → everything waits `retry_after` and the same row is sent again (not
  counted as an attempt). 403 (blocked, kicked) or 400 "chat not found" → the chat is
  deactivated and its pending rows marked `failed` with the reason. Another 400 → that
  row `failed` (sending it again cannot help). "Migrated to a supergroup" → the chat's
  subscriptions and pending messages move to the new id and go out there. Anything else
  (5xx, network, timeout) → retried with backoff (2 s doubling to 5 min), settled as
  above first, `failed` after FLOODWATCH_TELEGRAM_MAX_ATTEMPTS attempts. Every failure is counted
  (`floodwatch_telegram_failed_total{reason}`) and kept in the table with its last error;
  nothing is dropped silently.

`TelegramDelivery` puts the channel, a dispatcher for it and the sender together as the
delivery half of the `bot` component of `floodwatch run`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from aiogram import Bot
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramMigrateToChat,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramUnauthorizedError,
)
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

from alerts.channels.metrics import DispatchMetrics
from alerts.dispatch import Dispatcher
from alerts.store import AlertStore
from floodwatch.catalog import Catalog, load_catalog
from floodwatch.errors import StoreUnavailable
from floodwatch.models import utc_now
from floodwatch.settings import Settings
from floodwatch.watchdog import task_ended
from telegram_bot.bot import create_bot
from telegram_bot.channel import TelegramChannel
from telegram_bot.in_doubt import settle
from telegram_bot.limits import PAID_RATE_PER_S, Limits
from telegram_bot.message_ids import FloorMiddleware, MessageIdFloor
from telegram_bot.store import BotStore, Delivery

log = logging.getLogger(__name__)

MAX_IN_FLIGHT = 8  # messages in flight overall (always at most one per chat)
POLL_S = 1.0
BACKOFF_MIN_S = 2.0
BACKOFF_MAX_S = 300.0
UNAUTHORIZED_PAUSE_S = 60.0
STOP_WAIT_S = 10.0
MARK_TRIES = 5


class SenderMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.sent = Counter(
            "floodwatch_telegram_sent", "Alert messages Telegram accepted", registry=r
        )
        self.failed = Counter(
            "floodwatch_telegram_failed",
            "Alert messages given up (kept in telegram_deliveries with the reason)",
            ["reason"],
            registry=r,
        )
        self.retried = Counter(
            "floodwatch_telegram_retried",
            "Sends that failed and will be tried again, by reason",
            ["reason"],
            registry=r,
        )
        self.retry_after = Counter(
            "floodwatch_telegram_retry_after",
            "429 answers (Too Many Requests) honoured",
            registry=r,
        )
        self.deactivated = Counter(
            "floodwatch_telegram_deactivated",
            "Chats deactivated because they blocked the bot or are gone",
            registry=r,
        )
        self.in_doubt = Counter(
            "floodwatch_telegram_in_doubt",
            "Sends whose answer was lost, settled by asking Telegram, by outcome "
            "(delivered: not sent again; not_found / no_floor: sent)",
            ["outcome"],
            registry=r,
        )
        self.migrated = Counter(
            "floodwatch_telegram_migrated", "Groups that became supergroups", registry=r
        )
        self.in_flight = Gauge(
            "floodwatch_telegram_in_flight", "Messages sent, not yet answered", registry=r
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)


class Sender:
    def __init__(
        self,
        store: BotStore,
        bot: Bot,
        *,
        rate_per_s: float = 25.0,
        allow_paid_broadcast: bool = False,
        max_attempts: int = 5,
        metrics: SenderMetrics | None = None,
        floor: MessageIdFloor | None = None,
        max_in_flight: int = MAX_IN_FLIGHT,
        poll_s: float = POLL_S,
        backoff_s: tuple[float, float] = (BACKOFF_MIN_S, BACKOFF_MAX_S),
    ) -> None:
        self.store = store
        self.bot = bot
        self.paid = allow_paid_broadcast
        self.limits = Limits(PAID_RATE_PER_S if allow_paid_broadcast else rate_per_s)
        self.max_attempts = max_attempts
        self.metrics = metrics or SenderMetrics()
        self.floor = floor or MessageIdFloor()
        self._batch = max(20, round(2 * min(rate_per_s, 100.0)))
        self._slots = asyncio.Semaphore(max_in_flight)
        self._poll_s = poll_s
        self._backoff_min, self._backoff_max = backoff_s
        self._in_flight: dict[int, asyncio.Task[None]] = {}
        self._wakeup = asyncio.Event()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.last_error: str | None = None

    async def start(self) -> None:
        self._stopping.clear()
        self._task = asyncio.create_task(self._run(), name="telegram-sender")

    async def stop(self) -> None:
        """Stop taking rows; let the messages in flight be answered and marked."""
        self._stopping.set()
        self.wake()
        if self._task is not None:
            # It may be waiting out a retry_after: no new send starts anyway.
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        tasks = list(self._in_flight.values())
        if tasks:
            _done, late = await asyncio.wait(tasks, timeout=STOP_WAIT_S)
            for task in late:
                task.cancel()

    def wake(self) -> None:
        self._wakeup.set()

    def health(self) -> dict[str, Any]:
        running = self._task is not None and not self._task.done()
        return {
            "sender": "running" if running else "stopped",
            "in_flight": len(self._in_flight),
            "paused_for_s": round(self.limits.paused_for, 1),
            "last_error": self.last_error,
        }

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def failure(self) -> str | None:
        return None if self._stopping.is_set() else task_ended([self._task])

    # ----- the loop ----------------------------------------------------------------------

    async def _run(self) -> None:
        while not self._stopping.is_set():
            self._wakeup.clear()
            now = time.monotonic()
            waiting = self.limits.waiting(now)
            busy = set(self._in_flight) | set(waiting)
            try:
                rows = await self.store.due(utc_now(), sorted(busy), self._batch)
            except Exception as exc:  # StoreUnavailable, or closed under us
                self.last_error = f"bot store: {exc}"
                log.error("cannot read pending telegram deliveries: %s", exc)
                await self._sleep(self._poll_s)
                continue
            launched = 0
            for row in rows:
                if self._stopping.is_set():
                    break
                group = row.kind in ("group", "supergroup")
                if row.chat_id in self._in_flight:
                    continue
                if self.limits.ready_at(row.chat_id, group) > time.monotonic():
                    continue
                await self._slots.acquire()
                try:
                    await self.limits.slot()
                except BaseException:
                    self._slots.release()
                    raise
                if self._stopping.is_set():
                    self._slots.release()
                    break
                task = asyncio.create_task(self._send(row, group))
                self._in_flight[row.chat_id] = task
                self.metrics.in_flight.set(len(self._in_flight))
                launched += 1
            if launched == 0:
                await self._idle(waiting)

    async def _idle(self, waiting: dict[int, float]) -> None:
        delay = self._poll_s
        if waiting:
            delay = min(delay, max(0.01, min(waiting.values()) - time.monotonic()))
        if self._in_flight:
            delay = min(delay, 0.05)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wakeup.wait(), delay)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    # ----- one message -------------------------------------------------------------------

    async def _send(self, row: Delivery, group: bool) -> None:
        try:
            await self._attempt(row, group)
        except Exception:
            log.exception("telegram delivery of seq %d to %d failed", row.seq, row.chat_id)
        finally:
            self._in_flight.pop(row.chat_id, None)
            self.metrics.in_flight.set(len(self._in_flight))
            self._slots.release()
            self.wake()

    async def _attempt(self, row: Delivery, group: bool) -> None:
        try:
            if row.probe_from is not None and await self._settled(row):
                self.limits.answered(row.chat_id, group)
                return
            await self._mark(
                self.store.mark_sending, row.seq, row.chat_id, self.floor.floor(row.chat_id)
            )
            await self.limits.spaced()
            message = await self.bot.send_message(
                row.chat_id,
                row.text,
                parse_mode="HTML",
                allow_paid_broadcast=True if self.paid else None,
            )
        except TelegramRetryAfter as exc:
            self.limits.answered(row.chat_id, group)
            self.limits.pause(exc.retry_after, row.chat_id)
            self.metrics.retry_after.inc()
            log.warning("telegram asks to wait %d s (chat %d)", exc.retry_after, row.chat_id)
            await self._mark(
                self.store.mark_retry, row.seq, row.chat_id, str(exc), utc_now(), count=False
            )
            return
        except TelegramForbiddenError as exc:
            self.limits.answered(row.chat_id, group)
            await self._gone(row, f"forbidden: {exc.message}")
            return
        except TelegramMigrateToChat as exc:
            self.limits.answered(row.chat_id, group)
            log.info("chat %d became supergroup %d", row.chat_id, exc.migrate_to_chat_id)
            self.metrics.migrated.inc()
            await self._mark(self.store.migrate_chat, row.chat_id, exc.migrate_to_chat_id)
            return
        except TelegramBadRequest as exc:
            self.limits.answered(row.chat_id, group)
            if "chat not found" in exc.message.lower():
                await self._gone(row, f"bad request: {exc.message}")
            else:
                log.error("telegram refused seq %d to %d: %s", row.seq, row.chat_id, exc.message)
                await self._mark(
                    self.store.mark_failed, row.seq, row.chat_id, f"bad request: {exc.message}"
                )
                # Counted once recorded, so a reader of the metric finds the row settled.
                self.metrics.failed.labels("bad_request").inc()
            return
        except TelegramUnauthorizedError as exc:
            self.last_error = f"unauthorized: {exc.message}"
            log.error("telegram refuses the token; pausing %d s", UNAUTHORIZED_PAUSE_S)
            self.limits.pause(UNAUTHORIZED_PAUSE_S)
            await self._mark(
                self.store.mark_retry, row.seq, row.chat_id, self.last_error, utc_now(), count=False
            )
            return
        except (TelegramAPIError, TimeoutError, OSError) as exc:
            self.limits.answered(row.chat_id, group)
            # Only a lost answer leaves the outcome open; an error answer (5xx) is a "no".
            lost = isinstance(exc, (TelegramNetworkError, TimeoutError, OSError))
            await self._transient(row, f"{type(exc).__name__}: {exc}", in_doubt=lost)
            return
        self.limits.answered(row.chat_id, group)
        await self._mark(self.store.mark_sent, row.seq, row.chat_id, message.message_id)
        self.metrics.sent.inc()
        self.last_error = None

    async def _settled(self, row: Delivery) -> bool:
        """An earlier send of `row` got no answer: True if Telegram has it (now marked
        sent); False if it must be sent. Network errors propagate (still in doubt)."""
        assert row.probe_from is not None
        found = await settle(
            self.bot,
            row.chat_id,
            row.text,
            row.probe_from,
            before_call=self.limits.slot,
            pause=self.limits.pause,
        )
        self.metrics.in_doubt.labels(found.outcome).inc()
        log.info("lost send of seq %d to chat %d settled: %s", row.seq, row.chat_id, found.outcome)
        if found.message_id is None:
            await self.limits.slot()  # the send below needs its own
            return False
        await self._mark(self.store.mark_sent, row.seq, row.chat_id, found.message_id)
        self.metrics.sent.inc()
        return True

    async def _transient(self, row: Delivery, error: str, *, in_doubt: bool) -> None:
        self.last_error = error
        attempts = row.attempts + 1
        if attempts >= self.max_attempts:
            log.error(
                "giving up seq %d to chat %d after %d attempts: %s",
                row.seq,
                row.chat_id,
                attempts,
                error,
            )
            await self._mark(self.store.mark_failed, row.seq, row.chat_id, error)
            self.metrics.failed.labels("attempts").inc()  # once recorded, as above
            return
        delay = min(self._backoff_min * 2 ** (attempts - 1), self._backoff_max)
        log.warning(
            "seq %d to chat %d failed (retry in %.0f s): %s", row.seq, row.chat_id, delay, error
        )
        not_before = utc_now() + timedelta(seconds=delay)
        await self._mark(
            self.store.mark_retry, row.seq, row.chat_id, error, not_before, in_doubt=in_doubt
        )
        self.metrics.retried.labels("error").inc()

    async def _gone(self, row: Delivery, reason: str) -> None:
        """The chat blocked the bot or no longer exists: deactivate it."""
        log.info("chat %d deactivated: %s", row.chat_id, reason)
        await self._mark(self.store.mark_failed, row.seq, row.chat_id, reason)
        await self._mark(self.store.deactivate, row.chat_id)
        failed = await self._mark(self.store.fail_chat, row.chat_id, reason)
        # Counted once recorded, so a reader of the metrics finds the rows settled.
        self.metrics.deactivated.inc()
        self.metrics.failed.labels("chat_gone").inc(1 + (failed or 0))

    async def _mark(self, write: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """A store write after Telegram answered, retried: an unmarked `sent` is sent again."""
        delay = 0.1
        for attempt in range(MARK_TRIES):
            try:
                return await write(*args, **kwargs)
            except StoreUnavailable as exc:
                log.error("cannot record a telegram delivery (try %d): %s", attempt + 1, exc)
                await asyncio.sleep(delay)
                delay *= 4
        return await write(*args, **kwargs)


class TelegramDelivery:
    """The delivery half of the `bot` component: outbox → fan-out → sender → Telegram."""

    def __init__(
        self,
        settings: Settings,
        *,
        catalog_source: Callable[[], Catalog] | None = None,
        bot: Bot | None = None,
        alert_store: AlertStore | None = None,
        dispatch_metrics: DispatchMetrics | None = None,
        poll_s: float = POLL_S,
        backoff_s: tuple[float, float] = (BACKOFF_MIN_S, BACKOFF_MAX_S),
    ) -> None:
        """`alert_store` and `dispatch_metrics` may be shared with the alert component of
        the same process (then they are opened, closed and rendered by it)."""
        self.settings = settings
        self._own_bot = bot is None
        self.bot = bot or create_bot(settings)
        self.floor = MessageIdFloor()
        # Every answer of this session (alerts and conversation replies) raises the floor.
        self.bot.session.middleware(FloorMiddleware(self.floor))
        self.store = BotStore(settings.state_path)
        self._own_alerts = alert_store is None
        self.alerts = alert_store or AlertStore(settings.state_path)
        if catalog_source is None:
            catalog = load_catalog(settings.stations)
            catalog_source = lambda: catalog  # noqa: E731
        self.metrics = SenderMetrics()
        self._own_metrics = dispatch_metrics is None
        self.dispatch_metrics = dispatch_metrics or DispatchMetrics()
        self.sender = Sender(
            self.store,
            self.bot,
            rate_per_s=settings.telegram_rate_per_s,
            allow_paid_broadcast=settings.telegram_allow_paid_broadcast,
            max_attempts=settings.telegram_max_attempts,
            metrics=self.metrics,
            floor=self.floor,
            poll_s=poll_s,
            backoff_s=backoff_s,
        )
        self.channel = TelegramChannel(
            self.alerts,
            self.store,
            catalog_source,
            settings.timezone,
            on_fanned_out=self.sender.wake,
            metrics=self.dispatch_metrics,
        )
        self.dispatcher = Dispatcher(
            self.alerts, [self.channel], metrics=self.dispatch_metrics, poll_s=poll_s
        )

    def wake(self) -> None:
        """Call after an outbox commit (the engine's on_committed) to fan out at once."""
        self.dispatcher.wake()

    async def start(self) -> None:
        await self.store.open()
        self.floor.load(await self.store.message_id_floors())
        if self._own_alerts:
            await self.alerts.open()
        await self.sender.start()
        await self.dispatcher.start()

    async def stop(self) -> None:
        await self.dispatcher.stop()
        await self.sender.stop()
        if self._own_alerts:
            await self.alerts.close()
        await self.store.close()
        if self._own_bot:
            await self.bot.session.close()

    def failure(self) -> str | None:
        return self.dispatcher.failure() or self.sender.failure()

    def health(self) -> tuple[bool, dict[str, Any]]:
        ok, dispatch = self.dispatcher.health()
        return ok and self.sender.running, {"fan_out": dispatch, **self.sender.health()}

    def render(self) -> bytes:
        own = self.dispatch_metrics.render() if self._own_metrics else b""
        return self.metrics.render() + own
