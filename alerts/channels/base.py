"""What the dispatcher asks of a channel, and how a channel says it could not deliver."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from alerts.store import OutboxItem
from floodwatch.errors import FloodwatchError


class DeliveryFailed(FloodwatchError):
    """The channel could not deliver (or confirm) a batch now; trying later may succeed.

    `delivered` leading items of the batch were confirmed before the failure: the
    dispatcher marks those, so they are not sent again.
    """

    def __init__(self, reason: str, delivered: int = 0) -> None:
        super().__init__(reason)
        self.delivered = delivered


class Channel(Protocol):
    """One way out for alert events. `name` keys its deliveries in the outbox: renaming a
    channel makes every event in the outbox pending on it again."""

    name: str

    async def start(self) -> None:
        """Connect; a target that is down must not raise (the dispatcher retries)."""

    async def stop(self) -> None: ...

    async def deliver(self, items: Sequence[OutboxItem]) -> None:
        """Deliver the items in order and return once the target confirmed every one.

        Raises DeliveryFailed for a temporary failure. An item the target can never take
        is logged and counted by the channel and treated as delivered, so it cannot hold
        up the ones behind it (it stays in the outbox for the other channels).
        """

    def health(self) -> dict[str, Any]: ...
