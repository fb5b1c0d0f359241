"""The watchdog's pure parts: what counts as a failure, and the loop that reports it."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

import pytest

from floodwatch.watchdog import task_ended, thread_ended, watch


class Stub:
    def __init__(self, failure: Callable[[], str | None]) -> None:
        self.failure = failure


async def test_watch_returns_the_first_failure_and_logs_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ticks = iter([None, None, "the MQTT network thread has ended"])
    services = {"ok": Stub(lambda: None), "broken": Stub(lambda: next(ticks))}
    failure = await watch(services, asyncio.Event(), 0.01)
    assert failure == "broken: the MQTT network thread has ended"
    assert "exiting so that the supervisor restarts" in caplog.text


async def test_watch_returns_none_once_stopped() -> None:
    stop = asyncio.Event()
    watching = asyncio.create_task(watch({"ok": Stub(lambda: None)}, stop, 0.01))
    await asyncio.sleep(0.05)
    assert not watching.done()
    stop.set()
    assert await watching is None


async def test_task_ended_describes_how() -> None:
    async def boom() -> None:
        raise ValueError("bad")

    async def forever() -> None:
        await asyncio.Event().wait()

    async def quick() -> None:
        return None

    died = asyncio.create_task(boom(), name="writer")
    returned = asyncio.create_task(quick(), name="state")
    running = asyncio.create_task(forever(), name="health")
    await asyncio.wait({died, returned})
    assert task_ended([None, running]) is None
    assert task_ended([running, died]) == "task writer died: ValueError: bad"
    assert task_ended([returned]) == "task state returned"
    running.cancel()
    await asyncio.wait({running})
    assert task_ended([running]) == "task health was cancelled"


def test_thread_ended() -> None:
    thread = threading.Thread(target=lambda: None)
    assert thread_ended(None, "x") is None
    thread.start()
    thread.join()
    assert thread_ended(thread, "the MQTT network thread") == "the MQTT network thread has ended"
