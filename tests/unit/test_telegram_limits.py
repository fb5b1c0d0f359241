"""Telegram's limits as the sender keeps them (telegram_bot/limits.py), on a fake clock."""

from __future__ import annotations

import asyncio
import time

import pytest

from telegram_bot.limits import SLACK_S, Limits


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_one_message_per_second_per_chat() -> None:
    clock = Clock()
    limits = Limits(25, clock=clock)
    assert limits.ready_at(1, group=False) <= clock.now
    limits.answered(1, group=False)
    assert limits.ready_at(1, group=False) == pytest.approx(clock.now + 1.0 + SLACK_S)
    assert limits.ready_at(2, group=False) <= clock.now
    assert set(limits.waiting(clock.now)) == {1}
    clock.now += 1.1
    assert limits.waiting(clock.now) == {}


def test_twenty_per_minute_per_group() -> None:
    clock = Clock()
    limits = Limits(25, clock=clock)
    start = clock.now
    for _ in range(20):
        assert limits.ready_at(-5, group=True) <= clock.now
        limits.answered(-5, group=True)
        clock.now += 1.1
    # The 21st waits until the first of the 20 is a minute old.
    assert limits.ready_at(-5, group=True) == pytest.approx(start + 60.0 + SLACK_S)
    assert -5 in limits.waiting(clock.now)
    clock.now = start + 61
    assert limits.ready_at(-5, group=True) <= clock.now


def test_retry_after_pauses_everything_and_the_chat() -> None:
    clock = Clock()
    limits = Limits(25, clock=clock)
    limits.pause(3, chat_id=7)
    assert limits.paused_for == pytest.approx(3)
    assert limits.ready_at(7, group=False) == pytest.approx(clock.now + 3)
    assert limits.waiting(clock.now) == {7: pytest.approx(clock.now + 3)}


async def test_global_slots_are_spaced() -> None:
    limits = Limits(200)  # real clock: 5 ms apart
    started = time.monotonic()
    for _ in range(21):
        await limits.slot()
    assert time.monotonic() - started >= 20 * 0.005 * 0.95


async def test_requests_bunched_up_after_their_slots_go_out_spaced() -> None:
    limits = Limits(200)  # 5 ms apart
    started = time.monotonic()
    # Three sends whose slots were taken long ago arrive at the same moment.
    await asyncio.gather(limits.spaced(), limits.spaced(), limits.spaced())
    assert time.monotonic() - started >= 2 * 0.005 * 0.95
    await limits.spaced()
    assert time.monotonic() - started >= 3 * 0.005 * 0.95


def test_rate_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        Limits(0)
