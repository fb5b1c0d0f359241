"""The edge of every message handler: nothing one message does may escape into the loop that
delivers the next one.

An exception out of a paho callback ends paho's network thread (nothing more is received)
and leaves the message unacknowledged (the broker hands it back after a restart, and the
service dies again). So each subscriber's `on_message` is wrapped here: an unexpected error
on one message is counted (`internal_error`, with the exception type), logged as one line
(at most 20 a minute) naming the topic and a hash of the payload but never the payload
itself, handed to the owner's `on_error` (the collector acknowledges the message there),
and the next message is processed as usual. The bot's handlers get the same treatment in
`telegram_bot.routers.fallback`.
"""

from __future__ import annotations

import hashlib
import logging
import traceback
from collections.abc import Callable
from dataclasses import dataclass

import paho.mqtt.client as mqtt

from floodwatch.log_limit import LogLimit

__all__ = [
    "INTERNAL_ERROR",
    "InternalError",
    "MessageGuard",
    "describe_error",
    "payload_hash",
    "topic_of",
]

INTERNAL_ERROR = "internal_error"

MessageHandler = Callable[[mqtt.Client, object, mqtt.MQTTMessage], None]


@dataclass(frozen=True, slots=True)
class InternalError:
    """What went wrong on one message, safe to log and to publish."""

    error: str  # the exception's type name: the metric label
    where: str  # file:line of the innermost frame, to find the bug
    message: str  # the exception's text, shortened

    @property
    def detail(self) -> str:
        return f"{self.error} at {self.where}: {self.message}"


def describe_error(exc: BaseException) -> InternalError:
    frames = traceback.extract_tb(exc.__traceback__)
    where = f"{frames[-1].filename.rsplit('/', 1)[-1]}:{frames[-1].lineno}" if frames else "?"
    text = repr(str(exc)[:120])
    return InternalError(type(exc).__name__, where, text)


def topic_of(msg: mqtt.MQTTMessage) -> str:
    """The topic for a log line; paho's `topic` raises on bytes that are not UTF-8."""
    try:
        return msg.topic[:200]
    except UnicodeDecodeError:
        return repr(bytes(msg._topic[:200]))  # paho keeps no other copy of the raw bytes


def payload_hash(payload: bytes) -> str:
    """A short fingerprint that finds the same payload in the broker's or a gauge's logs
    without writing a possibly hostile payload into ours."""
    return hashlib.sha256(payload).hexdigest()[:16]


class MessageGuard:
    """Wraps a paho `on_message` callback (see the module's docstring)."""

    def __init__(
        self,
        role: str,
        log: logging.Logger,
        count: Callable[[InternalError], None],
        on_error: Callable[[mqtt.MQTTMessage, InternalError], None] | None = None,
        logs_per_minute: int = 20,
    ) -> None:
        self.role = role
        self._log = log
        self._count = count
        self._on_error = on_error
        self._log_limit = LogLimit(logs_per_minute)

    def wrap(self, handler: MessageHandler) -> MessageHandler:
        def guarded(client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
            try:
                handler(client, userdata, msg)
            except Exception as exc:
                self.failed(msg, exc)

        return guarded

    def failed(self, msg: mqtt.MQTTMessage, exc: Exception) -> None:
        error = describe_error(exc)
        # Each step is guarded on its own: a failing metric or log must not stop the
        # owner's on_error (the acknowledgement) from running.
        try:
            self._count(error)
        except Exception:
            self._log.exception("%s: could not count an internal error", self.role)
        if self._log_limit.allow():
            payload = bytes(msg.payload)
            self._log.error(
                "%s: internal error on %r (payload sha256 %s, %d bytes): %s; "
                "message dropped, processing goes on",
                self.role,
                topic_of(msg),
                payload_hash(payload),
                len(payload),
                error.detail,
            )
        if self._on_error is not None:
            try:
                self._on_error(msg, error)
            except Exception:
                self._log.exception("%s: the handler of an internal error failed", self.role)
