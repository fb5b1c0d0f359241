"""Readings in InfluxDB through the v1-compatible HTTP API (1.x, 2.x compatibility, 3.x Core).

Line protocol goes to /write and InfluxQL to /query; both are the one dialect every
InfluxDB generation still serves. Errors become `StoreUnavailable` (try again later: the
caller spools) or `StoreRejected` (the data itself was refused).
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import urlencode

import aiohttp
import orjson
from yarl import URL

from floodwatch.errors import StoreRejected, StoreUnavailable
from floodwatch.models import AlertRecord, ForecastPoint, Reading
from floodwatch.settings import Settings
from floodwatch.storage import alert_lines, health_lines
from floodwatch.storage import line_protocol as lp

log = logging.getLogger(__name__)

T = TypeVar("T")

MAX_POINTS_PER_WRITE = 5000
# Four tries with 1.4 s of waiting in all: long enough to ride out an InfluxDB restart or
# a brief overload, short enough that the collector falls back to its spool promptly.
RETRY_DELAYS_S = (0.2, 0.4, 0.8)
# zlib releases the GIL, so a large body compresses on another core while the loop runs.
_GZIP_IN_THREAD_BYTES = 64 * 1024
_GZIP_LEVEL = 1
_QUERY_CHUNK_ROWS = 10_000


class InfluxStore:
    """`ReadingStore` over InfluxDB's v1 HTTP API; one aiohttp session per open store."""

    def __init__(
        self,
        url: str,
        database: str = "floodwatch",
        *,
        token: str | None = None,
        username: str | None = None,
        password: str | None = None,
        timeout_s: float = 10.0,
        retry_delays: Sequence[float] = RETRY_DELAYS_S,
        max_points_per_write: int = MAX_POINTS_PER_WRITE,
    ) -> None:
        self._url = url.rstrip("/")
        self._database = database
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._retry_delays = tuple(retry_delays)
        self._max_points = max_points_per_write
        self._headers = _auth_headers(token, username, password)
        self._session: aiohttp.ClientSession | None = None
        self._database_ready = False
        self.description = f"InfluxDB {URL(self._url).with_user(None)} db={database}"

    @classmethod
    def from_settings(cls, settings: Settings) -> InfluxStore:
        if not settings.influx_url:
            raise ValueError("InfluxStore needs FLOODWATCH_INFLUX_URL")
        token, password = settings.influx_token, settings.influx_password
        return cls(
            settings.influx_url,
            settings.influx_database,
            token=token.get_secret_value() if token else None,
            username=settings.influx_username,
            password=password.get_secret_value() if password else None,
            timeout_s=settings.influx_timeout_s,
        )

    def __repr__(self) -> str:
        return f"InfluxStore({self.description!r})"

    # --- lifecycle ----------------------------------------------------------------------

    async def open(self) -> None:
        """Start the HTTP session and create the database if missing.

        The session stays usable even when this raises StoreUnavailable, so a collector
        that starts before InfluxDB can spool and write once InfluxDB is up.
        """
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout, headers=self._headers)
        await self._ensure_database()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def ping(self) -> None:
        status, _ = await self._send("GET", "/ping", retry=False)
        if not 200 <= status < 300:
            raise StoreUnavailable(f"{self.description}: ping answered HTTP {status}")

    # --- writing ------------------------------------------------------------------------

    async def write(self, readings: Sequence[Reading]) -> None:
        await self._write_points(readings, lp.encode_readings)

    async def write_forecasts(self, points: Sequence[ForecastPoint]) -> None:
        await self._write_points(points, lp.encode_forecasts)

    async def write_alert_events(self, records: Sequence[AlertRecord]) -> None:
        await self._write_points(records, alert_lines.encode_alerts)

    async def write_health(self, points: Sequence[health_lines.HealthPoint]) -> None:
        await self._write_points(points, health_lines.encode_health)

    async def _write_points(
        self, points: Sequence[T], encode: Callable[[Sequence[T]], bytes]
    ) -> None:
        if not points:
            return
        # Encode every chunk before sending any, so a bad point rejects the whole call
        # instead of leaving the first chunks stored.
        try:
            bodies = [encode(chunk) for chunk in lp.chunked(points, self._max_points)]
        except ValueError as exc:
            raise StoreRejected(f"{self.description}: {exc}") from None
        if not self._database_ready:
            await self._ensure_database()
        for body in bodies:
            await self._write_body(await _gzip(body))

    async def _write_body(self, compressed: bytes) -> None:
        params = {"db": self._database, "precision": "ms"}
        headers = {"Content-Encoding": "gzip", "Content-Type": "text/plain; charset=utf-8"}
        status, body = await self._send(
            "POST", "/write", params=params, data=compressed, headers=headers
        )
        if status == 404:
            # The database vanished (dropped, or a fresh server): create it and try once more.
            self._database_ready = False
            await self._ensure_database()
            status, body = await self._send(
                "POST", "/write", params=params, data=compressed, headers=headers
            )
        if 200 <= status < 300:
            return
        if status == 404:
            raise StoreUnavailable(f"{self.description}: database not found: {_error_text(body)}")
        raise StoreRejected(
            f"{self.description}: write rejected (HTTP {status}): {_error_text(body)}"
        )

    async def _ensure_database(self) -> None:
        query = f"CREATE DATABASE {lp.quote_identifier(self._database)}"
        status, body = await self._send("POST", "/query", params={"q": query}, tolerate_403=True)
        failure = _statement_failure(status, body)
        if failure:
            # InfluxDB 2.x maps databases to buckets by itself and 3.x creates them on
            # write; a 1.x user without admin rights may write to an existing database.
            log.debug(
                "%s: CREATE DATABASE failed, assuming it exists: %s", self.description, failure
            )
        self._database_ready = True

    # --- reading ------------------------------------------------------------------------

    async def query(self, station_id: str, start: datetime, end: datetime) -> list[Reading]:
        documents = await self._select(lp.range_query(station_id, start, end))
        return self._parse(documents, station_id)

    async def latest(self, station_id: str, limit: int = 1) -> list[Reading]:
        if limit < 1:
            return []  # InfluxQL reads LIMIT 0 as "no limit"
        documents = await self._select(lp.latest_query(station_id, limit))
        readings = self._parse(documents, station_id)
        readings.reverse()
        return readings

    async def count(self, station_id: str) -> int:
        documents = await self._select(lp.count_query(station_id))
        try:
            return lp.parse_count(documents)
        except lp.InfluxResponseError as exc:
            raise StoreUnavailable(f"{self.description}: {exc}") from None

    def _parse(self, documents: list[Mapping[str, Any]], station_id: str) -> list[Reading]:
        try:
            return lp.parse_readings(documents, station_id)
        except lp.InfluxResponseError as exc:
            raise StoreUnavailable(f"{self.description}: {exc}") from None

    async def query_forecasts(
        self, station_id: str, start: datetime, end: datetime, horizon_s: int | None = None
    ) -> list[ForecastPoint]:
        query = lp.forecast_range_query(station_id, start, end, horizon_s)
        points = await self._select_forecasts(query, station_id)
        # InfluxDB orders by time only; horizons are separate series at equal times.
        points.sort(key=lambda point: (point.valid_at, point.horizon_s))
        return points

    async def latest_forecast_run(self, station_id: str) -> list[ForecastPoint]:
        documents = await self._select(lp.latest_issue_query(station_id))
        try:
            issued_ms = lp.parse_max(documents)
        except lp.InfluxResponseError as exc:
            raise StoreUnavailable(f"{self.description}: {exc}") from None
        if issued_ms is None:
            return []
        query = lp.forecast_run_query(station_id, issued_ms)
        points = await self._select_forecasts(query, station_id)
        points.sort(key=lambda point: (point.horizon_s, point.valid_at))
        return points

    async def latest_each(self, station_ids: Sequence[str]) -> dict[str, Reading]:
        wanted = list(dict.fromkeys(station_ids))
        if not wanted:
            return {}
        documents = await self._select(lp.latest_each_query(wanted), post=True)
        try:
            return lp.parse_latest_each(documents)
        except lp.InfluxResponseError as exc:
            raise StoreUnavailable(f"{self.description}: {exc}") from None

    async def latest_forecast_runs(
        self, station_ids: Sequence[str]
    ) -> dict[str, list[ForecastPoint]]:
        # Two requests whatever the number of stations: each one's newest issue time, then
        # every one of those runs.
        wanted = list(dict.fromkeys(station_ids))
        if not wanted:
            return {}
        documents = await self._select(lp.latest_issue_each_query(wanted), post=True)
        try:
            issued = lp.parse_max_each(documents)
            if not issued:
                return {}
            documents = await self._select(lp.forecast_runs_query(issued), post=True)
            return lp.parse_forecast_runs(documents, issued)
        except lp.InfluxResponseError as exc:
            raise StoreUnavailable(f"{self.description}: {exc}") from None

    async def _select_forecasts(self, query: str, station_id: str) -> list[ForecastPoint]:
        documents = await self._select(query)
        try:
            return lp.parse_forecasts(documents, station_id)
        except lp.InfluxResponseError as exc:
            raise StoreUnavailable(f"{self.description}: {exc}") from None

    async def query_alert_events(
        self, station_id: str | None, start: datetime, end: datetime
    ) -> list[AlertRecord]:
        documents = await self._select(alert_lines.alert_range_query(station_id, start, end))
        try:
            return alert_lines.parse_alerts(documents)
        except lp.InfluxResponseError as exc:
            raise StoreUnavailable(f"{self.description}: {exc}") from None

    async def _select(self, query: str, *, post: bool = False) -> list[Mapping[str, Any]]:
        """Run a SELECT; `post` sends the query in a form body, for queries naming so
        many stations that they would make too long a URL."""
        # Chunked responses are never cut at the server's max-row-limit.
        params = {
            "db": self._database,
            "q": query,
            "epoch": "ms",
            "chunked": "true",
            "chunk_size": str(_QUERY_CHUNK_ROWS),
        }
        if post:
            form = urlencode({"q": params.pop("q")}).encode()
            headers = {"Content-Type": "application/x-www-form-urlencoded"}
            status, body = await self._send(
                "POST", "/query", params=params, data=form, headers=headers
            )
        else:
            status, body = await self._send("GET", "/query", params=params)
        if status != 200:
            raise StoreUnavailable(
                f"{self.description}: query failed (HTTP {status}): {_error_text(body)}"
            )
        try:
            return lp.decode_body(body)
        except lp.InfluxResponseError as exc:
            raise StoreUnavailable(f"{self.description}: {exc}") from None

    # --- HTTP ---------------------------------------------------------------------------

    async def _send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        data: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        retry: bool = True,
        tolerate_403: bool = False,
    ) -> tuple[int, bytes]:
        """One request with retries on transient failures; returns status and body.

        Connection errors, timeouts, 429 and 5xx are retried (every request here is
        idempotent: a repeated write overwrites the same points), then StoreUnavailable.
        Refused credentials raise StoreUnavailable at once: retrying cannot fix them, but
        a corrected credential later lets the spool drain.
        """
        session = self._require_session()
        delays = iter(self._retry_delays if retry else ())
        attempt = 0
        while True:
            attempt += 1
            try:
                async with session.request(
                    method, self._url + path, params=params, data=data, headers=headers
                ) as response:
                    status, body = response.status, await response.read()
            except (aiohttp.ClientError, TimeoutError) as exc:
                failure = f"{type(exc).__name__}: {exc}".rstrip(": ")
            else:
                if status == 401 or (status == 403 and not tolerate_403):
                    raise StoreUnavailable(self._refused(status, body))
                if status != 429 and status < 500:
                    return status, body
                failure = f"HTTP {status}: {_error_text(body)}"
            delay = next(delays, None)
            if delay is None:
                raise StoreUnavailable(
                    f"{self.description}: {method} {path} failed after {attempt} "
                    f"attempt(s): {failure}"
                )
            log.debug(
                "%s: %s %s failed (%s); retrying in %.1f s",
                self.description,
                method,
                path,
                failure,
                delay,
            )
            await asyncio.sleep(delay)

    def _refused(self, status: int, body: bytes) -> str:
        scheme = self._headers.get("Authorization", "none").split()[0]
        return (
            f"{self.description}: InfluxDB refused the credentials (HTTP {status}, "
            f"auth: {scheme}): {_error_text(body)}"
        )

    def _require_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError(f"{self.description} is not open; call open() first")
        return self._session


