"""End-to-end ingest benchmark: real Mosquitto, real influxd, one collector process.

    .venv/bin/python bench/ingest.py [--gauges 200] [--readings 200000] [--rate 1000]
        [--duration 30] [--publishers 2] [--publisher raw|paho] [--quick] [--keep]
        [--collector-env FLOODWATCH_BATCH_MAX=5000 ...] [--broker-inflight 1000]

Phase 1, sustained throughput: publisher processes push --readings QC-clean readings
(a smooth curve, distinct timestamps per station, all in the recent past) at QoS 1 as
fast as the broker takes them; the stored rate is measured from the first to the last
reading stored, by polling the collector's /metrics, and InfluxDB is counted at the end.
The default publishers write pre-encoded QoS 1 packets on a socket (~1 µs of CPU per
message): a paho client costs ~150 µs per message, more than the collector itself, so on
a 2-core machine `--publisher paho` measures the publishers (~7,400/s) rather than the
collector. Real gauges publish from elsewhere.

Phase 2, latency: one paced publisher at --rate readings/s for --duration s, each
payload's ts the wall-clock time of its publish, so the collector's
floodwatch_ingest_lag_seconds histogram measures publish -> stored; a subscriber on
floodwatch/readings/# measures publish -> republished exactly, from the same ts.

The collector's RSS is sampled every 100 ms across both phases. Prints figures and the
goals met or missed; asserts nothing. Every process it starts is stopped at exit, Ctrl-C
included.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import multiprocessing
import os
import platform
import queue
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing.context import SpawnProcess
from multiprocessing.queues import Queue
from multiprocessing.sharedctypes import Synchronized
from multiprocessing.synchronize import Event
from pathlib import Path
from types import FrameType
from typing import Any

import orjson
import paho.mqtt.client as mqtt
import psutil
from paho.mqtt.enums import CallbackAPIVersion

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # the test harness lives in tests/, which is not installed

from floodwatch import mqtt as fw_mqtt  # noqa: E402
from floodwatch import topics  # noqa: E402
from floodwatch.replay import WindowedPublisher  # noqa: E402
from floodwatch.settings import MqttEndpoint  # noqa: E402
from tests.harness.collector_process import CollectorProcess  # noqa: E402
from tests.harness.gauges import write_catalog  # noqa: E402
from tests.harness.influx import InfluxServer  # noqa: E402
from tests.harness.mosquitto import MosquittoServer  # noqa: E402

GOAL_RATE = 8000.0  # readings/s stored, sustained
GOAL_P99_S = 1.0  # publish -> stored at 1,000 readings/s
GOAL_RSS_MB = 150.0
DATABASE = "bench"
RSS_INTERVAL_S = 0.1
POLL_INTERVAL_S = 0.1
SCRAPE_TIMEOUT_S = 10.0
STALL_TIMEOUT_S = 60.0  # give up on a phase when nothing is stored for this long
NEWEST_AGE_S = 300.0  # phase 1's newest reading is this old, so phase 2's are newer
MAX_SPAN_S = 20 * 86400.0  # phase 1's oldest reading: well inside the 30-day age window
MB = 1024 * 1024
RAW_WINDOW = 1000  # QoS 1 publishes awaiting PUBACK, as floodwatch.replay's publisher
RAW_BATCH = 100  # packets per write
RAW_ACK_GATHER_S = 0.002
RAW_READ_BYTES = 256 * 1024

_spawn = multiprocessing.get_context("spawn")


# --- readings ---------------------------------------------------------------------------


def level_at(station_index: int, epoch_s: float) -> float:
    """A smooth river: at most 60 cm/h of rise, far from QC's jump and spike limits.

    A function of time, not of the reading's index, so phase 2 continues phase 1's curve.
    """
    return round(300.0 + 10.0 * (station_index % 10) + 50.0 * math.sin(epoch_s / 3000.0), 2)


def gauge_payload(epoch_s: float, level: float) -> bytes:
    ts = datetime.fromtimestamp(epoch_s, UTC).isoformat()
    # orjson >= 3.12 hands back even 50 bytes in a ~4 KiB allocation: copied, a publisher
    # holding 100,000 payloads needs 10 MB instead of 400 MB.
    return bytes(memoryview(orjson.dumps({"ts": ts, "level": level})))


@dataclass(frozen=True)
class FloodPlan:
    """Phase 1's readings: round-robin over the stations, one step apart per station."""

    station_ids: tuple[str, ...]
    readings: int
    start_epoch: float
    spacing_s: float

    @classmethod
    def ending_now(cls, station_ids: Sequence[str], readings: int) -> FloodPlan:
        per_station = math.ceil(readings / len(station_ids))
        spacing = min(60.0, MAX_SPAN_S / per_station)
        start = time.time() - NEWEST_AGE_S - spacing * per_station
        return cls(tuple(station_ids), readings, start, spacing)

    def part(self, part: int, parts: int) -> Iterator[tuple[str, bytes]]:
        """Topic and payload of every reading of the stations in `part` of `parts`, in
        order, so each station's readings leave one publisher in time order."""
        count = len(self.station_ids)
        for index in range(self.readings):
            station = index % count
            if station % parts != part:
                continue
            ts = self.start_epoch + (index // count) * self.spacing_s
            yield (
                topics.gauge_level(self.station_ids[station]),
                gauge_payload(ts, level_at(station, ts)),
            )


@dataclass(frozen=True)
class PublisherResult:
    name: str
    published: int
    started: float  # epoch seconds
    finished: float
    cpu_s: float  # the publisher's own CPU time while publishing

    @property
    def rate(self) -> float:
        return self.published / max(self.finished - self.started, 1e-9)


# --- worker processes (spawned: no shared GIL with the measuring process) --------------


def flood_worker(
    url: str, plan: FloodPlan, part: int, parts: int, ready: Event, go: Event, out: Queue[Any]
) -> None:
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_flood(url, plan, part, parts, ready, go, out))


