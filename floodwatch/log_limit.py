"""Rate-limited logging of repeated warnings (bad payloads, rejected readings)."""

from __future__ import annotations

import time


class LogLimit:
    """At most `per_minute` log lines of one kind a minute: a misconfigured fleet would
    otherwise drown the log. Every message is still counted in the metrics."""

    def __init__(self, per_minute: int = 20) -> None:
        self.per_minute = per_minute
        self._window = (0.0, 0)

    def allow(self) -> bool:
        start, count = self._window
        now = time.monotonic()
        if now - start >= 60:
            start, count = now, 0
        self._window = (start, count + 1)
        return count < self.per_minute
