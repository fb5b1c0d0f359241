"""The alert HTTP API over real HTTP, with a real outbox and a real SQLite readings store."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from lxml import etree

from alerts.api import add_routes
from alerts.events import EventKind
from alerts.store import AlertStore
from floodwatch.catalog import Catalog, load_catalog
from floodwatch.errors import StoreUnavailable
from floodwatch.models import ForecastPoint, Reading, from_epoch_ms, utc_now
from floodwatch.net import free_port
from floodwatch.settings import Settings
from floodwatch.storage.base import ReadingStore
from floodwatch.storage.influx import InfluxStore
from floodwatch.storage.sqlite import SQLiteStore
from tests.harness.alert_events import DANGER, WATCH, commit, event
from tests.harness.gauges import write_catalog

SCHEMA_PATH = Path(__file__).parents[1] / "data" / "cap" / "CAP-v1.2.xsd"
CAP = "{urn:oasis:names:tc:emergency:cap:1.2}"
ATOM = "{http://www.w3.org/2005/Atom}"
NOW = from_epoch_ms(round(utc_now().timestamp() * 1000))
HOUR = timedelta(hours=1)


@dataclass
class Api:
    client: TestClient[web.Request, web.Application]
    alert_store: AlertStore
    readings: ReadingStore
    catalog: Catalog

    async def get(self, path: str, status: int = 200) -> Any:
        response = await self.client.get(path)
        assert response.status == status, await response.text()
        assert response.content_type == "application/json"
        return await response.json()


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    path = tmp_path / "stations.yaml"
    write_catalog(path, 3, maintenance=("gauge-002",))
    return load_catalog(path)


@pytest_asyncio.fixture
async def api(tmp_path: Path, catalog: Catalog) -> AsyncIterator[Api]:
    alert_store = AlertStore(tmp_path / "state.sqlite")
    readings = SQLiteStore(tmp_path / "readings.sqlite")
    await alert_store.open()
    await readings.open()
    async with serve(catalog, alert_store, readings) as client:
        yield Api(client, alert_store, readings, catalog)
    await readings.close()
    await alert_store.close()


def serve(
    catalog: Catalog, alert_store: AlertStore, readings: ReadingStore
) -> TestClient[web.Request, web.Application]:
    app = web.Application()
    settings = Settings(timezone="Europe/Berlin", cap_sender="floodwatch.example")
    add_routes(
        app,
        catalog_source=lambda: catalog,
        alert_store=alert_store,
        readings=readings,
        settings=settings,
    )
    return TestClient(TestServer(app))


async def rising_gauge(readings: ReadingStore) -> None:
    """gauge-000 at 380 cm now, forecast to pass the watch mark (400) in 1 h 20 min."""
    await readings.write(
        [Reading("gauge-000", NOW - timedelta(minutes=m), 380.0 - m) for m in range(0, 60, 10)]
    )
    await readings.write([Reading("gauge-000", NOW - 100 * HOUR, 300.0)])
    issued = NOW - timedelta(minutes=1)
    await readings.write_forecasts(
        [
            ForecastPoint("gauge-000", issued, NOW + HOUR, 3600, 395.0, 390.0, 400.0, "trend"),
            ForecastPoint("gauge-000", issued, NOW + 2 * HOUR, 7200, 410.0, 400.0, 420.0, "trend"),
        ]
    )


# --- GET /api/stations ------------------------------------------------------------------


async def test_stations_are_geojson_with_level_trend_and_alert_state(api: Api) -> None:
    await rising_gauge(api.readings)
    await commit(
        api.alert_store,
        event("gauge-001", EventKind.ESCALATION),
        event("gauge-001", EventKind.PREWARNING, 1, threshold=DANGER, expected_in_h=3),
        event("gauge-002", EventKind.OFFLINE, threshold=None, level=None),
    )

    body = await api.get("/api/stations")

    assert body["type"] == "FeatureCollection"
    assert body["readings"] == "ok"
    features = {feature["id"]: feature for feature in body["features"]}
    assert list(features) == ["gauge-000", "gauge-001", "gauge-002"]
    rising = features["gauge-000"]
    station = api.catalog["gauge-000"]
    assert rising["type"] == "Feature"
    assert rising["geometry"] == {"type": "Point", "coordinates": [station.lon, station.lat]}
    props = rising["properties"]
    assert props["id"] == "gauge-000"
    assert props["names"]["ru"] == "Пост gauge-000"
    assert props["unit"] == "cm"
    assert props["level"] == 380.0
    assert datetime.fromisoformat(props["ts"]) == NOW
    assert props["trend"]["direction"] == "rising"
    assert props["trend"]["rate_per_h"] == pytest.approx(15.0)
    assert props["alert_level"] is None
    assert props["severity"] is None
    assert props["next_threshold"]["key"] == "watch"
    assert props["next_threshold"]["source"] == "forecast"
    expected = datetime.fromisoformat(props["next_threshold"]["expected_at"])
    assert expected == NOW + timedelta(minutes=80)

    held = features["gauge-001"]["properties"]
    assert held["level"] is None  # no readings stored for it
    assert held["trend"] is None
    assert held["alert_level"]["key"] == "watch"
    assert held["severity"] == "watch"
    assert held["prewarning"]["key"] == "danger"
    assert held["next_threshold"]["key"] == "danger"
    assert held["next_threshold"]["source"] == "prewarning"
    offline = features["gauge-002"]["properties"]
    assert offline["offline"] is True
    assert offline["maintenance"] is True  # from the catalog


async def test_stations_still_answer_when_the_readings_store_is_down(
    tmp_path: Path, catalog: Catalog
) -> None:
    alert_store = AlertStore(tmp_path / "state.sqlite")
    await alert_store.open()
    await commit(alert_store, event("gauge-001"))
    dead = InfluxStore(f"http://127.0.0.1:{free_port()}", "nowhere", retry_delays=())
    try:
        with contextlib.suppress(StoreUnavailable):
            await dead.open()  # the session stays usable for later requests
        async with serve(catalog, alert_store, dead) as client:
            api = Api(client, alert_store, dead, catalog)
            body = await api.get("/api/stations")
            assert body["readings"] == "unavailable"
            props = {f["id"]: f["properties"] for f in body["features"]}
            assert props["gauge-001"]["alert_level"]["key"] == "watch"
            assert props["gauge-000"]["level"] is None

            error = await api.get("/api/stations/gauge-000", 503)
            assert "unavailable" in error["error"]
    finally:
        await dead.close()
        await alert_store.close()


# --- GET /api/stations/{id} -------------------------------------------------------------


async def test_one_station_has_catalog_readings_forecast_state_and_events(api: Api) -> None:
    await rising_gauge(api.readings)
    await commit(
        api.alert_store,
        event("gauge-000", EventKind.PREWARNING, threshold=WATCH, expected_in_h=1),
        event("gauge-001", EventKind.ESCALATION),
    )

    body = await api.get("/api/stations/gauge-000")

    assert body["station"]["id"] == "gauge-000"
    assert [rung["key"] for rung in body["station"]["levels"]] == ["watch", "danger"]
    assert body["station"]["levels"][0]["value"] == 400.0
    assert body["hours"] == 48
    assert [r["level"] for r in body["readings"]] == [330.0, 340.0, 350.0, 360.0, 370.0, 380.0]
    assert body["readings"][-1]["qc"] == []
    assert body["forecast"]["method"] == "trend"
    assert [p["horizon_h"] for p in body["forecast"]["points"]] == [1.0, 2.0]
    assert body["trend"]["direction"] == "rising"
    assert body["state"]["prewarning"]["key"] == "watch"
    assert body["next_threshold"]["source"] == "prewarning"
    assert [e["event"]["kind"] for e in body["events"]] == ["prewarning"]

    longer = await api.get("/api/stations/gauge-000?hours=720")
    assert len(longer["readings"]) == 7
    assert longer["hours"] == 720


@pytest.mark.parametrize("hours", ["0", "-1", "720.5", "abc", "nan", "inf", ""])
async def test_bad_hours_get_400_naming_the_parameter(api: Api, hours: str) -> None:
    body = await api.get(f"/api/stations/gauge-000?hours={hours}", 400)
    assert body["parameter"] == "hours"
    assert body["error"].startswith("hours:")


@pytest.mark.parametrize("station_id", ["nobody", "GAUGE-000", "gauge-000%20", "x" * 300])
async def test_unknown_station_gets_404_json(api: Api, station_id: str) -> None:
    body = await api.get(f"/api/stations/{station_id}", 404)
    assert body["error"].startswith("unknown station ")


async def test_unknown_paths_and_methods_get_json_errors(api: Api) -> None:
    assert (await api.get("/api/nothing-here", 404))["error"] == "Not Found"
    response = await api.client.post("/api/stations")
    assert response.status == 405
    assert (await response.json())["error"] == "Method Not Allowed"
    assert "GET" in response.headers["Allow"]


# --- GET /api/alerts --------------------------------------------------------------------


async def test_alerts_lists_active_gauges_and_recent_events(api: Api) -> None:
    await commit(
        api.alert_store,
        event("gauge-000", EventKind.PREWARNING, 0, threshold=WATCH, expected_in_h=2),
        event("gauge-001", EventKind.ESCALATION, 1, threshold=DANGER, level=610.0),
        event("gauge-002", EventKind.OFFLINE, 2, threshold=None, level=None),
    )

    body = await api.get("/api/alerts")

    assert [a["station_id"] for a in body["active"]] == ["gauge-001", "gauge-000"]
    assert body["active"][0]["level"]["severity"] == "danger"
    assert body["active"][0]["names"]["en"] == "Gauge gauge-001"
    assert body["active"][1]["level"] is None
    assert body["active"][1]["prewarning"]["key"] == "watch"
    kinds = [item["event"]["kind"] for item in body["recent"]]
    assert kinds == ["offline", "escalation", "prewarning"]  # newest first
    assert body["recent"][0]["event"]["operator_only"] is True
    assert body["recent"][1]["event"]["severity"] == "danger"

    one = await api.get("/api/alerts?limit=1&station=gauge-001")
    assert [item["event"]["kind"] for item in one["recent"]] == ["escalation"]
    assert [a["station_id"] for a in one["active"]] == ["gauge-001"]


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=ten", "limit"),
        ("limit=1.5", "limit"),
        ("station=nobody", "station"),
    ],
)
async def test_bad_alert_parameters_get_400(api: Api, query: str, parameter: str) -> None:
    body = await api.get(f"/api/alerts?{query}", 400)
    assert body["parameter"] == parameter


# --- GET /cap ---------------------------------------------------------------------------


async def test_cap_feed_carries_active_public_alerts_as_valid_cap(api: Api) -> None:
    await commit(
        api.alert_store,
        event("gauge-000", EventKind.ESCALATION, 0),
        event("gauge-000", EventKind.ESCALATION, 30, threshold=DANGER, level=605.0),
        event("gauge-001", EventKind.PREWARNING, 0, threshold=WATCH, expected_in_h=2),
        event("gauge-001", EventKind.PREWARNING_WITHDRAWN, 60, threshold=WATCH),
        event("gauge-002", EventKind.OFFLINE, 0, threshold=None, level=None),
    )
    response = await api.client.get("/cap")
    assert response.status == 200
    assert response.content_type == "application/atom+xml"

    feed = etree.fromstring(await response.read())
    alerts = [entry.find(f"{ATOM}content/{CAP}alert") for entry in feed.iter(f"{ATOM}entry")]
    schema = etree.XMLSchema(etree.parse(str(SCHEMA_PATH)))
    for alert in alerts:
        assert alert is not None
        schema.assertValid(etree.ElementTree(alert))
    by_type = {a.findtext(f"{CAP}msgType"): a for a in alerts if a is not None}
    assert set(by_type) == {"Update", "Cancel"}  # no gauge-health event in CAP
    update = by_type["Update"]
    assert update.findtext(f"{CAP}info/{CAP}severity") == "Extreme"
    assert "gauge-000:escalation:watch:" in (update.findtext(f"{CAP}references") or "")
    cancel = by_type["Cancel"]
    assert "gauge-001:prewarning:watch:" in (cancel.findtext(f"{CAP}references") or "")
    for alert in alerts:
        assert alert is not None
        sent = alert.findtext(f"{CAP}sent") or ""
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[-+]\d\d:\d\d", sent), sent
        assert alert.findtext(f"{CAP}sender") == "floodwatch.example"

    again = await api.client.get("/cap")
    assert await again.read() == await response.read()  # stable identities and sent times


async def test_cap_feed_without_active_alerts_is_an_empty_feed(api: Api) -> None:
    response = await api.client.get("/cap?lang=ru")
    assert response.status == 200
    feed = etree.fromstring(await response.read())
    assert feed.tag == f"{ATOM}feed"
    assert list(feed.iter(f"{ATOM}entry")) == []


async def test_cap_feed_refuses_an_unknown_language(api: Api) -> None:
    body = await api.get("/cap?lang=xx", 400)
    assert body["parameter"] == "lang"