async def _flood(
    url: str, plan: FloodPlan, part: int, parts: int, ready: Event, go: Event, out: Queue[Any]
) -> None:
    messages = list(plan.part(part, parts))
    endpoint = MqttEndpoint.parse(url)
    client = fw_mqtt.make_client(endpoint, f"bench-flood-{part}")
    await fw_mqtt.connect(client, endpoint)
    try:
        publisher = WindowedPublisher(client)
        ready.set()
        await asyncio.to_thread(go.wait)
        started, cpu = time.time(), time.process_time()
        for topic, payload in messages:
            await publisher.publish(topic, payload)
        await publisher.flush(wait_s=600)
        cpu = time.process_time() - cpu
        out.put(PublisherResult(f"flood-{part}", len(messages), started, time.time(), cpu))
    finally:
        client.disconnect()
        client.loop_stop()


def _remaining_length(length: int) -> bytes:
    encoded = bytearray()
    while True:
        length, digit = divmod(length, 128)
        encoded.append(digit | (0x80 if length else 0))
        if not length:
            return bytes(encoded)


def _mqtt_string(text: str) -> bytes:
    data = text.encode()
    return len(data).to_bytes(2, "big") + data


def mqtt_connect_packet(client_id: str) -> bytes:
    """MQTT 3.1.1 CONNECT: clean session, keep-alive off (the run is short)."""
    body = _mqtt_string("MQTT") + bytes([4, 0x02, 0, 0]) + _mqtt_string(client_id)
    return b"\x10" + _remaining_length(len(body)) + body


def mqtt_publish_packet(topic: str, payload: bytes, packet_id: int) -> bytes:
    """A QoS 1 PUBLISH."""
    body = _mqtt_string(topic) + packet_id.to_bytes(2, "big") + payload
    return b"\x32" + _remaining_length(len(body)) + body


class _PacketReader:
    """Splits the broker's byte stream into packets; counts PUBACKs."""

    def __init__(self) -> None:
        self._buffer = b""
        self.pubacks = 0
        self.connack: int | None = None

    def feed(self, data: bytes) -> None:
        if not data:
            raise ConnectionError("the broker closed the connection")
        buffer = self._buffer + data
        position = 0
        while True:
            length, multiplier, cursor = 0, 1, position + 1
            while cursor < len(buffer):
                byte = buffer[cursor]
                length += (byte & 0x7F) * multiplier
                multiplier *= 128
                cursor += 1
                if not byte & 0x80:
                    break
            else:
                break  # the length is not complete yet
            end = cursor + length
            if end > len(buffer):
                break
            kind = buffer[position] >> 4
            if kind == 4:
                self.pubacks += 1
            elif kind == 2:
                self.connack = buffer[cursor + 1]
            position = end
        self._buffer = buffer[position:]


