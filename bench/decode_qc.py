"""How long decode() + QualityControl.check() take per message, on synthetic gauge traffic.

    .venv/bin/python bench/decode_qc.py [--messages 200000] [--stations 500] [--repeat 3]

Prints microseconds per message for each stage and for the pair; asserts nothing. The
collector must keep up with 8,000 messages/s on a 2-core machine, i.e. 125 µs per message
for everything including MQTT and storage, so these cores should stay at a few µs.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import random
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import orjson

from collector.decode import DecodeLimits, Rejection, decode
from collector.qc import QualityControl
from floodwatch.catalog import Catalog, parse_catalog
from floodwatch.models import Reading

START = datetime(2026, 11, 22, 0, 0, tzinfo=UTC)
LIMITS = DecodeLimits(
    max_payload_bytes=4096, max_future=timedelta(minutes=5), max_age=timedelta(days=30)
)


def make_catalog(stations: int) -> Catalog:
    return parse_catalog(
        {
            "stations": [
                {
                    "id": f"gauge-{i:04d}",
                    "names": {"en": f"Gauge {i}"},
                    "river": {"en": "Bench"},
                    "lat": 50.0,
                    "lon": 8.0,
                    "unit": "cm",
                }
                for i in range(stations)
            ]
        }
    )


Message = tuple[str, bytes, datetime]


def make_messages(count: int, stations: int, seed: int = 7) -> list[Message]:
    """Each station reports once a minute in turn: a slow sine-ish wave plus noise, in the
    three payload forms the contract allows, with ~1 % spikes and ~0.5 % garbage."""
    rng = random.Random(seed)
    messages: list[Message] = []
    for n in range(count):
        station = n % stations
        minute = n // stations
        ts = START + timedelta(minutes=minute, seconds=station * 60 / stations)
        level = 300.0 + 50.0 * ((minute % 600) / 600.0) + rng.uniform(-1, 1)
        if rng.random() < 0.01:
            level += 900.0
        form = n % 3
        payload: bytes
        if rng.random() < 0.005:
            payload = b'{"level": "broken"'
        elif form == 0:
            payload = orjson.dumps(
                {
                    "ts": ts.isoformat().replace("+00:00", "Z"),
                    "level": round(level, 1),
                    "seq": n,
                    "battery_v": 3.7,
                    "rssi_dbm": -80,
                }
            )
        elif form == 1:
            payload = orjson.dumps({"ts": ts.timestamp(), "level": round(level, 1), "seq": n})
        else:
            payload = f"{level:.1f}".encode()
        topic = f"floodwatch/gauges/gauge-{station:04d}/level"
        messages.append((topic, payload, ts + timedelta(seconds=0.2)))
    return messages


def timed(label: str, count: int, run: Callable[[], object], repeat: int) -> None:
    """Best and median of `repeat` runs: the best is the code's cost, the spread shows how
    much a busy machine added."""
    runs = []
    for _ in range(repeat):
        gc.collect()
        started = time.perf_counter()
        run()
        runs.append((time.perf_counter() - started) / count * 1e6)
    best, median = min(runs), statistics.median(runs)
    print(
        f"  {label:<12} best {best:6.2f} µs/message ({1e6 / best:>9,.0f}/s), "
        f"median {median:6.2f} µs over {repeat} runs"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--stations", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    catalog = make_catalog(args.stations)
    messages = make_messages(args.messages, args.stations)
    print(
        f"decode + QC over {len(messages):,} synthetic payloads, {args.stations} stations "
        f"(Python {platform.python_version()}, {os.cpu_count()} CPUs)"
    )

    def run_decode() -> None:
        # Results are dropped as they come, as in the collector: keeping 200k objects alive
        # would time the garbage collector's full passes rather than decode().
        for topic, payload, received_at in messages:
            decode(topic, payload, received_at, catalog, LIMITS)

    timed("decode", len(messages), run_decode, args.repeat)
    readings = [
        result
        for result in (decode(t, p, r, catalog, LIMITS) for t, p, r in messages)
        if not isinstance(result, Rejection)
    ]

    def run_qc() -> None:
        qc = QualityControl(catalog)
        for reading in readings:
            qc.check(reading)

    timed("QC check", len(readings), run_qc, args.repeat)

    flagged = 0

    def run_both() -> None:
        nonlocal flagged
        flagged = 0
        qc = QualityControl(catalog)
        for topic, payload, received_at in messages:
            result = decode(topic, payload, received_at, catalog, LIMITS)
            if isinstance(result, Reading) and qc.check(result).reading.qc:
                flagged += 1

    timed("decode + QC", len(messages), run_both, args.repeat)
    rejected = len(messages) - len(readings)
    print(f"  rejected {rejected:,}, flagged by QC {flagged:,}")


if __name__ == "__main__":
    main()
