"""Liveness of what a service cannot restart by itself: paho's network thread and the
service's long-running asyncio tasks.

Either one ending while the service is not stopping is a failure nothing inside the process
repairs (no more messages, no more writes, while the connection flag still says
"connected"). `/healthz` turns 503 with the reason, and `floodwatch run` stops the process
with exit code EXIT_FAILED, so that the supervisor (compose's `restart: unless-stopped`,
systemd's `Restart=on-failure`) starts it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

log = logging.getLogger(__name__)

# EX_SOFTWARE from sysexits.h: an internal software error was detected.
EXIT_FAILED = 70
WATCH_INTERVAL_S = 1.0


class Watched(Protocol):
    def failure(self) -> str | None:
        """Why the service can no longer work (None while it can, and while stopping)."""
        ...


def thread_ended(thread: threading.Thread | None, what: str) -> str | None:
    if thread is not None and not thread.is_alive():
        return f"{what} has ended"
    return None


def task_ended(tasks: Iterable[asyncio.Task[Any] | None]) -> str | None:
    """The first of `tasks` that has finished, described with how it ended."""
    for task in tasks:
        if task is None or not task.done():
            continue
        if task.cancelled():
            return f"task {task.get_name()} was cancelled"
        exc = task.exception()
        if exc is None:
            return f"task {task.get_name()} returned"
        return f"task {task.get_name()} died: {type(exc).__name__}: {str(exc)[:200]}"
    return None


def first_failure(services: Mapping[str, Watched]) -> str | None:
    for name, service in services.items():
        failure = service.failure()
        if failure is not None:
            return f"{name}: {failure}"
    return None


async def watch(
    services: Mapping[str, Watched], stop: asyncio.Event, interval_s: float = WATCH_INTERVAL_S
) -> str | None:
    """Wait until `stop` is set (None) or a service fails (the reason, logged)."""
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval_s)
        failure = first_failure(services)
        if failure is not None and not stop.is_set():
            log.critical("%s; exiting so that the supervisor restarts the process", failure)
            return failure
    return None
