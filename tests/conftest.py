"""Shared fixtures: real Mosquitto and InfluxDB servers started by the harness."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.harness.collector_process import CollectorProcess
from tests.harness.fixtures import influx_server, influx_store  # noqa: F401
from tests.harness.mosquitto import MosquittoServer


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
