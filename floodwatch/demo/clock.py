"""The demo's simulated clock: "now" is the gauge time of the data being played."""

from __future__ import annotations

from datetime import datetime


class SimClock:
    """A clock the player moves forward; the forecaster and the alert engine read it.

    It never goes back, so a late reader never sees time run backwards.
    """

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("the simulated clock needs a timezone-aware start")
        self._now = start

    def __call__(self) -> datetime:
        return self._now

    def advance_to(self, when: datetime) -> None:
        self._now = max(self._now, when)
