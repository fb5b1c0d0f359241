"""Updates whose handler raised: counted by exception type and logged as one line (at most
20 a minute, so a flood of odd input cannot flood the log), never with the user's text.

The bot's edge guard, like floodwatch.guard for the MQTT subscribers: the fallback router's
error handler records here, answers the user, and polling goes on with the next update.
"""

from __future__ import annotations

import logging

from aiogram.types import Update
from prometheus_client import CollectorRegistry, Counter, generate_latest

from floodwatch.guard import describe_error, payload_hash
from floodwatch.log_limit import LogLimit

log = logging.getLogger(__name__)


class UpdateErrors:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.internal_errors = Counter(
            "floodwatch_bot_internal_errors",
            "Telegram updates whose handler raised unexpectedly (a bug), by exception type",
            ["error"],
            registry=self.registry,
        )
        self._log_limit = LogLimit()

    def record(self, update: Update, exc: BaseException) -> None:
        error = describe_error(exc)
        self.internal_errors.labels(error.error).inc()
        if not self._log_limit.allow():
            return
        raw = update.model_dump_json(exclude_none=True).encode()
        log.error(
            "bot: internal error on update %s (%s, sha256 %s): %s; answered, polling goes on",
            update.update_id,
            update.event_type,
            payload_hash(raw),
            error.detail,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