def raw_flood_worker(
    url: str, plan: FloodPlan, part: int, parts: int, ready: Event, go: Event, out: Queue[Any]
) -> None:
    """Phase 1 publisher with next to no CPU cost of its own: pre-encoded QoS 1 PUBLISH
    packets written in batches on one socket, at most RAW_WINDOW awaiting PUBACK. Real
    gauges publish from elsewhere; on a 2-core machine a paho client per process costs
    more CPU per message than the collector does, and would measure itself."""
    with contextlib.suppress(KeyboardInterrupt):
        endpoint = MqttEndpoint.parse(url)
        packets = [
            mqtt_publish_packet(topic, payload, index % 65535 + 1)
            for index, (topic, payload) in enumerate(plan.part(part, parts))
        ]
        with socket.create_connection((endpoint.host, endpoint.port), timeout=60) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            reader = _PacketReader()
            sock.sendall(mqtt_connect_packet(f"bench-flood-{part}"))
            while reader.connack is None:
                reader.feed(sock.recv(4096))
            if reader.connack != 0:
                raise ConnectionError(f"the broker refused the connection: {reader.connack}")
            ready.set()
            go.wait()
            started, cpu = time.time(), time.process_time()
            total, sent = len(packets), 0
            while reader.pubacks < total:
                room = RAW_WINDOW - (sent - reader.pubacks)
                if sent < total and room >= min(RAW_BATCH, total - sent):
                    count = min(RAW_BATCH, room, total - sent)
                    sock.sendall(b"".join(packets[sent : sent + count]))
                    sent += count
                    if select.select([sock], [], [], 0)[0]:
                        reader.feed(sock.recv(RAW_READ_BYTES))
                else:
                    # Waking for every 4-byte PUBACK would cost more CPU than the collector
                    # spends per message: let a couple of milliseconds of them gather.
                    time.sleep(RAW_ACK_GATHER_S)
                    reader.feed(sock.recv(RAW_READ_BYTES))
            cpu = time.process_time() - cpu
            out.put(PublisherResult(f"flood-{part}", total, started, time.time(), cpu))
            sock.sendall(b"\xe0\x00")  # DISCONNECT


def paced_worker(
    url: str,
    station_ids: tuple[str, ...],
    rate: float,
    duration: float,
    ready: Event,
    go: Event,
    out: Queue[Any],
) -> None:
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_paced(url, station_ids, rate, duration, ready, go, out))


async def _paced(
    url: str,
    station_ids: tuple[str, ...],
    rate: float,
    duration: float,
    ready: Event,
    go: Event,
    out: Queue[Any],
) -> None:
    endpoint = MqttEndpoint.parse(url)
    client = fw_mqtt.make_client(endpoint, "bench-paced")
    await fw_mqtt.connect(client, endpoint)
    gauge_topics = [topics.gauge_level(station_id) for station_id in station_ids]
    total = round(rate * duration)
    try:
        publisher = WindowedPublisher(client)
        ready.set()
        await asyncio.to_thread(go.wait)
        started, cpu = time.time(), time.process_time()
        base = time.monotonic()
        for index in range(total):
            delay = base + index / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            station = index % len(gauge_topics)
            now = time.time()  # ts = the publish moment: lag = publish -> stored
            await publisher.publish(
                gauge_topics[station], gauge_payload(now, level_at(station, now))
            )
        finished = time.time()
        await publisher.flush(wait_s=120)
        cpu = time.process_time() - cpu
        out.put(PublisherResult("paced", total, started, finished, cpu))
    finally:
        client.disconnect()
        client.loop_stop()


def subscriber_worker(
    host: str,
    port: int,
    since: float,
    ready: Event,
    stop: Event,
    received: Synchronized[int],
    out: Queue[Any],
) -> None:
    """Publish -> republished latency of every clean reading with ts >= since."""
    latencies: list[float] = []

    def on_connect(client: mqtt.Client, _u: object, _f: object, _rc: object, _p: object) -> None:
        client.subscribe(topics.clean_reading("+"), qos=0)

    def on_subscribe(_c: mqtt.Client, _u: object, _m: int, _rc: object, _p: object) -> None:
        ready.set()

    def on_message(_c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        arrived = time.time()
        ts = datetime.fromisoformat(orjson.loads(message.payload)["ts"]).timestamp()
        if ts >= since:
            latencies.append(arrived - ts)
            with received.get_lock():
                received.value += 1

    client = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id="bench-subscriber",
        protocol=mqtt.MQTTv311,
    )
    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    with contextlib.suppress(KeyboardInterrupt):
        client.connect(host, port)
        client.loop_start()
        stop.wait()
        client.disconnect()
        client.loop_stop()
        out.put(latencies)


# --- measuring the collector ------------------------------------------------------------

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$")


@dataclass
class Metrics:
    """One scrape of the collector's /metrics."""

    at: float
    samples: dict[str, float]

    @classmethod
    def parse(cls, text: str) -> Metrics:
        samples: dict[str, float] = {}
        for line in text.splitlines():
            match = _SAMPLE.match(line)
            if match:
                samples[match.group(1) + (match.group(2) or "")] = float(match.group(3))
        return cls(time.time(), samples)

    def total(self, name: str) -> float:
        """A counter summed over its labels."""
        return sum(
            value
            for key, value in self.samples.items()
            if key == name or key.startswith(name + "{")
        )

    def buckets(self, histogram: str) -> dict[float, float]:
        found: dict[float, float] = {}
        prefix = f'{histogram}_bucket{{le="'
        for key, value in self.samples.items():
            if key.startswith(prefix):
                found[float(key[len(prefix) : -2])] = value
        return found

    def labelled(self, name: str) -> dict[str, float]:
        return {
            key[len(name) :]: value
            for key, value in self.samples.items()
            if key.startswith(name + "{") and value
        }


