"""InfluxStore beyond the shared contract: outages, crashes, auth, refusals, wire format.

Tests that stop or kill influxd start their own; wire-format and retry details are checked
against a small scripted HTTP server, which sees exactly what the store sends.
"""

from __future__ import annotations

import base64
import gzip
import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import pytest_asyncio
from aiohttp import web

from floodwatch.errors import StoreRejected, StoreUnavailable
from floodwatch.models import QCFlag, Reading
from floodwatch.settings import Settings
from floodwatch.storage.influx import InfluxStore
from floodwatch.storage.line_protocol import encode_readings
from tests.harness.influx import InfluxServer, store_for

pytestmark = pytest.mark.integration

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
FAST_RETRIES = (0.01, 0.02, 0.04)
SECRET = "s3cr3t-do-not-log"


def readings(count: int, station_id: str = "gauge-1", start: int = 0) -> list[Reading]:
    return [
        Reading(station_id, T0 + timedelta(seconds=n), 1.0 + n / 1000, seq=n, qc=QCFlag(n % 4))
        for n in range(start, start + count)
    ]


# --- against a real influxd -------------------------------------------------------------


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[InfluxServer]:
    """An influxd this test alone may stop, kill and restart."""
    with InfluxServer(tmp_path / "influxd") as server:
        yield server


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxServer]:
    with InfluxServer(tmp_path_factory.mktemp("influxd-auth"), auth_enabled=True) as server:
        yield server


async def test_unavailable_while_stopped_then_writes_again_after_restart(
    own_server: InfluxServer,
) -> None:
    store = store_for(own_server, retry_delays=FAST_RETRIES)
    await store.open()
    try:
        await store.write(readings(10))
        own_server.stop()

        with pytest.raises(StoreUnavailable, match="4 attempt"):
            await store.write(readings(10, start=10))
        with pytest.raises(StoreUnavailable):
            await store.ping()
        with pytest.raises(StoreUnavailable):
            await store.query("gauge-1", T0, T0 + HOUR)
        with pytest.raises(StoreUnavailable):
            await store.count("gauge-1")

        own_server.start()
        await store.ping()
        await store.write(readings(10, start=10))
        assert await store.query("gauge-1", T0, T0 + HOUR) == readings(20)
    finally:
        await store.close()


async def test_kill_9_then_restart_keeps_written_data(own_server: InfluxServer) -> None:
    store = store_for(own_server, retry_delays=FAST_RETRIES)
    await store.open()
    try:
        await store.write(readings(1000))
        own_server.kill()
        own_server.start()

        assert await store.count("gauge-1") == 1000
        assert await store.query("gauge-1", T0, T0 + HOUR) == readings(1000)
    finally:
        await store.close()


async def test_store_opened_before_influxdb_starts_writes_once_it_is_up(
    own_server: InfluxServer,
) -> None:
    own_server.stop()
    store = store_for(own_server, retry_delays=FAST_RETRIES)
    try:
        with pytest.raises(StoreUnavailable):
            await store.open()

        own_server.start()
        await store.write(readings(3))  # creates the database it could not create before

        assert await store.count("gauge-1") == 3
    finally:
        await store.close()


async def test_write_recreates_a_database_dropped_behind_its_back(
    influx_server: InfluxServer, influx_store: InfluxStore
) -> None:
    await influx_store.write(readings(2))
    database = influx_store.description.rsplit("db=", 1)[1]
    influx_server.query(f'DROP DATABASE "{database}"')

    await influx_store.write(readings(3, start=2))

    assert await influx_store.count("gauge-1") == 3


async def test_wrong_password_is_refused_credentials(auth_server: InfluxServer) -> None:
    store = store_for(auth_server, password=SECRET, retry_delays=FAST_RETRIES)
    try:
        with pytest.raises(StoreUnavailable, match="refused the credentials") as raised:
            await store.open()
        with pytest.raises(StoreUnavailable, match="refused the credentials"):
            await store.write(readings(1))
        assert SECRET not in str(raised.value)
    finally:
        await store.close()


