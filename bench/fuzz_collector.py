"""Hostile-input run: a real Mosquitto, a real influxd, `floodwatch run --components collector`.

    .venv/bin/python bench/fuzz_collector.py [--rounds 2000] [--seed 1] [--keep]

Each round publishes one payload of every hostile kind below (the two timestamps that used
to end the collector's network thread among them) and then one good reading with its own
timestamp, all at QoS 1 on one gauge connection, as fast as the broker takes them. Random
bytes and random JSON documents round it off. Then the collector is restarted on the same
persistent session, to show that nothing is handed back to it.

Prints what was sent by kind, what the collector rejected by reason (from its /metrics),
how many good readings InfluxDB holds (each exactly once is the goal), the collector's
peak RSS, whether it stayed healthy, and what the restart received. Asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import orjson

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # the test harness lives in tests/, which is not installed

from floodwatch import topics  # noqa: E402
from floodwatch.models import utc_now  # noqa: E402
from floodwatch.replay import gauge_payload, gauge_publisher  # noqa: E402
from floodwatch.settings import MqttEndpoint  # noqa: E402
from floodwatch.storage.line_protocol import MEASUREMENT, STATION_TAG  # noqa: E402
from tests.harness.collector_process import CollectorProcess  # noqa: E402
from tests.harness.gauges import write_catalog  # noqa: E402
from tests.harness.influx import InfluxServer  # noqa: E402
from tests.harness.mosquitto import MosquittoServer  # noqa: E402

DATABASE = "fuzz"
STATION = "gauge-000"
GAUGE_TOPIC = topics.gauge_level(STATION)


@dataclass(frozen=True)
class Kind:
    name: str
    expected: str  # the rejection reason the collector must give ("any" for random input)
    message: Callable[[random.Random, datetime], tuple[str, bytes]]


def _ts(text: str) -> Callable[[random.Random, datetime], tuple[str, bytes]]:
    return lambda _r, _now: (GAUGE_TOPIC, orjson.dumps({"ts": text, "level": 300.0}))


def _raw(payload: bytes) -> Callable[[random.Random, datetime], tuple[str, bytes]]:
    return lambda _r, _now: (GAUGE_TOPIC, payload)


def _random_json(rng: random.Random, depth: int = 0) -> object:
    choice = rng.randrange(7 if depth < 4 else 4)
    if choice == 0:
        return rng.choice([None, True, False])
    if choice == 1:
        return rng.uniform(-1e12, 1e12)
    if choice == 2:
        return rng.randrange(-(2**70), 2**70)
    if choice == 3:
        return "".join(chr(rng.randrange(1, 0x2FF)) for _ in range(rng.randrange(12)))
    if choice == 4:
        return [_random_json(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {
        k: _random_json(rng, depth + 1) for k in ("ts", "level", "seq", "x")[: rng.randrange(5)]
    }


KINDS: tuple[Kind, ...] = (
    Kind("ts after year 9999 in UTC", "bad_timestamp", _ts("9999-12-31T23:00:00-01:00")),
    Kind("ts before year 1 in UTC", "bad_timestamp", _ts("0001-01-01T00:00:00+03:00")),
    Kind("ts without offset", "bad_timestamp", _ts("2026-11-22T10:00:00")),
    Kind("epoch milliseconds", "bad_timestamp", lambda _r, now: (
        GAUGE_TOPIC, orjson.dumps({"ts": int(now.timestamp() * 1000), "level": 1.0}))),
    Kind("ts an hour ahead", "in_future", lambda _r, now: (
        GAUGE_TOPIC, gauge_payload(now + timedelta(hours=1), 300.0))),
    Kind("ts 60 days old", "too_old", lambda _r, now: (
        GAUGE_TOPIC, gauge_payload(now - timedelta(days=60), 300.0))),
    Kind("level NaN", "not_finite", _raw(b'{"level": NaN}')),
    Kind("level 1e400", "not_finite", _raw(b'{"level": 1e400}')),
    Kind("level as string", "bad_schema", _raw(b'{"level": "300"}')),
    Kind("nested 1,500 deep", "bad_schema", _raw(b"[" * 1500 + b"]" * 1500)),
    Kind("truncated JSON", "malformed_json", _raw(b'{"level": 30')),
    Kind("not UTF-8", "not_utf8", _raw(b'{"level": 300, "n": "\xff\xfe"}')),
    Kind("64 KiB payload", "too_large", _raw(b'{"level": 1, "pad": "' + b"x" * 60000 + b'"}')),
    Kind("level out of range", "out_of_range", _raw(b'{"level": 65535}')),
    Kind("unknown station", "unknown_station", lambda _r, _now: (
        topics.gauge_level("atlantis-1"), b"300")),
    Kind("bad topic", "bad_topic", lambda _r, _now: ("floodwatch/gauges/UPPER/level", b"300")),
    Kind("random bytes", "any", lambda rng, _now: (
        GAUGE_TOPIC, rng.randbytes(rng.randrange(1, 200)))),
    Kind("random JSON", "any", lambda rng, _now: (GAUGE_TOPIC, _json_bytes(_random_json(rng)))),
)  # fmt: skip


def _json_bytes(document: object) -> bytes:
    try:
        return orjson.dumps(document)
    except orjson.JSONEncodeError:  # an int beyond 64 bits: orjson writes none
        return repr(document).encode()


class Totals(dict[str, float]):
    def total(self) -> float:
        return sum(self.values())


def metric(text: str, name: str) -> Totals:
    found: dict[str, float] = {}
    for labels, value in re.findall(rf"^{name}(\{{[^}}]*\}})? (\S+)$", text, re.MULTILINE):
        found[labels] = found.get(labels, 0.0) + float(value)
    return Totals(found)


async def run(args: argparse.Namespace, workdir: Path) -> None:
    rng = random.Random(args.seed)
    catalog = workdir / "stations.yaml"
    write_catalog(catalog, count=2)
    with (
        MosquittoServer(workdir / "mosquitto") as broker,
        InfluxServer(workdir / "influx") as influx,
    ):
        influx.query(f"CREATE DATABASE {DATABASE}")
        env = {
            "FLOODWATCH_MQTT_URL": broker.url,
            "FLOODWATCH_MQTT_CLIENT_ID": "fuzz-collector",
            "FLOODWATCH_INFLUX_URL": influx.url,
            "FLOODWATCH_INFLUX_DATABASE": DATABASE,
            "FLOODWATCH_STATIONS": str(catalog),
            "FLOODWATCH_SPOOL_PATH": str(workdir / "spool.sqlite"),
            "FLOODWATCH_STATS_INTERVAL_S": "0",
        }
        collector = CollectorProcess(env, workdir / "collector.log").start()
        endpoint = MqttEndpoint.parse(broker.url)
        sent: Counter[str] = Counter()
        now = utc_now().replace(microsecond=0)
        start = now - timedelta(days=10)
        step = timedelta(days=9) / args.rounds
        started = time.monotonic()
        async with gauge_publisher(endpoint, "fuzz-gauge") as publisher:
            for index in range(args.rounds):
                for kind in KINDS:
                    topic, payload = kind.message(rng, now)
                    await publisher.publish(topic, payload)
                    sent[kind.name] += 1
                await publisher.publish(GAUGE_TOPIC, gauge_payload(start + index * step, 300.0))
                sent["good reading"] += 1
            await publisher.flush()
        total = sum(sent.values())
        await _until(collector, "floodwatch_readings_received_total", total)
        await _until(collector, "floodwatch_readings_written_total", args.rounds)
        seconds = time.monotonic() - started
        text = collector.metrics()
        health = collector.health() or {}
        pid = collector.process.pid if collector.process else 0
        peak = _peak_rss(pid)
        collector.stop()
        restarted = CollectorProcess(env, workdir / "collector-2.log")
        restarted.http_port = collector.http_port
        restarted.start()
        await publisher_sentinel(endpoint, now)
        await _until(restarted, "floodwatch_readings_written_total", 1)
        again = metric(restarted.metrics(), "floodwatch_readings_received_total").total()
        restarted.stop()
        stored = influx.query(
            f'SELECT COUNT("level") FROM "{MEASUREMENT}" WHERE "{STATION_TAG}" = \'{STATION}\'',
            database=DATABASE,
        )
    _report(sent, text, health, peak, stored, again, seconds)


async def _until(collector: CollectorProcess, counter: str, value: float) -> None:
    """Poll the collector's /metrics (another process: nothing to await but time)."""
    for _ in range(3000):  # at most 10 minutes
        if metric(collector.metrics(), counter).total() >= value:
            return
        await asyncio.sleep(0.2)


