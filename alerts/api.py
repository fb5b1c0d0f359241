"""The alert HTTP API, beside /healthz and /metrics: stations, alerts and the CAP feed.

    GET /api/stations          GeoJSON: every gauge with level, trend, alert level
    GET /api/stations/{id}     one gauge: catalog data, recent readings, forecast, state,
                               recent events (?hours=48, up to 720)
    GET /api/alerts            active alerts and recent events (?limit=100, ?station=id)
    GET /cap                   CAP 1.2 alerts of the active public alerts, as an Atom feed

Input never causes a 500: unknown ids get 404, bad parameters 400, both with a JSON
`{"error": ...}` naming what was wrong; a store that cannot be reached gets 503.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable
from datetime import timedelta, tzinfo
from typing import Any

import orjson
from aiohttp import web

from alerts import api_views as views
from alerts import cap_select
from alerts.cap_feed import CapEntry, cap_feed
from alerts.gauge_state import GaugeState
from alerts.store import AlertStore
from alerts.texts import primary_language
from floodwatch.catalog import Catalog, Station
from floodwatch.errors import StoreUnavailable
from floodwatch.models import ForecastPoint, Reading, utc_now
from floodwatch.settings import Settings
from floodwatch.storage.base import ReadingStore

log = logging.getLogger(__name__)

MAX_HOURS = 720.0
DEFAULT_HOURS = 48.0
MAX_LIMIT = 1000
DEFAULT_LIMIT = 100
STATION_EVENTS = 20  # recent events in /api/stations/{id}
CAP_HISTORY = 200  # outbox items per gauge read to rebuild its CAP runs
CAP_LANGUAGES = ("en", "ru")
ATOM_CONTENT_TYPE = "application/atom+xml"


class BadParameter(web.HTTPBadRequest):
    def __init__(self, name: str, message: str) -> None:
        super().__init__(
            text=_dumps({"error": f"{name}: {message}", "parameter": name}),
            content_type="application/json",
        )


def _dumps(document: Any) -> str:
    return orjson.dumps(document).decode()


def _json(document: Any, status: int = 200, headers: Any = None) -> web.Response:
    return web.json_response(document, status=status, dumps=_dumps, headers=headers)


def add_routes(
    app: web.Application,
    *,
    catalog_source: Callable[[], Catalog],
    alert_store: AlertStore,
    readings: ReadingStore,
    settings: Settings,
) -> None:
    """Add the API to `app` (before it starts). `catalog_source` gives the catalog in force
    (reloaded file, hydrologists' overrides); both stores are opened by their owners."""
    api = _Api(catalog_source, alert_store, readings, settings)
    app.router.add_get("/api/stations", api.stations)
    app.router.add_get("/api/stations/{station_id}", api.station)
    app.router.add_get("/api/alerts", api.alerts)
    app.router.add_get("/cap", api.cap)
    app.middlewares.append(_json_errors)


@web.middleware
async def _json_errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """JSON errors under /api and /cap (404, 405, 503), and never a bare 500."""
    if not (request.path == "/api" or request.path.startswith(("/api/", "/cap"))):
        return await handler(request)
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.content_type == "application/json":
            raise
        allow = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        return _json({"error": exc.reason}, exc.status, allow)
    except StoreUnavailable as exc:
        log.warning("API %s: %s", request.path, exc)
        return _json({"error": "a store is unavailable; try again shortly"}, 503)
    except Exception:
        log.exception("API %s failed", request.path)
        return _json({"error": "internal error"}, 500)


class _Api:
    def __init__(
        self,
        catalog_source: Callable[[], Catalog],
        alert_store: AlertStore,
        readings: ReadingStore,
        settings: Settings,
    ) -> None:
        self.catalog_source = catalog_source
        self.alert_store = alert_store
        self.readings = readings
        self.zone: tzinfo = settings.zone
        self.cap_sender = settings.cap_sender
        self.cap_keep = timedelta(hours=settings.cap_cancel_keep_h)
        self.max_future = settings.max_future

    # ----- GET /api/stations -------------------------------------------------------------

    async def stations(self, request: web.Request) -> web.Response:
        catalog = self.catalog_source()
        states = await self.alert_store.load_states()
        now = utc_now()
        latest, runs, readings_ok = await self._latest(list(catalog))
        features = [
            views.station_feature(
                station,
                states.get(station.id),
                latest.get(station.id),
                runs.get(station.id, []),
                now,
            )
            for station in catalog.values()
        ]
        return _json(
            {
                "type": "FeatureCollection",
                "generated_at": now.isoformat(),
                "readings": "ok" if readings_ok else "unavailable",
                "features": features,
            }
        )

    async def _latest(
        self, station_ids: list[str]
    ) -> tuple[dict[str, Reading], dict[str, list[ForecastPoint]], bool]:
        """Every gauge's newest reading and forecast run, in a few store queries whatever
        the number of gauges; ({}, {}, False) if the store is down, so the map still shows
        every gauge's alert state."""
        try:
            latest, runs = await asyncio.gather(
                self.readings.latest_each(station_ids),
                self.readings.latest_forecast_runs(station_ids),
            )
        except StoreUnavailable as exc:
            log.warning("API: readings of the gauges unavailable: %s", exc)
            return {}, {}, False
        return latest, runs, True

    # ----- GET /api/stations/{id} --------------------------------------------------------

    async def station(self, request: web.Request) -> web.Response:
        station = self._station(request.match_info["station_id"])
        hours = _hours(request.query.get("hours"))
        now = utc_now()
        readings = await self.readings.query(
            station.id, now - timedelta(hours=hours), now + self.max_future
        )
        run = await self.readings.latest_forecast_run(station.id)
        state = (await self.alert_store.load_states()).get(station.id)
        events = await self.alert_store.recent_events(STATION_EVENTS, station.id)
        latest = readings[-1] if readings else None
        return _json(
            {
                "station": station.model_dump(mode="json"),
                "hours": hours,
                "readings": [views.reading_json(reading) for reading in readings],
                "forecast": views.forecast_json(run),
                "trend": views.trend(latest, run),
                "next_threshold": views.next_threshold(station, latest, run, state),
                "state": views.alert_picture(station.id, station, state, now),
                "events": [views.outbox_json(item) for item in events],
            }
        )

    def _station(self, station_id: str) -> Station:
        station = self.catalog_source().get(station_id)
        if station is None:
            raise web.HTTPNotFound(
                text=_dumps({"error": f"unknown station {station_id!r}"}),
                content_type="application/json",
            )
        return station

    # ----- GET /api/alerts ---------------------------------------------------------------

    async def alerts(self, request: web.Request) -> web.Response:
        limit = _limit(request.query.get("limit"))
        station_id = request.query.get("station")
        catalog = self.catalog_source()
        if station_id is not None and station_id not in catalog:
            raise BadParameter("station", f"unknown station {station_id!r}")
        states = await self.alert_store.load_states()
        recent = await self.alert_store.recent_events(limit, station_id)
        now = utc_now()
        return _json(
            {
                "generated_at": now.isoformat(),
                "active": views.active_alerts(catalog, states, station_id, now),
                "recent": [views.outbox_json(item) for item in recent],
            }
        )

    # ----- GET /cap ----------------------------------------------------------------------

    async def cap(self, request: web.Request) -> web.Response:
        language = primary_language(request.query.get("lang", "en"))
        if language not in CAP_LANGUAGES:
            raise BadParameter("lang", f"one of {', '.join(CAP_LANGUAGES)}")
        entries = await self._cap_entries()
        updated = max((entry.sent for entry in entries), default=utc_now())
        body = cap_feed(
            entries,
            sender=self.cap_sender,
            feed_url=str(request.url),
            updated=updated,
            tz=self.zone,
            language=language,
        )
        return web.Response(body=body, content_type=ATOM_CONTENT_TYPE, charset="utf-8")

    async def _cap_entries(self) -> list[CapEntry]:
        catalog = self.catalog_source()
        states = await self.alert_store.load_states()
        now = utc_now()
        recent = await self.alert_store.recent_events(MAX_LIMIT)
        entries: list[CapEntry] = []
        for station_id in cap_select.candidates(states, recent, now=now, keep=self.cap_keep):
            station = catalog.get(station_id)
            if station is None:
                continue  # gone from the catalog: nothing to describe the area with
            history = await self.alert_store.recent_events(CAP_HISTORY, station_id)
            history.reverse()
            entries += cap_select.station_entries(
                history,
                station,
                states.get(station_id, GaugeState()),
                sender=self.cap_sender,
                now=now,
                keep=self.cap_keep,
            )
        return entries


def _hours(raw: str | None) -> float:
    if raw is None:
        return DEFAULT_HOURS
    try:
        hours = float(raw)
    except ValueError:
        hours = math.nan
    if not 0 < hours <= MAX_HOURS:
        raise BadParameter("hours", f"must be a number of hours above 0 and at most {MAX_HOURS:g}")
    return hours


def _limit(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_LIMIT
    try:
        limit = int(raw)
    except ValueError:
        limit = 0
    if not 1 <= limit <= MAX_LIMIT:
        raise BadParameter("limit", f"must be a whole number from 1 to {MAX_LIMIT}")
    return limit