async def test_missing_credentials_are_refused(auth_server: InfluxServer) -> None:
    store = InfluxStore(auth_server.url, "anything", retry_delays=FAST_RETRIES)
    try:
        with pytest.raises(StoreUnavailable, match="refused the credentials"):
            await store.open()
    finally:
        await store.close()


async def test_right_password_works(auth_server: InfluxServer) -> None:
    store = store_for(auth_server)
    await store.open()
    try:
        await store.write(readings(5))
        assert await store.query("gauge-1", T0, T0 + HOUR) == readings(5)
    finally:
        await store.close()


async def test_user_without_admin_rights_writes_to_an_existing_database(
    auth_server: InfluxServer,
) -> None:
    # Such a user may not CREATE DATABASE (HTTP 403); open() must not fail on that.
    auth_server.query("CREATE DATABASE limited")
    auth_server.query("CREATE USER writer WITH PASSWORD 'writer-pw'")
    auth_server.query("GRANT ALL ON limited TO writer")
    store = InfluxStore(auth_server.url, "limited", username="writer", password="writer-pw")
    await store.open()
    try:
        await store.write(readings(2))
        assert await store.count("gauge-1") == 2
    finally:
        await store.close()


async def test_field_type_conflict_is_rejected(
    influx_server: InfluxServer, influx_store: InfluxStore
) -> None:
    # Field types are fixed per shard, so the string must land in the shard of the readings.
    database = influx_store.description.rsplit("db=", 1)[1]
    line = f'water_level,station=gauge-1 level="high" {(T0 + HOUR).timestamp() * 1000:.0f}\n'
    status, body = influx_server.write(database, line)
    assert status == 204, body

    with pytest.raises(StoreRejected, match="field type conflict"):
        await influx_store.write(readings(3))


async def test_influxd_accepts_the_gzip_body(
    influx_server: InfluxServer, influx_store: InfluxStore
) -> None:
    # The exact bytes the store sends; the scripted-server tests show it sends them gzipped.
    database = influx_store.description.rsplit("db=", 1)[1]
    body = gzip.compress(encode_readings(readings(50)))
    status, answer = influx_server.write(
        database, "", body=body, headers={"Content-Encoding": "gzip"}
    )

    assert status == 204, answer
    assert await influx_store.query("gauge-1", T0, T0 + HOUR) == readings(50)


# --- against a scripted HTTP server -----------------------------------------------------


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes  # aiohttp has already undone the Content-Encoding


@dataclass
class ScriptedInflux:
    """Answers each path from a queue of (status, body), then with a success."""

    url: str = ""
    requests: list[Recorded] = field(default_factory=list)
    script: dict[str, list[tuple[int, str]]] = field(default_factory=dict)

    def then(self, path: str, *answers: tuple[int, str]) -> None:
        self.script.setdefault(path, []).extend(answers)

    def sent(self, path: str) -> list[Recorded]:
        return [r for r in self.requests if r.path == path]

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append(
            Recorded(
                request.method,
                request.path,
                dict(request.query),
                dict(request.headers),
                await request.read(),
            )
        )
        queued = self.script.get(request.path)
        if queued:
            status, text = queued.pop(0)
        elif request.path == "/query":
            status, text = 200, '{"results":[{"statement_id":0}]}'
        else:
            status, text = 204, ""
        return web.Response(status=status, body=text.encode() or None)