async def publisher_sentinel(endpoint: MqttEndpoint, now: datetime) -> None:
    async with gauge_publisher(endpoint, "fuzz-sentinel") as publisher:
        await publisher.publish(GAUGE_TOPIC, gauge_payload(now, 301.0))
        await publisher.flush()


def _peak_rss(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def _report(
    sent: Counter[str],
    text: str,
    health: dict[str, object],
    peak_mb: float,
    stored: object,
    received_after_restart: float,
    seconds: float,
) -> None:
    total = sum(sent.values())
    print(f"sent {total:,} messages in {seconds:.1f} s ({total / seconds:,.0f}/s), by kind:")
    for kind in KINDS:
        print(f"  {sent[kind.name]:>8,}  {kind.name}  (expected: {kind.expected})")
    print(f"  {sent['good reading']:>8,}  good reading")
    print("rejected by reason (collector /metrics):")
    rejected = metric(text, "floodwatch_readings_rejected_total")
    for labels, value in sorted(rejected.items()):
        print(f"  {value:>8,.0f}  {labels}")
    hostile = total - sent["good reading"]
    print(f"hostile messages rejected: {rejected.total():,.0f} of {hostile:,}")
    internal = metric(text, "floodwatch_collector_internal_errors_total")
    print(f"internal errors: {internal.total():,.0f} {dict(internal) or ''}")
    written = metric(text, "floodwatch_readings_written_total").total()
    print(f"good readings written: {written:,.0f} of {sent['good reading']:,}")
    print(
        f"InfluxDB holds: {_count(stored)} readings (goal: {sent['good reading'] + 1:,}, "
        "the good ones and the restart's sentinel, each once)"
    )
    print(f"collector peak RSS (VmHWM): {peak_mb:.0f} MB")
    print(f"health after the run: {health.get('status')} (mqtt {health.get('mqtt')})")
    print(f"after a restart on the same session: {received_after_restart:.0f} message(s) "
          "received (1, the sentinel, is the goal: nothing handed back)")  # fmt: skip


def _count(result: object) -> object:
    try:
        return result["results"][0]["series"][0]["values"][0][1]  # type: ignore[index]
    except (KeyError, IndexError, TypeError):
        return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="floodwatch-fuzz-"))
    try:
        asyncio.run(run(args, workdir))
    finally:
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
