"""Every InfluxQL query in grafana/ (panels, annotations, variables, alert rules) runs
against a real influxd after a synthetic flood went through the real collector,
forecaster and alert engine, and returns what its panel is meant to show."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from alerts.component import AlertComponent
from floodwatch import topics
from floodwatch.models import utc_now
from floodwatch.settings import Settings
from tests.harness.alerts import alert_settings
from tests.harness.forecaster import river_station, running_forecaster, write_river_catalog
from tests.harness.grafana import (
    Query,
    alert_rule_queries,
    dashboard_queries,
    fill_macros,
    load_dashboards,
)
from tests.harness.influx import InfluxServer, random_database
from tests.harness.inprocess import (
    probe_until_subscribed,
    publish_raw,
    running_collector,
    sample,
    wait_until,
)
from tests.harness.mosquitto import MosquittoServer

pytestmark = pytest.mark.integration

MINUTE = timedelta(minutes=1)
FLOOD = [350, 380, 410, 440, 470, 500, 530, 560, 590, 620, 640, 650, 655, 660]
# rise-c stops in its warning band, rise-d in its watch band.
LADDER = [("watch", 400.0), ("warning", 500.0), ("danger", 600.0)]
STOPS = {"flood-a": FLOOD, "rise-c": FLOOD[:7], "rise-d": FLOOD[:3]}
BAD_PAYLOADS = {
    "malformed_json": (topics.gauge_level("flood-a"), b"{not json"),
    "unknown_station": (topics.gauge_level("nowhere"), b"300"),
    "out_of_range": (topics.gauge_level("flood-a"), b'{"level": 99999}'),
}


@dataclass(frozen=True)
class Replayed:
    now: datetime
    flood: list[tuple[datetime, float]]
    run: Any  # a callable: (Query, gauge) -> list of series


RANKS = {"flood-a": 3, "rise-c": 2, "rise-d": 1}


def _ladder() -> list[dict[str, Any]]:
    return [
        {"key": key, "value": value, "severity": key, "short": key[0].upper(), "names": {"en": key}}
        for key, value in LADDER
    ]


def _payload(ts: datetime, level: float, **extra: float) -> bytes:
    return orjson.dumps({"ts": ts.isoformat(), "level": level, **extra})


@contextlib.asynccontextmanager
async def _pipeline(settings: Settings) -> AsyncIterator[None]:
    alerts = AlertComponent(settings)
    await alerts.start()
    try:
        async with running_collector(settings) as collector, running_forecaster(settings):
            await alerts.engine.wait_subscribed(20)
            received = [lambda: sample(collector, "floodwatch_readings_received_total")]
            await probe_until_subscribed(settings.mqtt, received)
            yield
    finally:
        await alerts.stop()


def _series(document: dict[str, Any]) -> list[dict[str, Any]]:
    (result,) = document["results"]
    return list(result.get("series", []))


@pytest.fixture
async def replayed(
    tmp_path: Path, mosquitto: MosquittoServer, influx_server: InfluxServer
) -> Replayed:
    """flood-a rises through watch (400) and danger (600) to now; quiet-b went silent two
    hours ago after a spike; three bad messages are rejected."""
    catalog = write_river_catalog(
        tmp_path / "stations.yaml",
        [
            river_station("flood-a", lat=50.1, lon=8.2),
            river_station("quiet-b", lat=50.3, lon=8.4),
            *(river_station(sid, levels=_ladder()) for sid in ("rise-c", "rise-d")),
        ],
    )
    database = random_database()
    settings = alert_settings(
        tmp_path,
        mosquitto.url,
        catalog,
        name="grafana",
        influx=influx_server,
        database=database,
        stats_interval_s=0.2,
        forecast_interval_s=2,
    )
    # Whole minutes: the level panel groups by time($__interval), here 1m.
    now = utc_now().replace(second=0, microsecond=0)
    floods = {
        sid: [(now - (len(levels) - 1 - n) * 15 * MINUTE, float(v)) for n, v in enumerate(levels)]
        for sid, levels in STOPS.items()
    }
    flood = floods["flood-a"]
    quiet = [(now - 4 * 60 * MINUTE + n * 15 * MINUTE, 300.0 + (n % 2)) for n in range(8)]
    messages = [
        (topics.gauge_level(sid), _payload(ts, v, battery_v=12.5, rssi_dbm=-80.0))
        for sid, readings in floods.items()
        for ts, v in readings
    ]
    messages += [
        (topics.gauge_level("quiet-b"), _payload(ts, v, battery_v=11.2, rssi_dbm=-101.0))
        for ts, v in quiet
    ]
    # A spike two hours ago, then nothing: quiet-b is silent, its spike never settled.
    messages.append((topics.gauge_level("quiet-b"), _payload(now - 120 * MINUTE, 900.0)))
    messages += list(BAD_PAYLOADS.values())

    def run(query: Query, gauge: str = "flood-a") -> list[dict[str, Any]]:
        if query.relative_s is not None:
            start = utc_now() - timedelta(seconds=query.relative_s[0])
            end = utc_now() - timedelta(seconds=query.relative_s[1])
        else:
            start, end = now - 6 * 60 * MINUTE, now + 13 * 60 * MINUTE
        text = fill_macros(
            query.text,
            start_ms=round(start.timestamp() * 1000),
            end_ms=round(end.timestamp() * 1000),
            interval_s=60,
            variables={"gauge": gauge, "horizon": "1", "silent_after": "3600"},
        )
        return _series(influx_server.query(text, database))

    seen: dict[str, Any] = {}

    def ready() -> bool:
        def rows(query: str) -> list[dict[str, Any]]:
            return _rows(_series(influx_server.query(query, database)))

        seen["alert kinds"] = {r["kind"] for r in rows('SELECT "kind", "title" FROM "alert"')}
        seen["alert ranks"] = {
            r["station_id"]: r["last"]
            for r in rows('SELECT last("alert_rank") FROM "station_state" GROUP BY "station_id"')
        }
        seen["reasons"] = {
            r["value"]
            for r in rows('SHOW TAG VALUES FROM "collector_rejections" WITH KEY = "reason"')
        }
        seen["forecasts"] = rows(
            'SELECT count("level") FROM "forecast" WHERE "station_id" = \'flood-a\''
            " AND \"horizon_h\" = '1'"
        )
        # The state written after flood-a's forecast arrived carries its trend.
        seen["trend"] = rows(
            'SELECT "trend" FROM "station_state" WHERE "station_id" = \'flood-a\''
            " ORDER BY time DESC LIMIT 1"
        )
        return (
            {"escalation"} <= seen["alert kinds"]
            and {sid: seen["alert ranks"].get(sid) for sid in STOPS} == RANKS
            and "quiet-b" in seen["alert ranks"]
            and set(BAD_PAYLOADS) <= seen["reasons"]
            and bool(seen["forecasts"])
            and [r["trend"] for r in seen["trend"]] == ["rising"]
        )

    async with _pipeline(settings):
        await publish_raw(settings.mqtt, messages, client_id="grafana-gauges")
        what = "alerts, states, rejections and forecasts in InfluxDB"
        try:
            await wait_until(ready, 45, what)
        except AssertionError:
            raise AssertionError(f"{what}: only {seen}") from None
    return Replayed(now, flood, run)


def _all_queries() -> list[Query]:
    queries = [
        q for name, board in load_dashboards().items() for q in dashboard_queries(name, board)
    ]
    return [*queries, *alert_rule_queries()]


def _non_null_rows(series: list[dict[str, Any]]) -> int:
    return sum(
        1
        for s in series
        for row in s.get("values", [])
        if any(
            value is not None
            for column, value in zip(s["columns"], row, strict=True)
            if column != "time"
        )
    )


def check_returns_data(query: Query, series: list[dict[str, Any]]) -> None:
    """A query with a typo (a field, tag or measurement that does not exist) returns no
    series or only empty values; InfluxQL does not call that an error, so this does."""
    assert series, f"{query.where}: no series for\n{query.text}"
    assert _non_null_rows(series), f"{query.where}: only empty values for\n{query.text}"


def _find(where: str) -> Query:
    (found,) = [q for q in _all_queries() if q.where == where]
    return found


def _rows(series: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {**s.get("tags", {}), **dict(zip(s["columns"], row, strict=True))}
        for s in series
        for row in s["values"]
    ]


async def test_every_grafana_query_returns_what_its_panel_shows(replayed: Replayed) -> None:
    """One replay for all checks: it is the slow part."""
    run = replayed.run
    queries = _all_queries()
    assert len(queries) >= 25
    for query in queries:
        # Flagged readings exist for quiet-b only: each query must show something for one.
        check_returns_data(query, [*run(query, "flood-a"), *run(query, "quiet-b")])

    # The gauge panel's observed level is the replayed flood, reading for reading.
    observed = _rows(
        run(_find("gauge.json panel 'Water level: observed, forecast band, thresholds' A"))
    )
    assert [(row["time"], row["observed"]) for row in observed] == [
        (round(ts.timestamp() * 1000), level) for ts, level in replayed.flood
    ]
    band = _rows(
        run(_find("gauge.json panel 'Water level: observed, forecast band, thresholds' C"))
    )
    assert band
    assert all(r["lower"] <= r["forecast"] <= r["upper"] for r in band)
    lines = _rows(
        run(_find("gauge.json panel 'Water level: observed, forecast band, thresholds' D"))
    )
    assert {(r["watch"], r["danger"]) for r in lines if r["watch"] is not None} == {(400.0, 600.0)}
    # Alert events as annotations: up the ladder to danger.
    annotations = _rows(run(_find("gauge.json annotation 'Alert events'")))
    assert [r["kind"] for r in annotations][:2] == ["escalation", "escalation"]
    assert all(r["title"] and r["text"] for r in annotations)
    assert {r["severity"] for r in annotations} >= {"watch", "danger"}
    # The template variables list the gauges and the forecast horizons.
    gauges = _rows(run(_find("gauge.json variable 'gauge'")))
    assert {r["value"] for r in gauges} == {*STOPS, "quiet-b"}
    horizons = _rows(run(_find("gauge.json variable 'horizon'")))
    assert {r["value"] for r in horizons} == {"1", "2", "3", "6"}

    # The map: both gauges at their catalog position, flood-a at danger.
    markers = {
        r["station_id"]: r for r in _rows(run(_find("overview.json panel 'Gauges on the map' A")))
    }
    assert (markers["flood-a"]["lat"], markers["flood-a"]["lon"]) == (50.1, 8.2)
    assert (markers["flood-a"]["alert_rank"], markers["flood-a"]["alert_level"]) == (3, "danger")
    assert {sid: markers[sid]["alert_rank"] for sid in STOPS} == RANKS
    assert markers["quiet-b"]["alert_rank"] == 0
    table = {r["station_id"]: r for r in _rows(run(_find("overview.json panel 'Gauges' A")))}
    assert table["flood-a"]["level"] == FLOOD[-1]
    assert table["flood-a"]["trend"] == "rising"
    assert table["flood-a"]["offline"] == 0
    bad = _rows(run(_find("overview.json panel 'Offline, faulty and unconfirmed gauges' A")))
    # Its last reading, the spike, was never settled: nothing came after it.
    assert [(r["station_id"], r["offline"], r["faulty"], r["suspect"]) for r in bad] == [
        ("quiet-b", 1, 0, 1)
    ]
    counts = {
        q.where[-1]: _rows(run(q))[0]
        for q in _all_queries()
        if q.where.startswith("overview.json panel 'Gauges by state now'")
    }
    assert (counts["A"]["danger"], counts["B"]["warning"], counts["C"]["watch"]) == (1, 1, 1)
    assert counts["D"]["offline"] == 1
    assert counts["E"]["faulty"] == 0  # quiet-b's spike was never settled:
    assert counts["F"]["unconfirmed"] == 1  # it is unconfirmed

    # Network health: the rejections we provoked, by reason; silent gauges.
    rejected = _rows(run(_find("network.json panel 'Rejections by reason' A")))
    # bad_topic: the probes that made sure the collector was subscribed.
    assert {r["reason"] for r in rejected if r["rejected"]} == {*BAD_PAYLOADS, "bad_topic"}
    rates = _rows(run(_find("network.json panel 'Messages per second' A")))
    assert sum(r["received"] for r in rates) * 60 >= len(FLOOD) + len(BAD_PAYLOADS)
    silent = _rows(run(_find("network.json panel 'Gauges silent longer than expected' A")))
    assert [r["station_id"] for r in silent] == ["quiet-b"]
    assert silent[0]["age_s"] >= 7200
    battery = _rows(run(_find("network.json panel 'Battery' A")))
    assert {r["station"] for r in battery} == {*STOPS, "quiet-b"}

    # The alert rules: readings are flowing, flood-a is at danger, three rejections.
    assert _rows(run(_find("alert rule floodwatch-no-readings A")))[0]["count"] >= 1
    danger = _rows(run(_find("alert rule floodwatch-gauge-danger A")))
    # The collector's own reading of the ladder agrees with the engine (quiet-b's spike
    # to 900 reaches nothing: it is flagged).
    assert {r["station_id"]: r["last"] for r in danger} == {**RANKS, "quiet-b": 0}
    spikes = {
        r["reason"]: r["sum"] for r in _rows(run(_find("alert rule floodwatch-rejections-spike A")))
    }
    assert {reason: spikes[reason] for reason in BAD_PAYLOADS} == dict.fromkeys(BAD_PAYLOADS, 1)

    # The check above catches a typo in a field, measurement or tag name.
    query = _find("gauge.json panel 'Water level: observed, forecast band, thresholds' A")
    for typo in (
        query.text.replace('"level"', '"levle"'),
        query.text.replace('"water_level"', '"water_levels"'),
        query.text.replace('"station"', '"station_id"'),
    ):
        broken = Query(query.where, typo)
        with pytest.raises(AssertionError):
            check_returns_data(broken, run(broken))