def histogram_quantile(q: float, buckets: dict[float, float]) -> float:
    """Prometheus-style: linear interpolation inside the bucket holding the q-th rank.
    Returns +inf when that rank lies beyond the last finite bucket."""
    ordered = sorted(buckets.items())
    total = ordered[-1][1] if ordered else 0.0
    if total <= 0:
        return math.nan
    rank = q * total
    lower, below = 0.0, 0.0
    for bound, count in ordered:
        if count >= rank:
            if math.isinf(bound):
                return math.inf
            if count == below:
                return bound
            return lower + (bound - lower) * (rank - below) / (count - below)
        lower, below = bound, count
    return math.inf


def histogram_bucket(q: float, buckets: dict[float, float]) -> tuple[float, float]:
    """The bounds of the bucket holding the q-th rank: all the histogram really knows."""
    ordered = sorted(buckets.items())
    total = ordered[-1][1] if ordered else 0.0
    lower = 0.0
    for bound, count in ordered:
        if total > 0 and count >= q * total:
            return lower, bound
        lower = bound
    return math.nan, math.nan


def histogram_max_bound(buckets: dict[float, float]) -> float:
    """The upper bound of the highest non-empty bucket: the max is at most this."""
    previous = 0.0
    bound_of_max = math.nan
    for bound, count in sorted(buckets.items()):
        if count > previous:
            bound_of_max = bound
        previous = count
    return bound_of_max


def histogram_delta(after: Metrics, before: Metrics, histogram: str) -> dict[float, float]:
    old = before.buckets(histogram)
    return {bound: count - old.get(bound, 0.0) for bound, count in after.buckets(histogram).items()}