def _auth_headers(token: str | None, username: str | None, password: str | None) -> dict[str, str]:
    # A token means InfluxDB 2.x/3.x (v1 compatibility); user and password mean 1.x,
    # which accepts HTTP basic auth.
    if token:
        return {"Authorization": f"Token {token}"}
    if username:
        basic = base64.b64encode(f"{username}:{password or ''}".encode()).decode()
        return {"Authorization": f"Basic {basic}"}
    return {}


async def _gzip(body: bytes) -> bytes:
    if len(body) < _GZIP_IN_THREAD_BYTES:
        return gzip.compress(body, compresslevel=_GZIP_LEVEL)
    return await asyncio.to_thread(gzip.compress, body, compresslevel=_GZIP_LEVEL)


def _error_text(body: bytes) -> str:
    """InfluxDB's own error message when it sent one, else the start of the body."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body[:300].decode(errors="replace").strip() or "(empty response)"
    if isinstance(document, dict) and "error" in document:
        return str(document["error"])
    return body[:300].decode(errors="replace").strip()


def _statement_failure(status: int, body: bytes) -> str | None:
    """Why a non-SELECT statement failed, or None if it succeeded."""
    if status != 200:
        return f"HTTP {status}: {_error_text(body)}"
    try:
        lp.check_response(lp.decode_body(body))
    except lp.InfluxResponseError as exc:
        return str(exc)
    return None
