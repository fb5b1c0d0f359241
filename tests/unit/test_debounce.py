"""Prompt runs are debounced per station: a burst becomes one run, and runs of one station
are at least the interval apart while other stations are not held up."""

from __future__ import annotations

import asyncio
import time

import pytest

from forecasting.debounce import Debouncer


class Recorder:
    def __init__(self) -> None:
        self.runs: list[tuple[str, float]] = []

    async def run(self, key: str) -> None:
        self.runs.append((key, time.monotonic()))

    def count(self, key: str) -> int:
        return sum(1 for k, _ in self.runs if k == key)


async def _settle(debouncer: Debouncer, key: str) -> None:
    while debouncer.waiting(key):
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.01)  # let the started run finish


async def test_a_burst_becomes_one_run_and_the_next_waits_out_the_interval() -> None:
    recorder = Recorder()
    debouncer = Debouncer(0.3, recorder.run)
    for _ in range(50):
        debouncer.request("gauge-a")
    await _settle(debouncer, "gauge-a")
    assert recorder.count("gauge-a") == 1

    for _ in range(50):
        debouncer.request("gauge-a")
    assert debouncer.waiting("gauge-a")
    await _settle(debouncer, "gauge-a")
    assert recorder.count("gauge-a") == 2
    first, second = (t for k, t in recorder.runs if k == "gauge-a")
    assert second - first >= 0.3
    await debouncer.stop(1.0)


async def test_stations_are_debounced_independently() -> None:
    recorder = Recorder()
    debouncer = Debouncer(60.0, recorder.run)
    debouncer.request("gauge-a")
    debouncer.request("gauge-b")
    await _settle(debouncer, "gauge-a")
    await _settle(debouncer, "gauge-b")
    assert (recorder.count("gauge-a"), recorder.count("gauge-b")) == (1, 1)
    debouncer.request("gauge-a")  # within the minute: waits
    assert debouncer.waiting("gauge-a")
    await debouncer.stop(1.0)
    assert not debouncer.waiting("gauge-a")
    assert recorder.count("gauge-a") == 1  # stopping dropped the run that had not started


async def test_a_failing_run_is_logged_and_the_next_request_runs_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls: list[str] = []

    async def fail(key: str) -> None:
        calls.append(key)
        raise RuntimeError("boom")

    debouncer = Debouncer(0.05, fail)
    debouncer.request("gauge-a")
    await _settle(debouncer, "gauge-a")
    assert "debounced-gauge-a failed" in caplog.text
    debouncer.request("gauge-a")
    await _settle(debouncer, "gauge-a")
    assert calls == ["gauge-a", "gauge-a"]
    await debouncer.stop(1.0)