def exact_quantile(values: Sequence[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


class RssSampler(threading.Thread):
    """Samples a process's resident set size every RSS_INTERVAL_S."""

    def __init__(self, pid: int) -> None:
        super().__init__(name="rss-sampler", daemon=True)
        self._process = psutil.Process(pid)
        self._halt = threading.Event()
        self.peak = 0
        self.last = 0
        self.count = 0

    def run(self) -> None:
        while not self._halt.is_set():
            try:
                rss = int(self._process.memory_info().rss)
            except psutil.Error:
                return
            self.last = rss
            self.peak = max(self.peak, rss)
            self.count += 1
            self._halt.wait(RSS_INTERVAL_S)

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=2)


def vm_hwm_bytes(pid: int) -> int | None:
    """The kernel's own peak RSS (VmHWM) of a process."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def cpu_seconds(pid: int) -> float:
    try:
        times = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return math.nan
    return float(times.user + times.system)


class BrokerWithInflight(MosquittoServer):
    """The shipped configuration, with max_inflight_messages optionally replaced."""

    def __init__(self, workdir: Path, inflight: int | None) -> None:
        super().__init__(workdir)
        self.inflight = inflight

    def _write_config(self) -> Path:
        conf = super()._write_config()
        if self.inflight is not None:
            lines = [
                line
                for line in conf.read_text().splitlines()
                if not line.startswith("max_inflight_messages")
            ]
            conf.write_text("\n".join([*lines, f"max_inflight_messages {self.inflight}", ""]))
        return conf


# --- the run ----------------------------------------------------------------------------


@dataclass
class Bench:
    args: argparse.Namespace
    collector: CollectorProcess
    influx: InfluxServer
    broker: MosquittoServer
    station_ids: list[str]
    workers: list[SpawnProcess] = field(default_factory=list)
    slowest_scrape_s: float = 0.0
    failed_scrapes: int = 0

    def scrape(self) -> Metrics:
        """One /metrics scrape; a busy collector may answer slowly, which is recorded."""
        url = f"http://127.0.0.1:{self.collector.http_port}/metrics"
        for attempt in range(3):
            started = time.monotonic()
            try:
                with urllib.request.urlopen(url, timeout=SCRAPE_TIMEOUT_S) as response:
                    text = response.read().decode()
            except OSError:
                self.failed_scrapes += 1
                if attempt == 2:
                    raise
                continue
            finally:
                self.slowest_scrape_s = max(self.slowest_scrape_s, time.monotonic() - started)
            return Metrics.parse(text)
        raise AssertionError("unreachable")

    def start(self, target: Any, *args: Any) -> SpawnProcess:
        process = _spawn.Process(target=target, args=args, daemon=True)
        process.start()
        self.workers.append(process)
        return process

    def process_cpu(self) -> dict[str, float]:
        """CPU seconds so far of the collector, the broker and influxd."""
        assert self.collector.process is not None
        assert self.broker.process is not None
        found = {
            "collector": cpu_seconds(self.collector.process.pid),
            "mosquitto": cpu_seconds(self.broker.process.pid),
        }
        for child in psutil.Process().children():
            with contextlib.suppress(psutil.Error):
                if child.name() == "influxd":
                    found["influxd"] = cpu_seconds(child.pid)
        return found

    def wait_written(
        self, target: float, *, quiet_timeout: float = STALL_TIMEOUT_S
    ) -> list[Metrics]:
        """Scrapes until the written counter reaches target, or nothing moves for a while."""
        scrapes = [self.scrape()]
        last_move = time.monotonic()
        while scrapes[-1].total("floodwatch_readings_written_total") < target:
            time.sleep(POLL_INTERVAL_S)
            scrape = self.scrape()
            if scrape.total("floodwatch_readings_written_total") > scrapes[-1].total(
                "floodwatch_readings_written_total"
            ):
                last_move = time.monotonic()
            scrapes.append(scrape)
            if time.monotonic() - last_move > quiet_timeout:
                print(f"  !! nothing stored for {quiet_timeout:.0f} s; giving up on this phase")
                break
        return scrapes

    def influx_count(self) -> int:
        document = self.influx.query(
            'SELECT COUNT("level") FROM "water_level" GROUP BY "station"', DATABASE
        )
        series = document["results"][0].get("series", [])
        return sum(int(s["values"][0][1]) for s in series)

    def cpu_delta(self, before: dict[str, float], seconds: float, readings: float) -> str:
        after = self.process_cpu()
        parts = []
        for name, value in after.items():
            used = value - before.get(name, 0.0)
            per = f", {used / readings * 1e6:.0f} µs/reading" if readings else ""
            parts.append(f"{name} {used:.1f} s ({used / seconds * 100:.0f}% of a core{per})")
        return "; ".join(parts)


@dataclass
class Phase1:
    published: int = 0
    publish_rate: float = 0.0
    written: float = 0.0
    stored: int = 0
    rate: float = math.nan
    span_s: float = math.nan
    rate_while_publishing: float = math.nan
    rate_after_publishing: float = math.nan
    rejected: dict[str, float] = field(default_factory=dict)
    flagged: dict[str, float] = field(default_factory=dict)


def phase1(bench: Bench) -> Phase1:
    args = bench.args
    result = Phase1()
    print(
        f"\nphase 1: sustained throughput — {args.readings:,} readings from "
        f"{args.publishers} {args.publisher} publisher processes, QoS 1, as fast as they go"
    )
    plan = FloodPlan.ending_now(bench.station_ids, args.readings)
    ready = [_spawn.Event() for _ in range(args.publishers)]
    go = _spawn.Event()
    out: Queue[Any] = _spawn.Queue()
    worker = raw_flood_worker if args.publisher == "raw" else flood_worker
    for part in range(args.publishers):
        bench.start(worker, bench.broker.url, plan, part, args.publishers, ready[part], go, out)
    for event in ready:
        if not event.wait(120):
            raise RuntimeError("a publisher did not get ready")
    before = bench.scrape()
    base = before.total("floodwatch_readings_written_total")
    cpu_before = bench.process_cpu()
    go.set()
    started = time.time()
    scrapes = bench.wait_written(base + args.readings)
    finished = time.time()
    results: list[PublisherResult] = []
    for _ in range(args.publishers):
        try:
            results.append(out.get(timeout=30))
        except queue.Empty:
            print("  !! a publisher sent no result")
    result.published = sum(r.published for r in results)
    if results:
        publish_span = max(r.finished for r in results) - min(r.started for r in results)
        result.publish_rate = result.published / max(publish_span, 1e-9)
        print(
            f"  published {result.published:,} in {publish_span:.1f} s "
            f"({result.publish_rate:,.0f}/s; "
            + ", ".join(f"{r.name} {r.rate:,.0f}/s using {r.cpu_s:.1f} CPU-s" for r in results)
            + ")"
        )
    published_at = max((r.finished for r in results), default=math.nan)

    time.sleep(0.5)  # anything beyond N (redelivered duplicates) shows up now or never
    last = bench.scrape()
    written = [(s.at, s.total("floodwatch_readings_written_total") - base) for s in scrapes]
    result.written = last.total("floodwatch_readings_written_total") - base
    first = next(((t, w) for t, w in written if w > 0), None)
    done = next(((t, w) for t, w in written if w >= args.readings), None)
    if first and done and done[0] > first[0]:
        result.span_s = done[0] - first[0]
        result.rate = (done[1] - first[1]) / result.span_s
        during = [(t, w) for t, w in written if t <= published_at]
        if during and during[-1][0] > first[0]:
            result.rate_while_publishing = (during[-1][1] - first[1]) / (during[-1][0] - first[0])
            if done[0] > during[-1][0]:
                result.rate_after_publishing = (done[1] - during[-1][1]) / (done[0] - during[-1][0])
    result.stored = bench.influx_count()
    duplicates = result.written - args.readings
    result.rejected = last.labelled("floodwatch_readings_rejected_total")
    result.flagged = last.labelled("floodwatch_readings_flagged_total")
    print(
        f"  stored {result.stored:,}/{args.readings:,} (InfluxDB count), "
        f"duplicates {max(0, round(duplicates)):,} "
        f"(collector wrote {result.written:,.0f})"
    )
    print(
        f"  stored rate, first -> last stored: {result.rate:,.0f} readings/s over "
        f"{result.span_s:.1f} s (first publish -> last stored {finished - started:.1f} s)"
    )
    print(
        f"    while the publishers ran: {result.rate_while_publishing:,.0f}/s; "
        f"after they finished: {result.rate_after_publishing:,.0f}/s"
    )
    print(
        f"  rejected {sum(result.rejected.values()):.0f}{_labels(result.rejected)}, "
        f"QC-flagged {sum(result.flagged.values()):.0f}{_labels(result.flagged)}"
    )
    print("  CPU: " + bench.cpu_delta(cpu_before, finished - started, args.readings))
    return result


@dataclass
class Phase2:
    published: int = 0
    achieved_rate: float = 0.0
    stored: float = 0.0
    received: int = 0
    lag_p50: float = math.nan
    lag_p99: float = math.nan
    lag_p99_bucket: tuple[float, float] = (math.nan, math.nan)
    lag_max_bound: float = math.nan
    pipeline_p99: float = math.nan
    sub_p50: float = math.nan
    sub_p99: float = math.nan
    sub_max: float = math.nan


def phase2(bench: Bench) -> Phase2:
    args = bench.args
    result = Phase2()
    print(
        f"\nphase 2: latency at {args.rate:,.0f} readings/s for {args.duration:.0f} s "
        "(payload ts = publish time)"
    )
    since = time.time()
    sub_ready, stop = _spawn.Event(), _spawn.Event()
    received: Synchronized[int] = _spawn.Value("i", 0)
    sub_out: Queue[Any] = _spawn.Queue()
    bench.start(
        subscriber_worker, "127.0.0.1", bench.broker.port, since, sub_ready, stop, received, sub_out
    )
    ready, go = _spawn.Event(), _spawn.Event()
    out: Queue[Any] = _spawn.Queue()
    bench.start(
        paced_worker,
        bench.broker.url,
        tuple(bench.station_ids),
        args.rate,
        args.duration,
        ready,
        go,
        out,
    )
    if not (sub_ready.wait(60) and ready.wait(60)):
        raise RuntimeError("the phase 2 publisher or subscriber did not get ready")
    before = bench.scrape()
    base = before.total("floodwatch_readings_written_total")
    cpu_before = bench.process_cpu()
    go.set()
    published: PublisherResult = out.get(timeout=args.duration * 3 + 120)
    result.published = published.published
    result.achieved_rate = published.published / max(published.finished - published.started, 1e-9)
    bench.wait_written(base + published.published, quiet_timeout=30)
    deadline = time.monotonic() + 10
    while received.value < published.published and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    latencies: list[float] = sub_out.get(timeout=30)
    after = bench.scrape()
    elapsed = time.time() - published.started
    result.stored = after.total("floodwatch_readings_written_total") - base
    result.received = len(latencies)
    lag = histogram_delta(after, before, "floodwatch_ingest_lag_seconds")
    result.lag_p50 = histogram_quantile(0.5, lag)
    result.lag_p99 = histogram_quantile(0.99, lag)
    result.lag_p99_bucket = histogram_bucket(0.99, lag)
    result.lag_max_bound = histogram_max_bound(lag)
    pipeline = histogram_delta(after, before, "floodwatch_pipeline_latency_seconds")
    result.pipeline_p99 = histogram_quantile(0.99, pipeline)
    result.sub_p50 = exact_quantile(latencies, 0.5)
    result.sub_p99 = exact_quantile(latencies, 0.99)
    result.sub_max = max(latencies, default=math.nan)
    print(
        f"  published {result.published:,} (achieved {result.achieved_rate:,.1f}/s), "
        f"stored {result.stored:,.0f}/{result.published:,}, "
        f"republished and received {result.received:,}/{result.published:,}"
    )
    print(
        "  publish -> stored      (collector histogram, interpolated): "
        f"p50 {_ms(result.lag_p50)}  p99 {_ms(result.lag_p99)}  "
        f"max <= {_ms(result.lag_max_bound)}"
    )
    low, high = result.lag_p99_bucket
    print(f"    (the histogram only knows that p99 lies in ({_ms(low)}, {_ms(high)}])")
    print(
        "  publish -> republished (subscriber, exact):                 "
        f"p50 {_ms(result.sub_p50)}  p99 {_ms(result.sub_p99)}  max {_ms(result.sub_max)}"
    )
    print(
        f"  receipt -> stored      (floodwatch_pipeline_latency_seconds): "
        f"p99 {_ms(result.pipeline_p99)}"
    )
    rejected = after.total("floodwatch_readings_rejected_total") - before.total(
        "floodwatch_readings_rejected_total"
    )
    flagged = after.total("floodwatch_readings_flagged_total") - before.total(
        "floodwatch_readings_flagged_total"
    )
    print(f"  rejected {rejected:.0f}, QC-flagged {flagged:.0f} (flagged ones are not republished)")
    print("  CPU: " + bench.cpu_delta(cpu_before, elapsed, result.published))
    return result


def _labels(counts: dict[str, float]) -> str:
    return "".join(f" {label}={value:.0f}" for label, value in counts.items())


def _ms(seconds: float) -> str:
    if math.isnan(seconds):
        return "n/a"
    if math.isinf(seconds):
        return "> 120 s"
    return f"{seconds * 1000:,.0f} ms"


def _mark(met: bool) -> str:
    return "met" if met else "MISSED"


def report(
    args: argparse.Namespace, one: Phase1, two: Phase2, peak_rss: int, hwm: int | None
) -> None:
    rss_mb = max(peak_rss, hwm or 0) / MB
    p99 = max(two.lag_p99, two.sub_p99)
    width = 64
    print("\n" + "=" * width)
    print("Floodwatch ingest benchmark")
    print("=" * width)
    print(f"{'gauges':<30}{args.gauges:>12,}")
    print(f"{'readings (phase 1)':<30}{args.readings:>12,}")
    print(f"{'phase 1 publishers':<30}{args.publishers:>12} x {args.publisher}")
    print(f"{'collector overrides':<30}{', '.join(args.collector_env) or 'none':>12}")
    print(
        f"{'stored exactly once':<30}{one.stored:>12,}/{args.readings:,}, "
        f"duplicates {max(0, round(one.written - args.readings))}"
    )
    print(
        f"{'sustained readings/s':<30}{one.rate:>12,.0f}   goal >= {GOAL_RATE:,.0f}"
        f"{'':>9}{_mark(one.rate >= GOAL_RATE)}"
    )
    print(
        f"{f'latency p50 @ {args.rate:,.0f}/s':<30}{_ms(two.lag_p50):>12}   "
        f"(republished: {_ms(two.sub_p50)})"
    )
    print(
        f"{f'latency p99 @ {args.rate:,.0f}/s':<30}{_ms(p99):>12}   goal <= {GOAL_P99_S:g} s"
        f"{'':>10}{_mark(p99 <= GOAL_P99_S)}"
    )
    print(f"{'':<30}{'':>12}   (stored {_ms(two.lag_p99)}, republished {_ms(two.sub_p99)})")
    print(
        f"{'peak RSS (collector)':<30}{rss_mb:>9.1f} MB   goal <= {GOAL_RSS_MB:.0f} MB"
        f"{'':>8}{_mark(rss_mb <= GOAL_RSS_MB)}"
    )
    print(
        f"{'':<30}{'':>12}   (psutil peak {peak_rss / MB:.1f} MB, VmHWM {(hwm or 0) / MB:.1f} MB)"
    )
    print("=" * width)


def collector_environment(
    args: argparse.Namespace, workdir: Path, broker: MosquittoServer, influx: InfluxServer
) -> dict[str, str]:
    env = {
        "FLOODWATCH_MQTT_URL": broker.url,
        "FLOODWATCH_INFLUX_URL": influx.url,
        "FLOODWATCH_INFLUX_DATABASE": DATABASE,
        "FLOODWATCH_STATIONS": str(workdir / "stations.yaml"),
        "FLOODWATCH_SPOOL_PATH": str(workdir / "spool.sqlite"),
        "FLOODWATCH_STATE_PATH": str(workdir / "state.sqlite"),
        "FLOODWATCH_READINGS_PATH": str(workdir / "readings.sqlite"),
        "FLOODWATCH_MQTT_CLIENT_ID": "bench-collector",
        "FLOODWATCH_LOG_LEVEL": "WARNING",
    }
    for item in args.collector_env:
        key, _, value = item.partition("=")
        env[key] = value
    return env


def versions() -> str:
    influx = subprocess.run(["influxd", "version"], capture_output=True, text=True, check=False)
    return (
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"{influx.stdout.strip() or 'influxd ?'}"
    )


def run(args: argparse.Namespace, workdir: Path, cleanup: list[Any]) -> None:
    print(f"Floodwatch ingest benchmark ({versions()})")
    broker = BrokerWithInflight(workdir / "mosquitto", args.broker_inflight)
    cleanup.append(broker.kill)
    broker.start()
    influx = InfluxServer(workdir / "influxd")
    cleanup.append(influx.kill)
    influx.start()
    station_ids = write_catalog(workdir / "stations.yaml", count=args.gauges)
    env = collector_environment(args, workdir, broker, influx)
    collector = CollectorProcess(env, workdir / "collector.log")
    cleanup.append(collector.kill)
    collector.start()
    assert collector.process is not None
    pid = collector.process.pid
    overrides = ", ".join(args.collector_env)
    print(
        f"collector pid {pid}; broker max_inflight_messages "
        f"{args.broker_inflight or 'as shipped'}; setting overrides: {overrides or 'none'}"
    )
    sampler = RssSampler(pid)
    sampler.start()
    cleanup.append(sampler.stop)
    bench = Bench(args, collector, influx, broker, station_ids)
    cleanup.append(lambda: _stop_workers(bench.workers))
    print(f"collector RSS after start-up: {psutil.Process(pid).memory_info().rss / MB:.1f} MB")
    one = phase1(bench)
    print(f"  collector RSS now {sampler.last / MB:.1f} MB, peak so far {sampler.peak / MB:.1f} MB")
    two = phase2(bench)
    hwm = vm_hwm_bytes(pid)
    sampler.stop()
    total = bench.influx_count()
    expected = args.readings + two.published
    print(
        f"\nInfluxDB holds {total:,} readings (expected {expected:,}); "
        f"RSS sampled {sampler.count} times"
    )
    log_lines = [
        line
        for line in collector.log_path.read_text(errors="replace").splitlines()
        if " WARNING " in line or " ERROR " in line or "Traceback" in line
    ]
    print(
        f"slowest /metrics answer {bench.slowest_scrape_s:.2f} s "
        f"({bench.failed_scrapes} scrapes timed out after {SCRAPE_TIMEOUT_S:.0f} s)"
    )
    code = collector.stop()
    print(f"collector exited with {code}; {len(log_lines)} warning/error lines in its log")
    for line in log_lines[-10:]:
        print(f"  | {line}")
    report(args, one, two, sampler.peak, hwm)


def _stop_workers(workers: list[SpawnProcess]) -> None:
    for process in workers:
        if process.is_alive():
            process.terminate()
    for process in workers:
        process.join(timeout=5)
        if process.is_alive():
            process.kill()


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--gauges", type=int, default=200, help="stations in the catalog")
    parser.add_argument("--readings", type=int, default=200_000, help="phase 1 readings")
    parser.add_argument("--publishers", type=int, default=2, help="phase 1 publisher processes")
    parser.add_argument(
        "--publisher",
        choices=("raw", "paho"),
        default="raw",
        help="phase 1 client: pre-encoded packets on a socket (default), or paho + asyncio",
    )
    parser.add_argument("--rate", type=float, default=1000.0, help="phase 2 readings/s")
    parser.add_argument("--duration", type=float, default=30.0, help="phase 2 seconds")
    parser.add_argument(
        "--quick", action="store_true", help="a smoke run: 20 gauges, 10,000 readings, 5 s"
    )
    parser.add_argument(
        "--collector-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra collector environment, e.g. FLOODWATCH_BATCH_MAX=5000 (repeatable)",
    )
    parser.add_argument(
        "--broker-inflight",
        type=int,
        default=None,
        help="replace the shipped max_inflight_messages",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directory and logs")
    args = parser.parse_args(argv)
    if args.quick:
        args.gauges, args.readings, args.duration = 20, 10_000, 5.0
    if args.gauges < 1 or args.readings < 1 or args.publishers < 1 or args.rate <= 0:
        parser.error("--gauges, --readings, --publishers and --rate must be positive")
    return args


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main() -> int:
    args = parse_args()
    signal.signal(signal.SIGTERM, _interrupt)
    workdir = Path(tempfile.mkdtemp(prefix="floodwatch-bench-"))
    cleanup: list[Any] = []
    try:
        run(args, workdir, cleanup)
        return 0
    except KeyboardInterrupt:
        print("\ninterrupted; stopping everything", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not skip this
        for stop in reversed(cleanup):
            with contextlib.suppress(Exception):
                stop()
        if args.keep:
            print(f"work directory kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