@pytest_asyncio.fixture
async def scripted() -> AsyncIterator[ScriptedInflux]:
    fake = ScriptedInflux()
    app = web.Application()
    app.router.add_route("*", "/{path:.*}", fake.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    fake.url = f"http://{host}:{port}"
    try:
        yield fake
    finally:
        await runner.cleanup()


@pytest_asyncio.fixture
async def scripted_store(scripted: ScriptedInflux) -> AsyncIterator[InfluxStore]:
    store = InfluxStore(scripted.url, "floodwatch", retry_delays=FAST_RETRIES)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


async def test_open_creates_the_database(
    scripted: ScriptedInflux, scripted_store: InfluxStore
) -> None:
    (create,) = scripted.sent("/query")
    assert create.method == "POST"
    assert create.query["q"] == 'CREATE DATABASE "floodwatch"'


async def test_write_sends_gzipped_line_protocol_with_ms_precision(
    scripted: ScriptedInflux, scripted_store: InfluxStore
) -> None:
    batch = readings(500)
    await scripted_store.write(batch)

    (write,) = scripted.sent("/write")
    assert write.method == "POST"
    assert write.query == {"db": "floodwatch", "precision": "ms"}
    assert write.headers["Content-Encoding"] == "gzip"
    assert write.body == encode_readings(batch)
    assert int(write.headers["Content-Length"]) < len(write.body) // 3  # really compressed


async def test_write_splits_into_chunks_of_at_most_5000_points(
    scripted: ScriptedInflux, scripted_store: InfluxStore
) -> None:
    batch = readings(12_001)
    await scripted_store.write(batch)

    bodies = [w.body for w in scripted.sent("/write")]
    assert [body.count(b"\n") for body in bodies] == [5000, 5000, 2001]
    assert b"".join(bodies) == encode_readings(batch)


@pytest.mark.parametrize("status", [500, 503, 429])
async def test_transient_failures_are_retried(
    scripted: ScriptedInflux, scripted_store: InfluxStore, status: int
) -> None:
    scripted.then("/write", (status, '{"error":"busy"}'), (status, '{"error":"busy"}'))

    await scripted_store.write(readings(3))

    assert len(scripted.sent("/write")) == 3


async def test_persistent_server_errors_end_in_store_unavailable(
    scripted: ScriptedInflux, scripted_store: InfluxStore
) -> None:
    scripted.then("/write", *[(503, '{"error":"overloaded"}')] * 10)

    with pytest.raises(StoreUnavailable, match="overloaded"):
        await scripted_store.write(readings(3))

    assert len(scripted.sent("/write")) == len(FAST_RETRIES) + 1


@pytest.mark.parametrize("status", [401, 403])
async def test_refused_credentials_are_not_retried(
    scripted: ScriptedInflux, scripted_store: InfluxStore, status: int
) -> None:
    scripted.then("/write", (status, '{"error":"authorization failed"}'))

    with pytest.raises(StoreUnavailable, match="refused the credentials"):
        await scripted_store.write(readings(3))

    assert len(scripted.sent("/write")) == 1


@pytest.mark.parametrize(
    ("status", "text"),
    [
        (400, '{"error":"partial write: field type conflict dropped=1"}'),
        (400, '{"error":"unable to parse \'water_level\': missing fields"}'),
        (413, '{"error":"Request Entity Too Large"}'),
    ],
)
async def test_other_client_errors_are_rejections_with_influx_text(
    scripted: ScriptedInflux, scripted_store: InfluxStore, status: int, text: str
) -> None:
    scripted.then("/write", (status, text))

    with pytest.raises(StoreRejected) as raised:
        await scripted_store.write(readings(3))

    assert text.split('"error":"')[1].split('"')[0].replace("\\'", "'") in str(raised.value)
    assert len(scripted.sent("/write")) == 1


async def test_bad_reading_is_rejected_before_anything_is_sent(
    scripted: ScriptedInflux, scripted_store: InfluxStore
) -> None:
    batch = [*readings(6000), Reading("gauge-1", T0, float("nan"))]

    with pytest.raises(StoreRejected, match="finite"):
        await scripted_store.write(batch)

    assert scripted.sent("/write") == []


@pytest.mark.parametrize(
    "answer",
    [
        (200, '{"results":[{"statement_id":0,"error":"not implemented: CREATE DATABASE"}]}'),
        (400, '{"error":"unsupported statement"}'),
        (422, '{"code":"unprocessable entity"}'),
    ],
)
async def test_open_tolerates_a_server_that_cannot_create_databases(
    scripted: ScriptedInflux, answer: tuple[int, str]
) -> None:
    # InfluxDB 2.x maps databases to buckets by itself and refuses CREATE DATABASE.
    scripted.then("/query", answer)
    store = InfluxStore(scripted.url, "floodwatch", token="t", retry_delays=FAST_RETRIES)
    try:
        await store.open()
        await store.write(readings(1))
    finally:
        await store.close()

    assert len(scripted.sent("/write")) == 1


async def test_token_goes_in_the_authorization_header(scripted: ScriptedInflux) -> None:
    settings = Settings(influx_url=scripted.url, influx_token=SECRET, influx_database="db2")
    store = InfluxStore.from_settings(settings)
    await store.open()
    try:
        await store.write(readings(1))
    finally:
        await store.close()

    assert {r.headers["Authorization"] for r in scripted.requests} == {f"Token {SECRET}"}
    assert scripted.sent("/write")[0].query["db"] == "db2"
    assert SECRET not in store.description
    assert SECRET not in repr(store)


async def test_username_and_password_go_as_basic_auth(scripted: ScriptedInflux) -> None:
    settings = Settings(
        influx_url=scripted.url, influx_username="collector", influx_password=SECRET
    )
    store = InfluxStore.from_settings(settings)
    await store.open()
    try:
        await store.write(readings(1))
    finally:
        await store.close()

    expected = "Basic " + base64.b64encode(f"collector:{SECRET}".encode()).decode()
    assert {r.headers["Authorization"] for r in scripted.requests} == {expected}
    assert store.description == f"InfluxDB {scripted.url} db=floodwatch"


async def test_credentials_never_reach_the_logs(
    scripted: ScriptedInflux, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    scripted.then("/query", (503, "{}"), (401, '{"error":"authorization failed"}'))
    scripted.then("/write", (503, "{}"), (500, "{}"), (401, '{"error":"authorization failed"}'))
    store = InfluxStore(scripted.url, token=SECRET, retry_delays=FAST_RETRIES)
    messages = []
    try:
        for call in (store.open, lambda: store.write(readings(1))):
            with pytest.raises(StoreUnavailable) as raised:
                await call()
            messages.append(str(raised.value))
    finally:
        await store.close()

    assert "retrying" in caplog.text  # the retries were logged, so the check below means something
    assert SECRET not in caplog.text
    assert all(SECRET not in message for message in messages)


async def test_ping_needs_a_2xx(scripted: ScriptedInflux, scripted_store: InfluxStore) -> None:
    await scripted_store.ping()
    scripted.then("/ping", (404, "not influx"))

    with pytest.raises(StoreUnavailable, match="404"):
        await scripted_store.ping()


async def test_query_asks_for_milliseconds_in_chunks_and_joins_them(
    scripted: ScriptedInflux, scripted_store: InfluxStore
) -> None:
    chunk = '{"results":[{"statement_id":0,"series":[{"name":"water_level",'
    chunk += '"columns":["time","level","qc"],"values":[[%d,%s,0]]}],"partial":true}]}\n'
    scripted.then("/query", (200, chunk % (1709294400000, "1.5") + chunk % (1709294460000, "2")))

    got = await scripted_store.query("gauge-1", T0, T0 + HOUR)

    select = scripted.sent("/query")[-1]
    assert select.query["epoch"] == "ms"
    assert select.query["chunked"] == "true"
    assert select.query["q"].startswith('SELECT "level"')
    assert got == [Reading("gauge-1", T0, 1.5), Reading("gauge-1", T0 + timedelta(minutes=1), 2.0)]


async def test_a_query_error_is_store_unavailable(
    scripted: ScriptedInflux, scripted_store: InfluxStore
) -> None:
    scripted.then("/query", (200, '{"results":[{"statement_id":0,"error":"database not found"}]}'))

    with pytest.raises(StoreUnavailable, match="database not found"):
        await scripted_store.count("gauge-1")


async def test_methods_before_open_are_a_programming_error() -> None:
    store = InfluxStore("http://127.0.0.1:9", "floodwatch")

    with pytest.raises(RuntimeError, match="not open"):
        await store.write(readings(1))
