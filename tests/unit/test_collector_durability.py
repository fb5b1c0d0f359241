"""The collector never acknowledges what neither the store nor the spool took, and that
failure does not stop its writer: it holds the batch and retries. A real spool, a store
where nothing listens, no broker needed."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime
from pathlib import Path

from collector.inbox import Inbound
from collector.service import Collector
from collector.spool import Spool
from floodwatch.catalog import load_catalog
from floodwatch.errors import StoreUnavailable
from floodwatch.models import Reading
from floodwatch.net import free_port
from floodwatch.settings import CATALOG_DIR, Settings
from floodwatch.storage.influx import InfluxStore


def reading(minute: int) -> Reading:
    return Reading("silverbrook-upper", datetime(2026, 11, 22, 12, minute, tzinfo=UTC), 120.0)


async def test_batch_held_unacknowledged_while_store_and_spool_both_fail(tmp_path: Path) -> None:
    settings = Settings(spool_path=tmp_path / "spool.sqlite")
    # InfluxDB on a port where nothing listens: a store that is down.
    store = InfluxStore(f"http://127.0.0.1:{free_port()}", "floodwatch", retry_delays=())
    with contextlib.suppress(StoreUnavailable):
        await store.open()  # the session stays usable, as when the collector starts
    spool = Spool(settings.spool_path)
    try:
        collector = Collector(settings, load_catalog(CATALOG_DIR / "demo.yaml"), store, spool=spool)
        await collector.sink.open()
        acked: list[int] = []
        collector._acknowledge = lambda batch: acked.extend(i.mid for i in batch)  # type: ignore[method-assign]
        spool.close()  # the disk under the spool has failed

        persisting = asyncio.create_task(
            collector._persist([Inbound(mid=7, qos=1, generation=0, reading=reading(0))])
        )

        def errors(kind: str) -> float:
            value = collector.metrics.registry.get_sample_value(
                "floodwatch_store_errors_total", {"kind": kind}
            )
            return value or 0.0

        while errors("spool") < 2:  # it keeps retrying the same batch
            assert not persisting.done()
            await asyncio.sleep(0.05)
        healthy, details = collector.health()
        assert (healthy, details["spool"]) == (False, "failing")
        collector._stopping.set()  # on shutdown it gives up without acknowledging
        await asyncio.wait_for(persisting, 5)

        assert acked == []
        assert errors("write") == 1
    finally:
        await store.close()
