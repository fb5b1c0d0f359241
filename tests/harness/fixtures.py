"""Pytest fixtures for the InfluxDB integration tests.

tests/conftest.py imports them. `influx_server` is one influxd for the whole session; a
test that stops, kills or restarts a server must start its own `InfluxServer` instead.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from floodwatch.storage.influx import InfluxStore
from tests.harness.influx import InfluxServer, opened_influx_store


@pytest.fixture(scope="session")
def influx_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxServer]:
    """A started influxd shared by the whole session; do not stop or kill it."""
    workdir: Path = tmp_path_factory.mktemp("influxd")
    with InfluxServer(workdir) as server:
        yield server


@pytest_asyncio.fixture
async def influx_store(influx_server: InfluxServer) -> AsyncIterator[InfluxStore]:
    """An open InfluxStore on a fresh, random database of the session's influxd."""
    async with opened_influx_store(influx_server) as store:
        yield store
