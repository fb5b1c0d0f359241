"""The spool (real SQLite) and the sink's store-or-spool logic, with a scripted store."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from collector.metrics import CollectorMetrics
from collector.sink import Sink
from collector.spool import Spool
from floodwatch.errors import SpoolUnavailable, StoreRejected, StoreUnavailable
from floodwatch.models import QCFlag, Reading

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def readings(count: int, start: int = 0, station: str = "g-1") -> list[Reading]:
    return [
        Reading(
            station,
            T0 + timedelta(minutes=start + i),
            100.0 + start + i,
            seq=start + i,
            qc=QCFlag.SPIKE if (start + i) % 7 == 3 else QCFlag.NONE,
            received_at=T0,
        )
        for i in range(count)
    ]


class ScriptedStore:
    """A store whose next outcome the test chooses; records what it was given."""

    description = "scripted"

    def __init__(self) -> None:
        self.stored: list[Reading] = []
        self.failure: Exception | None = None
        self.calls = 0

    async def write(self, batch: Sequence[Reading]) -> None:
        self.calls += 1
        if self.failure is not None:
            raise self.failure
        self.stored.extend(batch)


def test_spool_round_trip_keeps_every_field(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.sqlite")
    batch = [*readings(5), Reading("g-2", T0, 1.5, battery_v=12.1, rssi_dbm=-90.0)]
    spool.append(batch)
    rows = spool.peek(100)
    assert [reading for _, reading in rows] == batch
    assert [row_id for row_id, _ in rows] == sorted(row_id for row_id, _ in rows)
    assert all(reading.ts.tzinfo is not None for _, reading in rows)
    spool.remove_through(rows[2][0])
    assert spool.depth() == 3
    assert spool.peek(1)[0][1] == batch[3]


def test_spool_bury_moves_rows_to_dead_letters(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.sqlite")
    spool.append(readings(4))
    last_id = spool.peek(2)[-1][0]
    assert spool.bury_through(last_id, "field type conflict") == 2
    spool.bury(readings(1, start=50), "refused")
    assert (spool.depth(), spool.dead_count()) == (2, 3)


def test_spool_survives_kill_9(tmp_path: Path) -> None:
    """A process that appends and is then killed -9 leaves its readings on disk."""
    path = tmp_path / "spool.sqlite"
    script = (
        "import os, signal, sys\n"
        "from pathlib import Path\n"
        "from collector.spool import Spool\n"
        "from tests.unit.test_spool_and_sink import readings\n"
        f"spool = Spool(Path({str(path)!r}))\n"
        "spool.append(readings(250))\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=Path(__file__).parents[2], check=False
    )
    assert result.returncode == -signal.SIGKILL
    assert Spool(path).depth() == 250


@pytest.fixture
def sink(tmp_path: Path) -> tuple[Sink, ScriptedStore]:
    store = ScriptedStore()
    return Sink(store, Spool(tmp_path / "spool.sqlite"), CollectorMetrics()), store  # type: ignore[arg-type]


async def test_writes_go_straight_to_a_healthy_store(sink: tuple[Sink, ScriptedStore]) -> None:
    target, store = sink
    await target.open()
    await target.put(readings(10))
    assert store.stored == readings(10)
    assert (target.spooling, target.depth) == (False, 0)


async def test_outage_spools_in_order_then_drains(sink: tuple[Sink, ScriptedStore]) -> None:
    target, store = sink
    await target.open()
    await target.put(readings(3))
    store.failure = StoreUnavailable("down")
    await target.put(readings(3, start=3))
    # Once spooling, later batches queue behind, without trying the store each time.
    calls = store.calls
    await target.put(readings(3, start=6))
    assert store.calls == calls
    assert (target.spooling, target.depth) == (True, 6)
    store.failure = None
    target._next_attempt = 0.0  # skip the backoff wait
    while await target.drain_step() or target.spooling:
        target._next_attempt = 0.0
    assert store.stored == readings(9)
    assert (target.spooling, target.depth) == (False, 0)
    assert target.metrics.total("floodwatch_readings_written") == 9
    assert target.metrics.total("floodwatch_readings_spooled") == 6


async def test_drain_backs_off_while_the_store_stays_down(sink: tuple[Sink, ScriptedStore]) -> None:
    target, store = sink
    await target.open()
    store.failure = StoreUnavailable("down")
    await target.put(readings(2))
    calls = store.calls
    assert await target.drain_step() is False  # still inside the backoff window
    assert store.calls == calls
    target._next_attempt = 0.0
    assert await target.drain_step() is False
    assert store.calls == calls + 1
    assert target._backoff > 1.0


async def test_refused_batch_is_dead_lettered_not_retried(sink: tuple[Sink, ScriptedStore]) -> None:
    target, store = sink
    await target.open()
    store.failure = StoreRejected("field type conflict")
    await target.put(readings(4))
    assert (target.spooling, target.spool.dead_count()) == (False, 4)
    store.failure = None
    await target.put(readings(2, start=10))
    assert store.stored == readings(2, start=10)
    assert target.metrics.total("floodwatch_readings_dead_lettered") == 4


async def test_poison_in_the_spool_does_not_block_what_follows(
    sink: tuple[Sink, ScriptedStore],
) -> None:
    target, store = sink
    await target.open()
    store.failure = StoreUnavailable("down")
    await target.put(readings(3))
    store.failure = StoreRejected("bad points")
    target._next_attempt = 0.0
    assert await target.drain_step() is True
    assert target.spool.dead_count() == 3
    store.failure = None
    await target.put(readings(2, start=5))  # still spooling until the spool reports empty
    target._next_attempt = 0.0
    while await target.drain_step() or target.spooling:
        target._next_attempt = 0.0
    assert store.stored == readings(2, start=5)


async def test_spool_left_by_a_crash_resumes_draining(tmp_path: Path) -> None:
    Spool(tmp_path / "spool.sqlite").append(readings(5))
    store = ScriptedStore()
    target = Sink(store, Spool(tmp_path / "spool.sqlite"), CollectorMetrics())  # type: ignore[arg-type]
    await target.open()
    assert (target.spooling, target.depth) == (True, 5)
    while await target.drain_step() or target.spooling:
        pass
    assert store.stored == readings(5)
    await target.close()


async def test_a_broken_spool_is_one_domain_error(sink: tuple[Sink, ScriptedStore]) -> None:
    target, store = sink
    await target.open()
    store.failure = StoreUnavailable("down")
    target.spool.close()  # as if the disk had failed under it
    with pytest.raises(SpoolUnavailable, match="spool"):
        await target.put(readings(2))
