"""Shared fixtures: real Mosquitto and InfluxDB servers started by the harness."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness.fixtures import influx_server, influx_store  # noqa: F401
from tests.harness.mosquitto import MosquittoServer


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[MosquittoServer]:
    server = MosquittoServer(tmp_path / "mosquitto")
    server.start()
    yield server
    server.kill()
