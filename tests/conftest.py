"""Shared fixtures: real Mosquitto and InfluxDB servers started by the harness."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from tests.harness.collector_process import CollectorProcess
from tests.harness.fixtures import influx_server, influx_store  # noqa: F401
from tests.harness.mosquitto import MosquittoServer

# Property tests: the same examples on every run (a red CI run is reproducible and never a
# roll of the dice), no per-example deadline (timings belong to bench/). `explore` draws
# fresh examples, for a developer hunting for new failures.
settings.register_profile(
    "repeatable",
    derandomize=True,
    deadline=None,
    max_examples=300,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("explore", deadline=None, max_examples=5000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[MosquittoServer]:
    server = MosquittoServer(tmp_path / "mosquitto")
    server.start()
    yield server
    server.kill()


@pytest.fixture
def collector_process(tmp_path: Path) -> Iterator[Callable[[dict[str, str]], CollectorProcess]]:
    """Makes collector processes that are killed when the test ends, whatever its outcome."""
    made: list[CollectorProcess] = []

    def make(env: dict[str, str]) -> CollectorProcess:
        process = CollectorProcess(env, tmp_path / f"collector-{len(made)}.log")
        made.append(process)
        return process

    yield make
    for process in made:
        process.kill()
